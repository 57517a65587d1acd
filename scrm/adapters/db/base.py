"""The declarative ``Base`` every table derives from, and the column types they share.

Every datetime is UTC (``UTCDateTime``). JSON columns use the generic ``JSON`` type (TEXT on
SQLite, json on PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer
from sqlalchemy.orm import DeclarativeBase

from scrm.adapters.db.types import UTCDateTime

JsonDict = dict[str, Any]

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), JsonDict: JSON()}  # noqa: RUF012 (SQLAlchemy's API)
