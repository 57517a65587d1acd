"""The staff directory's rules: departments, where each member sits, who leads them, who left.

The ``member`` row (contacts' table, read by welcomes and task cards) holds what other features
need: ``name``, ``department`` (the path from the top department down, ``分行/支行/团队``),
``team_lead`` and ``status`` (``active`` | ``resigned``; a member is never deleted). This module
keeps it right from the directory's own tables:

* a member's **department path** is their main department's path when WeCom placed them, else
  what the HR file wrote;
* their **team lead** is the HR file's override when it names an active member, else the first
  active leader (部门负责人) of their main department other than themselves, looking up the tree
  (a team lead's own lead is their sub-branch's head);
* **resigned** comes from ``delete_user``, a full sync in which they vanished, WeCom's status 5,
  or the HR file.

Every change ends with :func:`recompute`, which rewrites only the ``member`` rows whose path or
lead changed. Names WeCom hides (empty, or the userid itself: WeCom's 2022 privacy change for new
apps) never replace a known name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Member
from handlers.staff.models import StaffDepartment, StaffProfile
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of

ACTIVE, RESIGNED = "active", "resigned"
STATUSES = (ACTIVE, RESIGNED)
PATH_SEP = "/"
MAX_PATH = 128  # member.department
MAX_NAME = 128  # member.name
MAX_USERID = 64  # member.userid


@dataclass(frozen=True)
class Dept:
    """A department as WeCom describes it (``parent_id`` None for the top one)."""

    id: int
    name: str
    parent_id: int | None
    sort_order: int = 0
    leaders: tuple[str, ...] = ()


@dataclass(frozen=True)
class PersonChange:
    """What is known of one member; ``None`` fields are unchanged (or not told)."""

    userid: str
    name: str | None = None
    departments: tuple[int, ...] | None = None
    main_department: int | None = None
    leader_in: frozenset[int] | None = None  # departments they lead
    active: bool | None = None


@dataclass(frozen=True)
class Snapshot:
    """The whole address book as one full sync read it."""

    departments: Sequence[Dept]
    people: Sequence[PersonChange]


@dataclass
class Report:
    """What a sync or an import changed in the ``member`` table."""

    departments: int | None = None  # None: not a sync (an HR file names no departments)
    members: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resigned: list[str] = field(default_factory=list)

    def summary(self, what: str) -> str:
        departments = f"{self.departments} departments, " if self.departments is not None else ""
        return (f"{what}: {departments}{self.members} members — {len(self.added)} new, "
                f"{len(self.updated)} updated, {len(self.resigned)} resigned")


def real_name(name: str | None, userid: str) -> str | None:
    """The name, unless WeCom hid it (empty or the userid itself)."""
    if name is None:
        return None
    name = name.strip()
    return name[:MAX_NAME] if name and name != userid else None


def clip_path(path: str) -> str:
    """A path that fits ``member.department``; a long one keeps its end (the team)."""
    return path if len(path) <= MAX_PATH else "…" + path[-(MAX_PATH - 1):]


# ------------------------------------------------------------------------------ members (rows)

MemberView = tuple[str, str, str | None, str]  # name, department, team_lead, status


async def member_views(session: AsyncSession) -> dict[str, MemberView]:
    rows = await session.execute(select(Member.userid, Member.name, Member.department, Member.team_lead,
                                        Member.status))
    return {u: (n, d, t, s) for u, n, d, t, s in rows.all()}


async def _ensure_members(session: AsyncSession, userids: Iterable[str]) -> None:
    rows = [{"userid": u, "name": "", "department": "", "status": ACTIVE} for u in dict.fromkeys(userids)]
    if rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(Member), ["userid"]), rows)


async def _ensure_profiles(session: AsyncSession, userids: Iterable[str], now: datetime) -> None:
    rows = [{"userid": u, "departments": [], "in_wecom": False, "updated_at": now} for u in dict.fromkeys(userids)]
    if rows:
        await session.execute(insert_ignore(dialect_of(session), table_of(StaffProfile), ["userid"]), rows)


def report_of(before: Mapping[str, MemberView], after: Mapping[str, MemberView], report: Report) -> Report:
    """Fill ``report`` from the member rows before and after a change."""
    for userid, row in after.items():
        old = before.get(userid)
        if old is None:
            report.added.append(userid)
        elif row[3] == RESIGNED and old[3] != RESIGNED:
            report.resigned.append(userid)
        elif row != old:
            report.updated.append(userid)
    return report


# ------------------------------------------------------------------------------ full sync


async def apply_snapshot(session: AsyncSession, snap: Snapshot, now: datetime) -> Report:
    """Make the directory what a full read of WeCom's address book says.

    Departments not in it are dropped; members who were in WeCom and are no longer listed are
    resigned (their rows stay); the HR file's team-lead overrides stay.
    """
    before = await member_views(session)
    leads: dict[int, list[str]] = {d.id: list(d.leaders) for d in snap.departments}
    for person in snap.people:
        if person.active is False:
            continue
        for dept_id in sorted(person.leader_in or ()):
            if dept_id in leads and person.userid not in leads[dept_id]:
                leads[dept_id].append(person.userid)
    known = {d.id for d in snap.departments}
    await session.execute(delete(StaffDepartment).where(StaffDepartment.id.not_in(known) if known else true()))
    for dept in snap.departments:
        await _put_department(session, dept.id, now, name=dept.name, parent_id=dept.parent_id, set_parent=True,
                              sort_order=dept.sort_order, leaders=leads[dept.id])
    seen = [p.userid for p in snap.people]
    await _ensure_members(session, seen)
    await _ensure_profiles(session, seen, now)
    for person in snap.people:
        await _write_person(session, person, now)
    vanished = list((await session.scalars(select(StaffProfile.userid).where(
        StaffProfile.in_wecom.is_(True), StaffProfile.userid.not_in(seen) if seen else true()))).all())
    if vanished:
        await session.execute(update(StaffProfile).where(StaffProfile.userid.in_(vanished))
                              .values(in_wecom=False, updated_at=now))
        await session.execute(update(Member).where(Member.userid.in_(vanished)).values(status=RESIGNED))
    await recompute(session)
    return report_of(before, await member_views(session),
                     Report(departments=len(snap.departments), members=len(snap.people)))


async def _write_person(session: AsyncSession, person: PersonChange, now: datetime) -> None:
    """The profile and member row of one member (both exist)."""
    values: dict[str, object] = {"in_wecom": True, "updated_at": now}
    if person.departments is not None:
        values["departments"] = list(person.departments)
        main = person.main_department
        values["main_department"] = main if main is not None else (person.departments[0] if person.departments
                                                                    else None)
    elif person.main_department is not None:
        values["main_department"] = person.main_department
    await session.execute(update(StaffProfile).where(StaffProfile.userid == person.userid).values(**values))
    member: dict[str, object] = {}
    name = real_name(person.name, person.userid)
    if name is not None:
        member["name"] = name
    if person.active is not None:
        member["status"] = ACTIVE if person.active else RESIGNED
    if member:
        await session.execute(update(Member).where(Member.userid == person.userid).values(**member))


# ------------------------------------------------------------------------------ one change


async def apply_person(session: AsyncSession, person: PersonChange, now: datetime) -> None:
    """One member created or changed in WeCom (a ``create_user``/``update_user`` callback)."""
    await _ensure_members(session, [person.userid])
    await _ensure_profiles(session, [person.userid], now)
    await _write_person(session, person, now)
    if person.active is False:
        await _set_leadership(session, person.userid, frozenset())
    elif person.leader_in is not None:
        await _set_leadership(session, person.userid, person.leader_in)
    await recompute(session)


async def resign(session: AsyncSession, userid: str, now: datetime) -> None:
    """The member left (``delete_user``): status resigned, no longer anyone's leader; the row stays."""
    await _ensure_members(session, [userid])
    await session.execute(update(Member).where(Member.userid == userid).values(status=RESIGNED))
    await session.execute(update(StaffProfile).where(StaffProfile.userid == userid)
                          .values(in_wecom=False, updated_at=now))
    await _set_leadership(session, userid, frozenset())
    await recompute(session)


