"""Link materials in SOP pushes and "share this" task cards go out as tracked radar links, and
each send is counted (``scrm radar stats``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from handlers.radar.links import LinkMaker
from handlers.radar.tokens import Claims
from scrm.cli import main
from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.stack import PUBLIC_URL, Stack, stack

START = local("2026-11-02", "09:00")  # a Monday
CHAT = "wrLinkChat"
PATH = """\
path: weekly
name: 理财周报
when: {}
steps:
  - {id: weekly-link, on: "added_at + 1 day", at: "10:00", send: t-link}
  - {id: share-1to1, on: "added_at + 2 days", at: "10:00", task: t-link}
"""
CALENDAR = """\
calendar: links
name: 群链接
group_type: regional
steps:
  - {id: group-link, day: 0, at: "12:10", send: t-link}
  - {id: share-group, day: 1, at: "10:00", task: t-link}
"""


def claims(b: Stack, url: str) -> Claims:
    assert url.startswith(f"{PUBLIC_URL}/r/"), url
    found = LinkMaker(b.settings).claims_of(url)
    assert found is not None
    return found


def link_of(body: dict[str, Any]) -> dict[str, Any]:
    (att,) = body["attachments"]
    assert att["msgtype"] == "link"
    link: dict[str, Any] = att["link"]
    return link


async def test_pushes_and_task_cards_carry_tracked_links(db_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, paths={"weekly": PATH},
                                                     calendars={"links": CALENDAR})) as b:
        await seed(b, customers=["wmReader"], added=local("2026-11-01", "15:00"),
                   groups=[(CHAT, "regional", START)])
        await b.run_until(local("2026-11-03", "10:05"))

        single, group = (c.body for c in b.calls("externalcontact/add_msg_template"))
        assert single["external_userid"] == ["wmReader"] and group["chat_id_list"] == [CHAT]
        one = link_of(single)
        assert (one["title"], one["desc"]) == ("本周理财精选", "稳健型产品一览")
        got = claims(b, one["url"])
        assert (got.material, got.sender, got.customer, got.occurrence) == (
            "t-link", "zhangwei", "wmReader", "sop:path:weekly:weekly-link@wmReader:2026-11-02")
        got = claims(b, link_of(group)["url"])
        assert (got.material, got.sender, got.customer, got.occurrence) == (
            "t-link", "zhangwei", None, f"sop:calendar:links:group-link@{CHAT}:2026-11-02")

        # "Share this" cards: the manager opens (and forwards) a tracked link from the card.
        cards = {c.card["jump_list"][0]["url"]: c for c in b.cards("zhangwei")}
        assert len(cards) == 2
        shared = {(c.customer, c.occurrence) for c in (claims(b, url) for url in cards)}
        assert shared == {(None, f"sop:calendar:links:share-group@{CHAT}:2026-11-03"),
                          ("wmReader", "sop:path:weekly:share-1to1@wmReader:2026-11-03")}
        assert all(c.card["card_action"]["url"] == url for url, c in cards.items())

        # The link leads to the material's own URL.
        resp = await b.client.get(one["url"].removeprefix(PUBLIC_URL), allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "https://wealth.example.com/weekly"

        monkeypatch.setenv("SCRM_DATABASE__URL", db_url)
        code = await asyncio.to_thread(main, ["radar", "stats", "--json"])
        out = capsys.readouterr().out
        assert code == 0
        (row,) = json.loads(out)
        assert (row["material"], row["sends"]) == ("t-link", 4)

        # Occurrences are "<step>@<target>:<day>", so stats group the sends of each step.
        await asyncio.to_thread(main, ["radar", "stats", "--json", "--by-step"])
        steps = {r["step"]: r["sends"] for r in json.loads(capsys.readouterr().out)}
        assert steps == {"sop:path:weekly:weekly-link": 1, "sop:path:weekly:share-1to1": 1,
                         "sop:calendar:links:group-link": 1, "sop:calendar:links:share-group": 1}
