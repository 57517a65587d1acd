"""Staff tables: the departments of the address book, and what the directory knows of each
member beyond the ``member`` row (owned by contacts: name, department path, team lead, status).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from scrm.adapters.db.base import Base


class StaffDepartment(Base):
    """One WeCom department (部门): its name, its parent (None for the root) and its leaders
    (部门负责人, in WeCom's order)."""

    __tablename__ = "staff_department"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128), default="")
    parent_id: Mapped[int | None] = mapped_column(Integer, default=None)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    leaders: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class StaffProfile(Base):
    """Where a member sits in WeCom's address book, and the HR file's team-lead override.

    ``main_department`` is None for a member known only from the HR file (the ``member`` row
    then keeps the file's department path as written). ``in_wecom``: last seen in WeCom's address
    book (a full sync marks those who vanished from it resigned).
    """

    __tablename__ = "staff_profile"

    userid: Mapped[str] = mapped_column(String(64), primary_key=True)
    main_department: Mapped[int | None] = mapped_column(Integer, default=None)
    departments: Mapped[list[int]] = mapped_column(JSON, default=list)
    in_wecom: Mapped[bool] = mapped_column(Boolean, default=False)
    team_lead_override: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime]
