"""Turn planned actions into outbox rows (idempotent by key) and skips into occurrence rows.

Link materials go out as tracked radar links (customer named for 1:1 sends), each send counted
in the same transaction; mini programs, files and images by path go with media placeholders
that the outbox fills in when it sends (see :mod:`.media`); task cards over the manager's daily
limit are carried over to the next workday with room (see :func:`.cards.defer_card`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.campaigns.api import (
    ADD_MOMENT_TASK,
    HOLDOUT_REASON,
    HOLDOUT_TOUCH,
    MOMENT_ASKED,
    SENT,
    SKIPPED,
    CampaignTouches,
    Exposures,
    campaign_of_source,
    record_moment,
)
from handlers.compliance.api import SUITABILITY_NOTE, ProductNote, is_product, trail_about
from handlers.radar.api import LinkMaker, record_send
from handlers.sop.models import SopSend
from handlers.tags.api import Tag, TagGroup
from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.kernel.outbox import MERGE, PRIORITY_INTERACTIVE, Outbox
from scrm.kernel.scheduler import Scheduler, TriggerSpec
from scrm.playbook import Playbook, RenderedMaterial, TemplateError, render_material

from .cards import SCRIPT_HINT, TaskCard, defer_card, issue_card, record_outcome
from .events import SopMomentPoll
from .media import ADD_MSG_TEMPLATE, attachment_of, moment_attachment_of
from .model import Decision, Planned, Skip

log = logging.getLogger("handlers.sop.engine")
#: add_moment_task answers a job id at once; its result is usually ready within seconds.
MOMENT_FIRST_POLL = timedelta(minutes=5)


@dataclass
class Outcome:
    """What one run did, by kind; ``skips`` by reason for logs and `scrm sop plan`."""

    sent: dict[str, int] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)
    deferred: int = 0

    def total_sent(self) -> int:
        return sum(self.sent.values())


def attachments_of(m: RenderedMaterial) -> list[dict[str, Any]]:
    """The add_msg_template attachments of ``m`` (media ids as placeholders, see :mod:`.media`)."""
    item = attachment_of(m)
    return [item] if item is not None else []


def occurrence_of(p: Planned) -> str:
    """The radar occurrence of a planned action: ``<step>@<target>:<day>``, so that
    ``scrm radar stats --by-step`` groups every send of a step (``p.key`` with an ``@``)."""
    return f"sop:{p.source}:{p.step}@{p.target}:{p.day.isoformat()}"


class Executor:
    """Writes the decisions of one planner run in the caller's transaction."""

    def __init__(self, session: AsyncSession, outbox: Outbox, pb: Playbook, *, agent_id: int, now: datetime,
                 scheduler: Scheduler | None = None, links: LinkMaker | None = None) -> None:
        self.session = session
        self.outbox = outbox
        self.pb = pb
        self.agent_id = agent_id
        self.now = now
        self.scheduler = scheduler
        self.links = links  # None only for previews and tests: links would go untracked
        self.outcome = Outcome()
        self.exposures = Exposures(session, now)  # A/B experiments: who met which arm of a step
        self.touches = CampaignTouches(session, now)  # campaigns: what each channel did for whom
        self._tag_ids: dict[str, str] | None = None

    async def run(self, decisions: AsyncIterable[Decision]) -> Outcome:
        async for d in decisions:
            if isinstance(d, Skip):
                await self.skip(d)
            else:
                await self.execute(d)
        await self.flush()
        return self.outcome

    async def flush(self) -> None:
        """Write the exposures and campaign touches still batched (before the transaction commits)."""
        await self.exposures.flush()
        await self.touches.flush()

    async def _occurrence(self, job: str, occurrence: str, outcome: str, reason: str | None) -> None:
        await record_outcome(self.session, job, occurrence, outcome, reason, self.now)

    async def skip(self, s: Skip) -> None:
        if s.carry is not None and self.scheduler is not None:
            try:
                await self._task(s.carry, over_limit=s.reason)
                await self.touches.record(s.source, s.step, s.target, SENT, manager=s.carry.sender, reason=s.reason)
                return
            except TemplateError as exc:
                s = Skip(s.source, s.step, s.target, s.day, f"template: {exc}")
        if s.tell is not None:
            await self._tell(s)
        if s.reason == HOLDOUT_REASON:
            await self.exposures.record(s.source, s.step, s.target)
        await self.touches.record(s.source, s.step, s.target, HOLDOUT_TOUCH if s.reason == HOLDOUT_REASON else SKIPPED,
                                  manager=s.sender, reason=s.reason)
        reason_kind = s.reason.split(":")[0].split(" ")[0]
        self.outcome.skips[reason_kind] = self.outcome.skips.get(reason_kind, 0) + 1
        await self._occurrence(f"sop:{s.source}:{s.step}", f"{s.target}:{s.day}", "skipped", s.reason)

    async def _tell(self, s: Skip) -> None:
        """The manager's notice of a task not issued (the member's notice lane merges a burst)."""
        assert s.tell is not None
        userid, text = s.tell
        body = {"touser": userid, "msgtype": "text", "agentid": self.agent_id, "text": {"content": text}}
        await self.outbox.add_action(self.session, f"{s.key}:told", "wecom",
                                     {"api": "message/send", "body": body, "method": "POST", MERGE: True},
                                     priority=PRIORITY_INTERACTIVE, lane=f"notice:{userid}")

    async def execute(self, p: Planned) -> None:
        if p.kind == "moments":
            await self._post(p)
            return
        try:
            if p.kind == "tag":
                await self._tag(p)
            elif p.kind == "task":
                await self._task(p)
            else:
                await self._push(p)
        except TemplateError as exc:
            await self.skip(Skip(p.source, p.step, p.target, p.day, f"template: {exc}"))
            return
        self.outcome.sent[p.kind] = self.outcome.sent.get(p.kind, 0) + 1
        if p.kind in ("private", "task"):
            await self.exposures.record(p.source, p.step, p.target)
        if p.kind != "tag":
            await self.touches.record(p.source, p.step, p.target, SENT, manager=p.sender)
        await self._occurrence(f"sop:{p.source}:{p.step}", f"{p.target}:{p.day}" + (":tag" if p.kind == "tag" else ""),
                               "done", None)

    def _render(self, p: Planned) -> RenderedMaterial:
        assert p.material is not None
        return render_material(self.pb.materials[p.material], p.context, self.pb.policy)

    def _track(self, m: RenderedMaterial, p: Planned, customer: str | None) -> RenderedMaterial:
        """``m`` with its link as a tracked radar link (when links are on)."""
        if self.links is None or m.link is None:
            return m
        return self.links.track(m, p.sender, customer=customer, occurrence=occurrence_of(p))

    async def _count_link(self, m: RenderedMaterial) -> None:
        if self.links is not None and m.link is not None:
            await record_send(self.session, self.links, m.link.url, self.now)

    async def _push(self, p: Planned) -> None:
        m = self._track(self._render(p), p, None if p.kind == "group" else p.target)
        body: dict[str, Any] = {"sender": p.sender, "text": {"content": m.text or ""},
                                "attachments": attachments_of(m)}
        if p.kind == "group":
            body.update(chat_type="group", chat_id_list=[p.target])
        else:
            body.update(chat_type="single", external_userid=[p.target], allow_select=p.allow_select)
            material = self.pb.materials[p.material] if p.material else None
            if material is not None and is_product(material):
                # Re-checked just before the call: consent or an assessment may change meanwhile.
                body[SUITABILITY_NOTE] = ProductNote(material.id, material.risk_level,
                                                     material.product_category).as_json()
        checks = ["outside quiet hours"] if p.kind == "group" else [
            "outside quiet hours", "not opted out", "within contact caps", *p.checks]
        trail = trail_about("sop", sender=p.sender, audience=[p.target],
                            audience_type="group" if p.kind == "group" else "customer",
                            material=self.pb.materials[p.material] if p.material else None,
                            decisions=[f"{p.source} / {p.step}", *checks])
        await self.outbox.add(self.session, p.key, ADD_MSG_TEMPLATE, body, about={"trail": trail})
        await self._count_link(m)
        row = {"key": p.key, "target": p.target, "target_type": "group" if p.kind == "group" else "customer",
               "source": p.source, "step": p.step[:256], "sender": p.sender, "material": p.material or "",
               "day": p.day, "created_at": self.now}
        await self.session.execute(insert_ignore(dialect_of(self.session), table_of(SopSend), ["key"]), row)

    async def _post(self, p: Planned) -> None:
        """A Moments post, or — it cannot be written — a skip for each customer it was for."""
        try:
            await self._moment(p)
        except TemplateError as exc:
            for customer, manager in p.audience:
                await self.skip(Skip(p.source, p.step, customer, p.day, f"template: {exc}", sender=manager))
            return
        self.outcome.sent[p.kind] = self.outcome.sent.get(p.kind, 0) + 1
        await self._occurrence(f"sop:{p.source}:{p.step}", f"{p.target}:{p.day}", "done", None)

    async def _moment(self, p: Planned) -> None:
        """One add_moment_task for the channel (its senders: the audience's managers), the
        customers' touches ``asked``, and the dated job that follows the post up (a replay adds
        nothing: the outbox key, the moment row and the touches are all keyed)."""
        name = campaign_of_source(p.source)
        assert name is not None and p.material is not None
        material = self.pb.materials[p.material]
        m = self._track(self._render(p), p, None)
        senders = sorted({manager for _, manager in p.audience})
        body: dict[str, Any] = {"text": {"content": m.text or ""},
                                "visible_range": {"sender_list": {"user_list": senders}}}
        attachment = moment_attachment_of(m)
        if attachment is not None:
            body["attachments"] = [attachment]
        if p.visible_tags:
            ids = await self._tags()
            missing = [t for t in p.visible_tags if t not in ids]
            if missing:  # sending without them would show the post to every customer
                raise TemplateError(f"customer_tags not in WeCom yet: {', '.join(missing)}")
            body["visible_range"]["external_contact_list"] = {"tag_list": [ids[t] for t in p.visible_tags]}
        trail = trail_about("sop", sender=",".join(senders)[:256], audience=senders, audience_type="moments",
                            material=material, decisions=[f"{p.source} / {p.step}", "outside quiet hours"])
        await self.outbox.add(self.session, p.key, ADD_MOMENT_TASK, body, about={"trail": trail})
        await self._count_link(m)
        await record_moment(self.session, p.key, name, p.step, senders, self.now)
        for customer, manager in p.audience:
            await self.touches.record(p.source, p.step, customer, MOMENT_ASKED, manager=manager)
        if self.scheduler is not None:
            await self.scheduler.put_job(self.session, f"sop.moment:{p.key}"[:256], SopMomentPoll,
                                         TriggerSpec(type="date", at=self.now + MOMENT_FIRST_POLL),
                                         payload={"key": p.key}, misfire_grace_s=86400)

    async def _task(self, p: Planned, *, over_limit: str | None = None) -> None:
        """A card to the manager now, or — ``over_limit`` — carried over to the next workday with room."""
        # Calendar tasks are about a group; path tasks about one customer (named in the link).
        customer = None if p.source.startswith("calendar:") else p.target
        m = self._track(self._render(p), p, customer)
        title = m.link.title if m.link else (self.pb.materials[p.material or ""].title or "待办任务")
        text = m.text or ""
        if p.script:  # the words themselves wait in the chat sidebar, rendered for this customer
            text = f"{text}\n{SCRIPT_HINT}" if text else SCRIPT_HINT
        card = TaskCard(key=p.key, userid=p.sender, target=p.target, source=p.source, title=title,
                        text=text, day=p.day, link=(m.link.title, m.link.url) if m.link else None,
                        script=p.script)
        if over_limit is None:
            issued = await issue_card(self.session, self.outbox, self.scheduler, card, agent_id=self.agent_id,
                                      now=self.now)
        else:
            assert self.scheduler is not None
            day = await defer_card(self.session, self.scheduler, card, self.pb, now=self.now, reason=over_limit)
            issued = day is not None
            # A repeat (replay, second instance) finds the first run's row: insert_ignore keeps it.
            outcome, why = (("deferred", f"{over_limit}; carried over to {day}") if issued else
                            ("skipped", f"{over_limit}; no workday with room found"))
            self.outcome.deferred += int(issued)
            await self._occurrence(f"sop:{p.source}:{p.step}", f"{p.target}:{p.day}:task", outcome, why)
        if issued:
            await self._count_link(m)

    async def _tag(self, p: Planned) -> None:
        ids = await self._tags()
        add = [ids[t] for t in p.add_tags if t in ids]
        remove = [ids[t] for t in p.remove_tags if t in ids]
        missing = [t for t in (*p.add_tags, *p.remove_tags) if t not in ids]
        if missing:
            log.warning("sop tag step: tags not in WeCom yet: %s", ", ".join(missing))
        if add or remove:
            await self.outbox.add(self.session, p.key, "externalcontact/mark_tag",
                                  {"userid": p.sender, "external_userid": p.target, "add_tag": add,
                                   "remove_tag": remove}, lane=f"customer:{p.target}")

    async def _tags(self) -> dict[str, str]:
        if self._tag_ids is None:
            rows = await self.session.execute(select(Tag.tag_id, TagGroup.name, Tag.name)
                                              .join(TagGroup, TagGroup.group_id == Tag.group_id)
                                              .where(Tag.deleted.is_(False)))
            self._tag_ids = {f"{g}/{n}": tid for tid, g, n in rows.all()}
        return self._tag_ids
