"""The contact policy at send time: quiet hours, caps, opt-out, compliance, manager task limits.

Counters are loaded per batch of targets from ``sop_send`` / ``sop_task`` and kept in memory for
the rest of a run, so one run never exceeds a cap with its own sends either.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.sop.models import SopSend, SopTask
from scrm.playbook import Material, Playbook


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


class ContactGate:
    """Answers "may this go?" with ``None`` or the reason it may not (recorded as a skip)."""

    def __init__(self, pb: Playbook, day: date) -> None:
        self.pb = pb
        self.day = day
        self.caps = pb.policy.caps
        self.month_start = day.replace(day=1)
        self.window_start = min(self.month_start, week_start(day))
        self._sent: dict[str, list[date]] = defaultdict(list)
        self._tasks: Counter[str] = Counter()
        self._tasks_loaded = False

    # -- loading -----------------------------------------------------------------------------
    async def load_sends(self, session: AsyncSession, targets: Iterable[str]) -> None:
        """Read this month's and this week's customer sends for ``targets`` (one query)."""
        ids = [t for t in targets if t not in self._sent]
        for t in ids:
            self._sent[t] = []
        if not ids:
            return
        rows = await session.execute(select(SopSend.target, SopSend.day).where(
            SopSend.target.in_(ids), SopSend.day >= self.window_start, SopSend.target_type == "customer"))
        for target, day in rows.all():
            self._sent[target].append(day)

    async def load_tasks(self, session: AsyncSession) -> None:
        if self._tasks_loaded:
            return
        rows = await session.execute(select(SopTask.userid, func.count()).where(SopTask.day == self.day)
                                     .group_by(SopTask.userid))
        self._tasks.update({u: int(n) for u, n in rows.all()})
        self._tasks_loaded = True

    # -- checks ------------------------------------------------------------------------------
    def quiet(self, at: time) -> str | None:
        if self.pb.policy.quiet_hours.contains(at):
            return f"quiet hours {self.pb.policy.quiet_hours}"
        return None

    def material(self, material_id: str | None) -> str | None:
        """Never send an unknown, unapproved or expired material."""
        if material_id is None:
            return None
        material: Material | None = self.pb.materials.get(material_id)
        if material is None:
            return f"material {material_id!r} not in the library"
        return material.compliance_problem(self.day)

    def opted_out(self, tags: Iterable[str]) -> str | None:
        if self.pb.policy.opt_out_tag in set(tags):
            return f"opt-out tag {self.pb.policy.opt_out_tag}"
        return None

    def customer_caps(self, target: str) -> str | None:
        """Per-customer caps across every SOP, then WeCom's monthly receive limit."""
        days = self._sent.get(target, [])
        today = sum(1 for d in days if d == self.day)
        week = sum(1 for d in days if d >= week_start(self.day))
        month = sum(1 for d in days if d >= self.month_start)
        if today >= self.caps.per_day:
            return f"cap per_day {self.caps.per_day} reached"
        if week >= self.caps.per_week:
            return f"cap per_week {self.caps.per_week} reached"
        if month >= self.caps.per_month:
            return f"cap per_month {self.caps.per_month} reached"
        if month >= (wecom_cap := self.caps.wecom_cap(self.day)):
            return f"WeCom monthly receive cap {wecom_cap} reached"
        return None

    def manager_tasks(self, userid: str) -> str | None:
        if self._tasks[userid] >= self.pb.policy.manager_daily_tasks:
            return f"manager_daily_tasks {self.pb.policy.manager_daily_tasks} reached for {userid}"
        return None

    # -- bookkeeping -------------------------------------------------------------------------
    def count_send(self, target: str) -> None:
        self._sent[target].append(self.day)

    def count_task(self, userid: str) -> None:
        self._tasks[userid] += 1
