"""Turn planned actions into outbox rows (idempotent by key) and skips into occurrence rows."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.db.engine import dialect_of, insert_ignore, table_of
from scrm.db.models import Occurrence, Tag, TagGroup
from scrm.db.models_sop import SopSend
from scrm.outbox import Outbox
from scrm.scheduler import Scheduler
from scrm.sop import Playbook, RenderedMaterial, TemplateError, render_material

from .cards import TaskCard, issue_card
from .model import Decision, Planned, Skip

log = logging.getLogger("scrm.sop_engine")

ADD_MSG_TEMPLATE = "externalcontact/add_msg_template"


@dataclass
class Outcome:
    """What one run did, by kind; ``skips`` by reason for logs and `scrm sop plan`."""

    sent: dict[str, int] = field(default_factory=dict)
    skips: dict[str, int] = field(default_factory=dict)

    def total_sent(self) -> int:
        return sum(self.sent.values())


def attachments_of(m: RenderedMaterial) -> list[dict[str, Any]]:
    """WeCom attachments for what can go without an upload.

    Mini programs, files and images by path need a media id (media/upload, valid 3 days);
    the outbox has no upload step yet, so those go as text only (logged).
    """
    if m.link is not None:
        link: dict[str, Any] = {"title": m.link.title, "url": m.link.url, "desc": m.link.desc}
        if m.link.cover:
            link["picurl"] = m.link.cover
        return [{"msgtype": "link", "link": link}]
    if m.image is not None and m.image.url:
        return [{"msgtype": "image", "image": {"pic_url": m.image.url}}]
    if m.miniprogram or m.file or m.image:
        log.warning("material %s: attachment needs a media upload; sending text only", m.id)
    return []


class Executor:
    """Writes the decisions of one planner run in the caller's transaction."""

    def __init__(self, session: AsyncSession, outbox: Outbox, pb: Playbook, *, agent_id: int, now: datetime,
                 scheduler: Scheduler | None = None) -> None:
        self.session = session
        self.outbox = outbox
        self.pb = pb
        self.agent_id = agent_id
        self.now = now
        self.scheduler = scheduler
        self.outcome = Outcome()
        self._tag_ids: dict[str, str] | None = None

    async def run(self, decisions: AsyncIterable[Decision]) -> Outcome:
        async for d in decisions:
            if isinstance(d, Skip):
                await self.skip(d)
            else:
                await self.execute(d)
        return self.outcome

    async def _occurrence(self, job: str, occurrence: str, outcome: str, reason: str | None) -> None:
        row = {"job_key": job[:256], "occurrence_key": occurrence[:512], "outcome": outcome, "reason": reason,
               "at": self.now}
        await self.session.execute(insert_ignore(dialect_of(self.session), table_of(Occurrence), row,
                                                 ["job_key", "occurrence_key"]))

    async def skip(self, s: Skip) -> None:
        reason_kind = s.reason.split(":")[0].split(" ")[0]
        self.outcome.skips[reason_kind] = self.outcome.skips.get(reason_kind, 0) + 1
        await self._occurrence(f"sop:{s.source}:{s.step}", f"{s.target}:{s.day}", "skipped", s.reason)

    async def execute(self, p: Planned) -> None:
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
        await self._occurrence(f"sop:{p.source}:{p.step}", f"{p.target}:{p.day}" + (":tag" if p.kind == "tag" else ""),
                               "done", None)

    def _render(self, p: Planned) -> RenderedMaterial:
        assert p.material is not None
        return render_material(self.pb.materials[p.material], p.context, self.pb.policy)

    async def _push(self, p: Planned) -> None:
        m = self._render(p)
        body: dict[str, Any] = {"sender": p.sender, "text": {"content": m.text or ""},
                                "attachments": attachments_of(m)}
        if p.kind == "group":
            body.update(chat_type="group", chat_id_list=[p.target])
        else:
            body.update(chat_type="single", external_userid=[p.target], allow_select=p.allow_select)
        await self.outbox.add(self.session, p.key, ADD_MSG_TEMPLATE, body)
        row = {"key": p.key, "target": p.target, "target_type": "group" if p.kind == "group" else "customer",
               "source": p.source, "step": p.step[:256], "sender": p.sender, "material": p.material or "",
               "day": p.day, "created_at": self.now}
        await self.session.execute(insert_ignore(dialect_of(self.session), table_of(SopSend), row, ["key"]))

    async def _task(self, p: Planned) -> None:
        m = self._render(p)
        title = m.link.title if m.link else (self.pb.materials[p.material or ""].title or "待办任务")
        card = TaskCard(key=p.key, userid=p.sender, target=p.target, source=p.source, title=title,
                        text=m.text or "", day=p.day)
        await issue_card(self.session, self.outbox, self.scheduler, card, agent_id=self.agent_id, now=self.now)

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
