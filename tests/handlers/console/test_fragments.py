"""Rendered page bodies are kept only while the result they show is the very same object, and
apart for every input besides it: the cockpit's breadcrumbs differ by viewer (an ops admin may
go up to the whole bank, a branch head may not) even where both are shown one kept result."""

from __future__ import annotations

import re
from pathlib import Path

from handlers.console.fragments import Fragments
from handlers.console.rollup import roll_up_due
from scrm.playbook.quiet import local_day
from tests.handlers.console.support import console_stack, sign_in

ZONE = "Asia/Shanghai"


class Renders:
    """A render that says how many times it ran."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self) -> str:
        self.runs += 1
        return f"<p>{self.runs}</p>"


def test_a_body_is_kept_for_the_same_result_object_only() -> None:
    bodies, render = Fragments(size=2), Renders()
    result = {"figures": 1}
    assert bodies.html("k", result, render) == "<p>1</p>"
    assert bodies.html("k", result, render) == "<p>1</p>" and render.runs == 1
    assert bodies.html("k", {"figures": 1}, render) == "<p>2</p>"  # equal but another result: rendered again
    assert bodies.html("other", result, render) == "<p>3</p>"  # another key: its own body
    bodies.html("third", result, render)  # past the size: the least recently used ("k") goes
    assert bodies.html("k", result, render) == "<p>5</p>"


def _crumbs(page: str) -> list[str]:
    trail = re.search(r'<p class="crumbs" id="crumbs">(.*?)</p>', page)
    assert trail is not None, page[:2000]
    return re.findall(r">([^<]+)</a>", trail.group(1))


def _added(page: str) -> str:
    added = re.search(r'<tr data-figure="added"><td>[^<]*</td><td data-period="current">(\d+)</td>', page)
    assert added is not None
    return added.group(1)


async def test_viewers_shown_one_kept_result_each_get_their_own_breadcrumbs(db_url: str, tmp_path: Path) -> None:
    # Today's figures kept (as in service): the second viewer is shown the first one's result object.
    async with console_stack(db_url, tmp_path, console={"live_cache_s": 60}) as s:
        async with s.runtime.sessions() as db, db.begin():  # the past days stored, as the nightly job leaves them
            now = s.clock.now()
            await roll_up_due(db, local_day(s.runtime.playbook.current, now), ZONE, now, 14)
        branch = "杭州分行/城西支行"
        assert (await sign_in(s, "zhouhai")).status in (302, 303)  # ops admin: the whole bank above
        admin = await (await s.client.get(f"/console/cockpit?days=7&dept={branch}")).text()
        assert _crumbs(admin) == ["全行", "杭州分行", "城西支行"]
        assert (await sign_in(s, "mali")).status in (302, 303)  # that branch's head: her branch only
        head = await (await s.client.get("/console/cockpit?days=7")).text()
        assert _crumbs(head) == ["城西支行"]
        assert _added(head) == _added(admin)
        assert (await sign_in(s, "zhouhai")).status in (302, 303)
        again = await (await s.client.get(f"/console/cockpit?days=7&dept={branch}")).text()
        assert _crumbs(again) == ["全行", "杭州分行", "城西支行"]