async def _set_leadership(session: AsyncSession, userid: str, leader_in: frozenset[int]) -> None:
    """``userid`` leads exactly the departments ``leader_in`` (of those we know)."""
    for dept in (await session.scalars(select(StaffDepartment))).all():
        leaders = list(dept.leaders or [])
        want = dept.id in leader_in
        if want and userid not in leaders:
            dept.leaders = [*leaders, userid]
        elif not want and userid in leaders:
            dept.leaders = [u for u in leaders if u != userid]
    await session.flush()


async def put_department(session: AsyncSession, dept_id: int, now: datetime, *, name: str | None = None,
                         parent_id: int | None = None, parent_given: bool = False,
                         sort_order: int | None = None) -> None:
    """A department created or changed (``create_party``/``update_party``: only what was sent)."""
    await _put_department(session, dept_id, now, name=name, parent_id=parent_id, set_parent=parent_given,
                          sort_order=sort_order)
    await recompute(session)


async def _put_department(session: AsyncSession, dept_id: int, now: datetime, *, name: str | None = None,
                          parent_id: int | None = None, set_parent: bool = False, sort_order: int | None = None,
                          leaders: list[str] | None = None) -> None:
    row = await session.get(StaffDepartment, dept_id)
    if row is None:
        row = StaffDepartment(id=dept_id, name="", parent_id=None, sort_order=0, leaders=[], updated_at=now)
        session.add(row)
    if name is not None:
        row.name = name[:128]
    if set_parent:  # 0 (WeCom's parent of the top department) is none
        row.parent_id = parent_id if parent_id and parent_id != dept_id else None
    if sort_order is not None:
        row.sort_order = sort_order
    if leaders is not None:
        row.leaders = list(leaders)
    row.updated_at = now
    await session.flush()


async def drop_department(session: AsyncSession, dept_id: int) -> None:
    """A department was deleted (``delete_party``); WeCom deletes only empty ones."""
    await session.execute(delete(StaffDepartment).where(StaffDepartment.id == dept_id))
    await recompute(session)


