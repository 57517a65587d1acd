"""The composition root: which features the service runs, in which order.

The only module of ``scrm/`` that imports ``handlers/``. Adding a feature is one folder under
``handlers/`` and one line here; dispatch order is the list's order, moved only where a
feature's ``after=`` says so (checked when this module is imported: an unknown name or a cycle
stops the start with one line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

from handlers.contacts import feature as contacts
from handlers.crm import feature as crm
from handlers.groups import feature as groups
from handlers.radar import feature as radar
from handlers.sop import feature as sop
from handlers.tags import feature as tags
from handlers.timeline import feature as timeline
from scrm.app import Runtime
from scrm.config import Settings
from scrm.config import load_settings as load_kernel_settings
from scrm.db.models import Base
from scrm.kernel.feature import Feature, compose

FEATURES: tuple[Feature, ...] = compose((
    contacts.FEATURE,
    crm.FEATURE,
    groups.FEATURE,
    radar.FEATURE,
    sop.FEATURE,
    tags.FEATURE,
    timeline.FEATURE,
))


# Each feature's own configuration section, [<feature name>].
SECTIONS = {f.name: f.settings for f in FEATURES if f.settings is not None}


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """The configuration with every composed feature's section (see ``scrm.config.load_settings``)."""
    return load_kernel_settings(path, sections=SECTIONS, **overrides)


def load_all_models() -> MetaData:
    """Every table: the kernel's and each composed feature's ``models`` (imported with FEATURES),
    for Alembic and the test set-up."""
    return Base.metadata


def build_runtime(settings: Settings, **options: Any) -> Runtime:
    """A service instance running every feature."""
    return Runtime(settings, features=FEATURES, **options)
