"""The contact policy at send time: quiet hours, caps, opt-out, compliance, manager task limits,
and for product materials the customer's suitability and marketing consent.

Counters are loaded per batch of targets from ``sop_send`` / ``sop_task`` and kept in memory for
the rest of a run, so one run never exceeds a cap with its own sends either.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.compliance.api import (
    SUITABILITY_NOTE,
    CustomerFacts,
    ProductNote,
    consent_rows,
    decisions,
    facts_of,
    is_product,
    reason_zh,
    refusal,
)
from handlers.contacts.api import Customer
from handlers.crm.api import Binding, CrmCustomer
from handlers.sop.models import SopSend, SopTask
from scrm.kernel.outbox import Outbox, PrepareError, Preparer
from scrm.kernel.reloadable import PlaybookSource
from scrm.playbook import Material, Playbook
from scrm.playbook.suitability import DEFAULT_RULES, group_problem

from .targets import CustomerTarget


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
        self._facts: dict[str, CustomerFacts] = {}

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

    async def load_customers(self, session: AsyncSession, batch: Sequence[CustomerTarget]) -> None:
        """Each customer's suitability facts: CRM record (already read) and recorded consent."""
        if not any(is_product(m) for m in self.pb.materials.values()):
            return  # nothing to check: no query
        todo = [c for c in batch if c.external_userid not in self._facts]
        said = await consent_rows(session, [c.external_userid for c in todo])
        crm_at = await crm_times(session, [c.crm_id for c in todo if c.crm_id])
        for c in todo:
            self._facts[c.external_userid] = facts_of(c.attributes, crm_at.get(c.crm_id or ""),
                                                      said.get(c.external_userid, {}), self.pb.suitability)

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

    def suitable(self, material_id: str | None, customer: CustomerTarget) -> str | None:
        """A product material only for a customer whose assessment allows it and who consents."""
        material = self.pb.materials.get(material_id) if material_id else None
        if material is None or not is_product(material):
            return None
        facts = self._facts.get(customer.external_userid) or CustomerFacts(customer.attributes)
        return refusal(material, facts, self.day, self.pb.suitability)

    def task_notice(self, material_id: str, customer: CustomerTarget, reason: str) -> str:
        """What the manager reads about a task not issued for suitability or consent."""
        material = self.pb.materials.get(material_id)
        title = (material.title if material is not None else None) or material_id
        name = str(customer.attributes.get("name") or customer.name)
        return f"任务「{title}」未下发：客户{name}{reason_zh(reason)}。适当性规定不允许向其推荐该产品。"

    def group(self, material_id: str | None) -> str | None:
        """A product material above ``group_max_risk`` never goes where nobody is checked (validate
        refuses such a playbook; this keeps a send from slipping through all the same)."""
        material = self.pb.materials.get(material_id) if material_id else None
        return group_problem(material, self.pb.suitability) if material is not None else None

    def checks(self, material_id: str | None, customer: CustomerTarget) -> tuple[str, ...]:
        """What the trail records of a product send that passed :meth:`suitable`."""
        material = self.pb.materials.get(material_id) if material_id else None
        if material is None or not is_product(material):
            return ()
        facts = self._facts.get(customer.external_userid) or CustomerFacts(customer.attributes)
        return tuple(decisions(material, facts, self.pb.suitability))

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


async def crm_times(session: AsyncSession, crm_ids: Sequence[str]) -> dict[str, datetime]:
    """When the CRM last updated each record: the time its consent map was said."""
    out: dict[str, datetime] = {}
    ids = sorted(set(crm_ids))
    for start in range(0, len(ids), 1000):
        rows = await session.execute(select(CrmCustomer.crm_id, CrmCustomer.updated_at)
                                     .where(CrmCustomer.crm_id.in_(ids[start:start + 1000])))
        out.update({crm_id: at for crm_id, at in rows.all()})
    return out


class SendTimeRecheck:
    """The outbox preparer of add_msg_template: a 1:1 product send is checked again just before
    the call, since the customer's consent or assessment may have changed since it was planned.

    The queued body names its product material (``SUITABILITY_NOTE``, removed here); a customer
    who no longer qualifies fails the action for good (``PrepareError(retry=False)``) with the
    reason, and nothing reaches WeCom. Group sends carry no note: a group's audience cannot
    change a product's fitness (validate keeps products above ``group_max_risk`` out of groups).
    """

    def __init__(self, playbook: PlaybookSource, then: Preparer | None = None) -> None:
        self.playbook = playbook
        self.then = then

    async def __call__(self, outbox: Outbox, body: dict[str, Any]) -> dict[str, Any]:
        note = body.get(SUITABILITY_NOTE)
        if note is not None:
            body = {k: v for k, v in body.items() if k != SUITABILITY_NOTE}
            await self._check(outbox, body, ProductNote.of(note if isinstance(note, dict) else {}))
        return await self.then(outbox, body) if self.then is not None else body

    async def _check(self, outbox: Outbox, body: dict[str, Any], product: ProductNote) -> None:
        pb: Playbook | None = self.playbook.current
        rules = pb.suitability if pb is not None else DEFAULT_RULES
        tz = ZoneInfo(pb.policy.timezone if pb is not None else "Asia/Shanghai")
        today = outbox.clock.now().astimezone(tz).date()
        for ext in body.get("external_userid") or []:
            async with outbox.sessions() as session:
                attributes, crm_at = await crm_record(session, str(ext))
                said = (await consent_rows(session, [str(ext)])).get(str(ext), {})
            why = refusal(product, facts_of(attributes, crm_at, said, rules), today, rules)
            if why is not None:
                raise PrepareError(f"{why}; refused at send time", retry=False)


async def crm_record(session: AsyncSession, external_userid: str) -> tuple[dict[str, Any], datetime | None]:
    """The customer's CRM attributes and their last update (own crm_id first, else a binding's)."""
    crm_id = await session.scalar(select(Customer.crm_id).where(Customer.external_userid == external_userid))
    if not crm_id:
        crm_id = await session.scalar(select(Binding.crm_id).where(Binding.external_userid == external_userid)
                                      .order_by(Binding.bound_at.desc()).limit(1))
    record = await session.get(CrmCustomer, crm_id) if crm_id else None
    return (dict(record.attributes or {}), record.updated_at) if record is not None else ({}, None)