# ------------------------------------------------------------------------------ HR file


@dataclass(frozen=True)
class HrRow:
    """One member as the HR file states them."""

    userid: str
    name: str
    department: str
    team_lead: str | None
    status: str


async def apply_hr(session: AsyncSession, rows: Sequence[HrRow], now: datetime) -> Report:
    """Put the HR file's members in: name, department path, status, and the team-lead override
    (an empty ``team_lead`` clears it: the department's leader applies again). WeCom's own
    department path wins for members it placed."""
    before = await member_views(session)
    userids = [r.userid for r in rows]
    await _ensure_members(session, userids)
    await _ensure_profiles(session, userids, now)
    for row in rows:
        await session.execute(update(Member).where(Member.userid == row.userid)
                              .values(name=row.name, department=row.department, status=row.status))
        await session.execute(update(StaffProfile).where(StaffProfile.userid == row.userid)
                              .values(team_lead_override=row.team_lead, updated_at=now))
    await recompute(session)
    return report_of(before, await member_views(session), Report(members=len(rows)))


# ------------------------------------------------------------------------------ derived fields


def department_path(depts: Mapping[int, Dept], dept_id: int) -> str | None:
    """``top/…/dept`` by names, or None for a department we do not know."""
    names: list[str] = []
    seen: set[int] = set()
    current: int | None = dept_id
    while current is not None and current in depts and current not in seen:
        seen.add(current)
        names.append(depts[current].name)
        current = depts[current].parent_id
    return PATH_SEP.join(reversed(names)) if names else None


def leader_for(depts: Mapping[int, Dept], dept_id: int | None, userid: str, status: Mapping[str, str]) -> str | None:
    """The first active leader other than ``userid`` of ``dept_id`` or of a department above it."""
    seen: set[int] = set()
    current = dept_id
    while current is not None and current in depts and current not in seen:
        seen.add(current)
        for lead in depts[current].leaders:
            if lead != userid and status.get(lead) == ACTIVE:
                return lead
        current = depts[current].parent_id
    return None


async def load_departments(session: AsyncSession) -> dict[int, Dept]:
    rows = (await session.scalars(select(StaffDepartment))).all()
    return {r.id: Dept(id=r.id, name=r.name, parent_id=r.parent_id, sort_order=r.sort_order,
                       leaders=tuple(r.leaders or ())) for r in rows}


async def recompute(session: AsyncSession) -> int:
    """Rewrite the department path and team lead of every member the directory knows, where they
    changed; returns how many rows changed."""
    await session.flush()
    depts = await load_departments(session)
    members = await member_views(session)
    status = {u: v[3] for u, v in members.items()}
    changed = 0
    for profile in (await session.scalars(select(StaffProfile))).all():
        row = members.get(profile.userid)
        if row is None:
            continue
        _, department, team_lead, _ = row
        main = profile.main_department
        path = department_path(depts, main) if main is not None else None
        computed = leader_for(depts, main, profile.userid, status) if main is not None else None
        override = profile.team_lead_override
        lead = override if override and override != profile.userid and status.get(override) == ACTIVE else computed
        new_department = clip_path(path) if path is not None else department
        if (new_department, lead) != (department, team_lead):
            await session.execute(update(Member).where(Member.userid == profile.userid)
                                  .values(department=new_department, team_lead=lead))
            changed += 1
    return changed


# ------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class Entry:
    """One member as ``scrm staff list|show`` prints them."""

    userid: str
    name: str
    department: str
    team_lead: str | None
    status: str
    lead_source: str = ""  # "HR file", "department leader", "" (none)
    leads: tuple[str, ...] = ()  # paths of the departments they lead
    reports: tuple[str, ...] = ()  # members whose team lead they are
    in_wecom: bool = False


async def list_members(session: AsyncSession, status: str | None = None) -> list[Entry]:
    stmt = select(Member).order_by(Member.department, Member.userid)
    if status is not None:
        stmt = stmt.where(Member.status == status)
    return [Entry(userid=m.userid, name=m.name, department=m.department, team_lead=m.team_lead, status=m.status)
            for m in (await session.scalars(stmt)).all()]


async def show_member(session: AsyncSession, userid: str) -> Entry | None:
    member = await session.get(Member, userid)
    if member is None:
        return None
    profile = await session.get(StaffProfile, userid)
    depts = await load_departments(session)
    leads = tuple(p for d in depts.values() if userid in d.leaders
                  if (p := department_path(depts, d.id)) is not None)
    reports = tuple((await session.scalars(select(Member.userid).where(Member.team_lead == userid)
                                           .order_by(Member.userid))).all())
    source = ""
    if member.team_lead:
        override = profile.team_lead_override if profile is not None else None
        source = "HR file" if override == member.team_lead else "department leader"
    return Entry(userid=member.userid, name=member.name, department=member.department, team_lead=member.team_lead,
                 status=member.status, lead_source=source, leads=tuple(sorted(leads)), reports=reports,
                 in_wecom=bool(profile is not None and profile.in_wecom))
