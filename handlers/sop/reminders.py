"""Key-event reminders: task cards to the customer's manager (and escalation to the team lead).

Two entries: CRM key events (:class:`CrmKeyEvent`: maturity is scheduled N days ahead; large transfers, tier
and manager changes are immediate) and daily scans (birthday, risk-assessment expiry, maturity
from CRM attributes, no contact for N days). Both use the key ``reminder:{name}:{customer}:{date}``
so the same occurrence reaches the manager once, whichever entry saw it first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.contacts.api import Customer
from handlers.crm.api import Binding, CrmKeyEvent
from handlers.radar.api import LinkMaker, record_send
from handlers.sop.models import SopTask
from scrm.kernel.outbox import Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook, Reminder, RenderedMaterial, TemplateError, render_material, render_template
from scrm.playbook.quiet import local_day, next_allowed

from .cards import TaskCard, defer_card, issue_card, record_outcome
from .events import SopDatedReminder
from .planner import _parse_date, customer_context
from .targets import CustomerTarget, iter_customers, member_names, tag_names

log = logging.getLogger("handlers.sop.reminders")

# CRM event kinds → reminder kinds (the CRM engineer's names, with tolerated spellings).
CRM_KINDS = {"maturity": "maturity", "large_transfer": "large_transfer", "tier_up": "tier_up",
             "tier_down": "tier_down", "manager_change": "manager_change", "birthday": "birthday",
             "risk_expiry": "risk_expiry"}


class ReminderRunner:
    """Issues reminder cards inside the caller's transaction."""

    def __init__(self, session: AsyncSession, pb: Playbook, outbox: Outbox, scheduler: Scheduler | None, *,
                 agent_id: int, now: datetime, links: LinkMaker | None = None) -> None:
        self.session = session
        self.links = links
        self.pb = pb
        self.outbox = outbox
        self.scheduler = scheduler
        self.agent_id = agent_id
        self.now = now
        self.tz = ZoneInfo(pb.policy.timezone)
        self.today = now.astimezone(self.tz).date()
        self._managers: dict[str, str] | None = None
        self._tasks_today: dict[str, int] = {}

    def reminders_for(self, kind: str) -> list[tuple[str, Reminder]]:
        return [(n, r) for n, r in self.pb.reminders.items() if r.active and r.on == kind]

    # -- card --------------------------------------------------------------------------------
    async def card(self, name: str, r: Reminder, c: CustomerTarget, occurrence: str,
                   extra: Mapping[str, Any] | None = None, *, userid: str | None = None) -> bool:
        """One reminder card for customer ``c`` (to ``userid`` or its primary manager)."""
        manager = c.manager
        userid = userid or (manager.userid if manager else None)
        if userid is None:
            return False
        managers = await self._names()
        base = {"manager.name": managers.get(userid, userid), "date.today": f"{self.today.month}月{self.today.day}日",
                "date.month": f"{self.today.month}月"}
        if extra:
            c.attributes = {**c.attributes, **{k: v for k, v in extra.items() if k not in ("crm_id", "kind")}}
        ctx = customer_context(c, manager.remark if manager else "", base)
        key = f"reminder:{name}:{c.external_userid}:{occurrence}"
        try:
            text = render_template(r.card, ctx)
            radar_occurrence = f"reminder:{name}@{c.external_userid}:{occurrence}"
            script = self._script(r, ctx, userid, c.external_userid, radar_occurrence)
        except TemplateError as exc:
            log.warning("reminder %s: %s", name, exc)
            return False
        if script is not None and script.text:
            text = f"{text}\n建议话术：{script.text}"
        link = script.link if script is not None else None
        card = TaskCard(key=key, userid=userid, target=c.external_userid, source=f"reminder:{name}", title=r.name,
                        text=text, day=self.today, buttons=tuple(r.buttons), escalate_after=r.escalate_after,
                        snooze=r.snooze, link=(link.title, link.url) if link else None)
        if await self._over_limit(userid):
            return await self._carry(card, f"manager_daily_tasks {self.pb.policy.manager_daily_tasks} reached "
                                           f"for {userid}", script)
        issued = await issue_card(self.session, self.outbox, self.scheduler, card, agent_id=self.agent_id,
                                  now=self.now)
        if issued:
            self._tasks_today[userid] = self._tasks_today.get(userid, 0) + 1
            await self._count_link(script)
        return issued

    async def _carry(self, card: TaskCard, reason: str, script: RenderedMaterial | None) -> bool:
        """Over today's limit: the card waits for the next workday with room (not lost)."""
        if self.scheduler is None:
            log.warning("%s: %s; no scheduler to carry it over", card.key, reason)
            return False
        day = await defer_card(self.session, self.scheduler, card, self.pb, now=self.now, reason=reason)
        if day is None:
            return False  # carried (or sent) before
        log.info("%s: %s; carried over to %s", card.key, reason, day)
        await record_outcome(self.session, card.source, card.key, "deferred", f"{reason}; carried over to {day}",
                             self.now)
        await self._count_link(script)
        return True

    async def _count_link(self, script: RenderedMaterial | None) -> None:
        if self.links is not None and script is not None and script.link is not None:
            await record_send(self.session, self.links, script.link.url, self.now)

    def _script(self, r: Reminder, ctx: Mapping[str, str], sender: str, customer: str,
                occurrence: str) -> RenderedMaterial | None:
        """The suggested message, only when its material may be used today (links tracked)."""
        if not r.script:
            return None
        material = self.pb.materials.get(r.script)
        if material is None or material.compliance_problem(self.today):
            return None
        rendered = render_material(material, ctx, self.pb.policy)
        if self.links is None:
            return rendered
        return self.links.track(rendered, sender, customer=customer, occurrence=occurrence)

    async def _names(self) -> dict[str, str]:
        if self._managers is None:
            self._managers = await member_names(self.session)
        return self._managers

    async def _over_limit(self, userid: str) -> bool:
        if userid not in self._tasks_today:
            n = await self.session.scalar(select(func.count()).select_from(SopTask)
                                          .where(SopTask.userid == userid, SopTask.day == self.today))
            self._tasks_today[userid] = int(n or 0)
        return self._tasks_today[userid] >= self.pb.policy.manager_daily_tasks

    # -- CRM events --------------------------------------------------------------------------
    async def customer_by_crm(self, crm_id: str, known: object = None) -> CustomerTarget | None:
        ext = str(known) if known else await self.session.scalar(
            select(Customer.external_userid).where(Customer.crm_id == crm_id))
        ext = ext or await self.session.scalar(select(Binding.external_userid).where(Binding.crm_id == crm_id))
        if not ext:
            return None
        async for batch in iter_customers(self.session, await tag_names(self.session), only=[ext]):
            return batch[0] if batch else None
        return None

    async def on_crm_event(self, event: CrmKeyEvent) -> int:
        """React to one CRM key event; returns cards issued now (dated ones are scheduled)."""
        # The event's own fields over its details, flat: what cards and dated jobs read.
        payload: dict[str, Any] = {**event.details, "event_id": event.event_id, "crm_id": event.crm_id,
                                   "kind": event.event_kind, "at": event.occurred_at.isoformat(),
                                   "external_userid": event.external_userid}
        kind = CRM_KINDS.get(str(payload.get("kind", "")))
        crm_id = str(payload.get("crm_id", ""))
        if kind is None or not crm_id:
            return 0
        customer = await self.customer_by_crm(crm_id, payload.get("external_userid"))
        if customer is None:
            log.info("crm event %s for %s: no WeCom contact bound", kind, crm_id)
            return 0
        issued = 0
        for name, r in self.reminders_for(kind):
            if kind in ("maturity", "birthday", "risk_expiry"):
                await self._schedule_dated(name, r, customer, payload)
                continue
            if kind == "large_transfer" and float(payload.get("amount") or 0) < (r.threshold or 0):
                continue
            occurrence = str(payload.get("event_id") or payload.get("at") or self.today.isoformat())
            userid = str(payload.get("new_manager") or payload.get("userid") or "") or None
            issued += await self.card(name, r, customer, occurrence, payload, userid=userid)
        return issued

    async def _schedule_dated(self, name: str, r: Reminder, c: CustomerTarget, payload: Mapping[str, Any]) -> None:
        """Maturity in N days: a dated job at ``date - days_before`` at the reminder's time."""
        field = {"maturity": "maturity_date", "birthday": "birthday", "risk_expiry": "risk_expiry"}[r.on]
        when = _parse_date(payload.get(field) or c.attributes.get(field))
        if when is None or self.scheduler is None:
            return
        fire = datetime.combine(when - timedelta(days=r.days_before or 0), r.at, self.tz)
        extra = {k: v for k, v in payload.items() if isinstance(v, str | int | float)}
        job_payload = {"reminder": name, "external_userid": c.external_userid, "occurrence": when.isoformat(),
                       "extra": extra}
        if fire <= self.now:
            await self.card(name, r, c, when.isoformat(), extra)
            return
        await self.scheduler.put_job(self.session, f"sop.reminder:{name}:{c.external_userid}:{when}",
                                     SopDatedReminder,
                                     TriggerSpec(type="date", at=fire, timezone=self.pb.policy.timezone),
                                     payload=job_payload, misfire_grace_s=int(timedelta(days=1).total_seconds()))

    async def on_dated(self, event: SopDatedReminder) -> int:
        """A dated reminder job fired."""
        r = self.pb.reminders.get(event.reminder)
        if r is None or not r.active:
            return 0
        async for batch in iter_customers(self.session, await tag_names(self.session), only=[event.external_userid]):
            for c in batch:
                return int(await self.card(event.reminder, r, c, event.occurrence, event.extra))
        return 0

    async def churn_risk(self, external_userid: str, occurrence: str, extra: Mapping[str, Any]) -> int:
        """The customer entered a stage sop/lifecycle.yaml marks ``churn_risk``: each
        ``on: churn_risk`` reminder's card, once per ``occurrence`` (stage and day)."""
        issued = 0
        for name, r in self.reminders_for("churn_risk"):
            async for batch in iter_customers(self.session, await tag_names(self.session), only=[external_userid]):
                for c in batch:
                    issued += await self.card(name, r, c, occurrence, extra)
        return issued

    # -- daily scans -------------------------------------------------------------------------
    async def daily(self, name: str) -> int:
        """Scan every customer for reminder ``name`` (birthday, risk_expiry, maturity, no_contact)."""
        r = self.pb.reminders.get(name)
        if r is None or not r.active:
            return 0
        issued = 0
        async for batch in iter_customers(self.session, await tag_names(self.session)):
            for c in batch:
                occurrence = self._due(r, c)
                if occurrence is not None:
                    issued += await self.card(name, r, c, occurrence)
        return issued

    def _due(self, r: Reminder, c: CustomerTarget) -> str | None:
        """The occurrence (event date) when ``c`` is due for ``r`` today, else ``None``."""
        if r.on == "no_contact":
            manager = c.manager
            if manager is None or r.days is None:
                return None
            last = (manager.last_contact_at or manager.created_at).astimezone(self.tz).date()
            # One card per silence: keyed by the last contact, so it repeats only after new silence.
            return f"since-{last.isoformat()}" if (self.today - last).days >= r.days else None
        field = {"maturity": "maturity_date", "birthday": "birthday", "risk_expiry": "risk_expiry"}[r.on]
        when = _parse_date(c.attributes.get(field))
        if when is None:
            return None
        target = self.today + timedelta(days=r.days_before or 0)
        if r.on == "birthday":
            return target.isoformat() if (when.month, when.day) == (target.month, target.day) else None
        return when.isoformat() if when == target else None


__all__ = ["ReminderRunner", "local_day", "next_allowed"]
