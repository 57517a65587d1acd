"""The composition root: which features the service runs, in which order.

The only module of ``scrm/`` that imports ``handlers/``. Adding a feature is one folder under
``handlers/`` and one line here; dispatch order is the list's order, moved only where a
feature's ``after=`` says so (checked when this module is imported: an unknown name or a cycle
stops the start with one line, as does an internal event kind two features declare).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import MetaData

from handlers.backfill import feature as backfill
from handlers.campaigns import feature as campaigns
from handlers.compliance import feature as compliance
from handlers.console import feature as console
from handlers.contacts import feature as contacts
from handlers.crm import feature as crm
from handlers.feedback import feature as feedback
from handlers.groups import feature as groups
from handlers.lifecycle import feature as lifecycle
from handlers.membership import feature as membership
from handlers.radar import feature as radar
from handlers.referral import feature as referral
from handlers.sidebar import feature as sidebar
from handlers.sop import feature as sop
from handlers.staff import feature as staff
from handlers.succession import feature as succession
from handlers.tags import feature as tags
from handlers.timeline import feature as timeline
from scrm.adapters.db.base import Base
from scrm.kernel.clock import Clock, SystemClock
from scrm.kernel.config import Settings
from scrm.kernel.config import load_settings as load_kernel_settings
from scrm.kernel.feature import Feature, compose, event_kinds
from scrm.kernel.service import Runtime
from scrm.playbook.holder import PlaybookHolder

FEATURES: tuple[Feature, ...] = compose((
    contacts.FEATURE,
    crm.FEATURE,
    groups.FEATURE,
    radar.FEATURE,
    sop.FEATURE,
    staff.FEATURE,
    succession.FEATURE,
    tags.FEATURE,
    backfill.FEATURE,
    console.FEATURE,
    sidebar.FEATURE,
    lifecycle.FEATURE,
    campaigns.FEATURE,
    membership.FEATURE,
    referral.FEATURE,
    compliance.FEATURE,
    feedback.FEATURE,
    timeline.FEATURE,
))


# Internal event kind → its typed class, from each composed feature's ``events``.
KINDS = event_kinds(FEATURES)

# Each feature's own configuration section, [<feature name>].
SECTIONS = {f.name: f.settings for f in FEATURES if f.settings is not None}


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """The configuration with every composed feature's section (see ``scrm.kernel.config.load_settings``)."""
    return load_kernel_settings(path, sections=SECTIONS, **overrides)


def load_all_models() -> MetaData:
    """Every table: the kernel's and each composed feature's ``models`` (imported with FEATURES),
    for Alembic and the test set-up."""
    return Base.metadata


def build_runtime(settings: Settings, *, clock: Clock | None = None, **options: Any) -> Runtime:
    """A service instance running every feature on the playbook of ``[playbook]`` (loaded now
    unless ``load_playbook=False``; a playbook with errors raises ``PlaybookLoadError``)."""
    clock = clock or SystemClock()
    holder = PlaybookHolder(settings.playbook, clock)
    return Runtime(settings, features=FEATURES, clock=clock, playbook=holder, **options)
