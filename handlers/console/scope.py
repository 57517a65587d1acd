"""Which managers a cockpit view covers: the viewer's grant, narrowed by ``?dept=`` (a department
path) or ``?manager=`` (a userid) — never widened. Asking outside the grant is refused (403),
asking for a department or manager nobody has is bad input (400)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.console.access import Grant
from handlers.contacts.api import Member

MAX_PATH = 128


class ScopeRefused(Exception):
    """The viewer asked for a part of the bank outside their grant."""


class BadScope(ValueError):
    """A department or manager that does not exist (or is malformed)."""


@dataclass(frozen=True)
class Scope:
    dept: str  # a department path; "" = the whole bank
    manager: str  # a userid; "" = every manager under ``dept``
    members: dict[str, tuple[str, str]]  # userid → (name, department) of the managers covered

    @property
    def whole_bank(self) -> bool:
        """Figures nobody is credited with (an SOP step for a customer no one follows) count here."""
        return not self.dept and not self.manager

    @property
    def label(self) -> str:
        if self.manager:
            name = self.members.get(self.manager, (self.manager, ""))[0]
            return f"{name}（{self.manager}）"
        return self.dept or "全行"


def under(dept: str) -> Any:
    """SQL: a member of ``dept`` or below (True for the whole bank)."""
    if not dept:
        return True
    return or_(Member.department == dept, Member.department.startswith(dept + "/", autoescape=True))


async def resolve(db: AsyncSession, grant: Grant, *, dept: str = "", manager: str = "") -> Scope:
    dept, manager = dept.strip().strip("/"), manager.strip()
    if len(dept) > MAX_PATH or len(manager) > 64:
        raise BadScope("dept or manager too long")
    if manager:
        row = (await db.execute(select(Member.name, Member.department).where(Member.userid == manager))).first()
        if row is None:
            raise BadScope(f"no manager {manager!r} in the staff directory")
        if not grant.covers(row.department):
            raise ScopeRefused(manager)
        return Scope("", manager, {manager: (row.name or manager, row.department)})
    if not dept:
        dept = grant.scope
    if not grant.covers(dept):
        raise ScopeRefused(dept)
    rows = (await db.execute(select(Member.userid, Member.name, Member.department).where(under(dept))
                             .order_by(Member.userid))).all()
    if dept and not rows:
        raise BadScope(f"no department {dept!r} in the staff directory")
    return Scope(dept, "", {u: (n or u, d) for u, n, d in rows})


def child_of(scope_dept: str, department: str) -> str:
    """The department one level below ``scope_dept`` that ``department`` lies in (``scope_dept``
    itself for its own members): the rows of the team ranking."""
    if department == scope_dept:
        return scope_dept
    rest = department[len(scope_dept) + 1:] if scope_dept else department
    head = rest.split("/", 1)[0]
    return f"{scope_dept}/{head}" if scope_dept else head
