"""Import every model module so ``Base.metadata`` knows all tables (Alembic, test truncation).

Feature areas keep their tables in their own ``scrm/db/models_<area>.py`` next to the core
``models.py``; this finds them by name, so adding an area needs no edit here.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import MetaData

import scrm.db
from scrm.db.models import Base


def load_all_models() -> MetaData:
    for info in pkgutil.iter_modules(scrm.db.__path__):
        if info.name.startswith("models_"):
            importlib.import_module(f"scrm.db.{info.name}")
    return Base.metadata
