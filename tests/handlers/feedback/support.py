"""A branch running a 1:1 NPS survey on the shipped playbook: a path sends the shipped survey
material 30 days after a customer was added; the SOP engine, the radar and the feedback
handlers run; the service's public address is plain HTTP on loopback, as the test client (and
the browser) speak it, so the form's cookie comes back."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from yarl import URL

from handlers.contacts.models import Member
from handlers.feedback import handlers as feedback_handlers
from handlers.lifecycle.models import CustomerSegment
from handlers.radar import handlers as radar_handlers
from handlers.sop import handlers as sop_handlers
from handlers.tags.models import Tag, TagGroup
from handlers.timeline import handlers as timeline_handlers
from tests.handlers.sop.seeding import local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import Stack, stack

START = local("2026-11-02", "09:00")  # a Monday
ADDED = local("2026-10-03", "15:00")  # the path's day 30 is START's day, at 10:00
MANAGER = "zhangwei"
BRANCH_DEPT = "杭州分行/城西支行/代发服务团队"
SURVEY_MATERIAL = "survey-nps-onboarding"
PATH = f"""\
path: nps
name: 开户满月 NPS
when: {{}}
steps:
  - {{id: nps-day30, on: "added_at + 30 days", at: "10:00", send: {SURVEY_MATERIAL}}}
"""
#: customer → (tier, segments) as the nightly segmentation left them
SEGMENTS: dict[str, tuple[str | None, list[str]]] = {
    "wmAlice": ("wealth", ["payroll", "new"]),
    "wmBob": ("mass", ["payroll"]),
    "wmCarol": ("affluent", []),
    "wmDave": (None, ["silver"]),
    "wmErin": ("mass", ["new"]),
}
CUSTOMERS = list(SEGMENTS)


@contextlib.asynccontextmanager
async def survey_stack(db_url: str, root: Path, *, port: int | None = None,
                       edits: dict[str, dict[str, str]] | None = None) -> AsyncIterator[Stack]:
    """``edits``: text replaced in the copied shipped files (see ``write_shipped_playbook``)."""
    playbook = write_shipped_playbook(root, paths={"nps": PATH}, edits=edits)
    more: dict[str, Any] = {"server": {"public_url": f"http://127.0.0.1:{port or 8080}"}}
    async with stack(db_url, root, start=START, demo=False, playbook=playbook, sections=more, port=port,
                     routers=[sop_handlers.router, radar_handlers.router, feedback_handlers.router,
                              timeline_handlers.router]) as b:
        await seed(b, customers=CUSTOMERS, manager=MANAGER, added=ADDED)
        async with b.runtime.sessions() as s, s.begin():
            await s.execute(update(Member).where(Member.userid == MANAGER).values(department=BRANCH_DEPT))
            s.add_all([CustomerSegment(external_userid=ext, tier=tier, segments=segs, computed_at=START)
                       for ext, (tier, segs) in SEGMENTS.items()])
        yield b


async def sent_links(b: Stack) -> dict[str, str]:
    """Run the path's day-30 step: customer → the tracked link their survey message carries."""
    await b.run_until(local("2026-11-02", "10:05"))
    out: dict[str, str] = {}
    for call in b.calls("externalcontact/add_msg_template"):
        (att,) = call.body["attachments"]
        (ext,) = call.body["external_userid"]
        out[ext] = att["link"]["url"]
    return out


def path_of(url: str) -> str:
    return URL(url).path


CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def open_form(b: Stack, path: str) -> tuple[int, str, str | None]:
    """GET the form: (status, html, the form's CSRF token when there is a form)."""
    resp = await b.client.get(path)
    html = await resp.text()
    found = CSRF.search(html)
    return resp.status, html, found.group(1) if found else None


async def submit(b: Stack, path: str, csrf: str | None, score: str | None, comment: str = "") -> tuple[int, str]:
    """POST the form as a browser would (no redirect followed): (status, Location or page)."""
    data = {k: v for k, v in {"csrf_token": csrf, "score": score, "comment": comment}.items() if v is not None}
    resp = await b.client.post(path, data=data, allow_redirects=False)
    return resp.status, resp.headers.get("Location") or await resp.text()


async def tag_names(b: Stack, ext: str) -> set[str]:
    """The names (group/tag) of the tags MANAGER has on ``ext`` in WeCom (the sandbox)."""
    ids = set(b.tag_ids(MANAGER, ext))
    async with b.runtime.sessions() as s:
        rows = (await s.execute(select(Tag.tag_id, TagGroup.name, Tag.name)
                                .join(TagGroup, TagGroup.group_id == Tag.group_id))).all()
    return {f"{g}/{n}" for tid, g, n in rows if tid in ids}


def later(days: int = 0, hours: int = 0) -> timedelta:
    return timedelta(days=days, hours=hours)
