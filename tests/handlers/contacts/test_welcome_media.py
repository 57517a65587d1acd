"""Welcome attachments that need an upload: a mini program cover from materials/ or from a URL,
uploaded once and reused; a cover that cannot be fetched costs the attachment, not the welcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from handlers.contacts.channels import sync_channels
from handlers.timeline.models import Timeline
from tests.support.playbooks import MATERIALS
from tests.support.stack import stack

COVER = b"\x89PNG\r\n\x1a\n" + b"0" * 64

CHANNELS = """\
default_welcome: t-welcome-default
channels:
  payroll-onboarding: {name: 代发开卡, managers: [zhangwei], tags: [渠道/代发开卡], welcome: t-mini}
"""


def _materials(cover: str) -> str:
    return MATERIALS + f"""\
- id: t-mini
  type: miniprogram
  text: "{{customer.name}}您好，开卡礼在下方小程序。"
  miniprogram: {{title: 代发开卡礼, appid: wx3f2a9c7b1d4e6a80, page: pages/gift.html, cover: "{cover}"}}
  approved: {{by: 合规部-测试, at: 2025-01-01}}
"""


@pytest.fixture
async def cover_server() -> AsyncIterator[str]:
    app = web.Application()
    hits: list[int] = []

    async def image(_request: web.Request) -> web.Response:
        hits.append(1)
        return web.Response(body=COVER, content_type="image/png")

    app.router.add_get("/cover.png", image)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/cover.png"))
    await server.close()


async def test_local_cover_is_uploaded_once(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "materials").mkdir()
    (tmp_path / "materials" / "gift.png").write_bytes(COVER)
    async with stack(sqlite_url, tmp_path, channels=CHANNELS, materials=_materials("gift.png")) as s:
        for name in ("甲", "乙"):
            await s.driver.add_external_contact("zhangwei", name=name, state="payroll-onboarding")
        await s.run()
        welcomes = s.state.delivered_messages(kind="welcome")
        assert len(welcomes) == 2
        (att,) = welcomes[0].content["attachments"]
        assert att["msgtype"] == "miniprogram" and att["miniprogram"]["pic_media_id"]
        assert len(s.calls("media/upload")) == 1  # the second welcome reused the cached media id


async def test_url_cover_is_warmed_by_channels_sync(sqlite_url: str, tmp_path: Path, cover_server: str) -> None:
    async with stack(sqlite_url, tmp_path, channels=CHANNELS, materials=_materials(cover_server)) as s:
        results = await sync_channels(s.runtime.sessions, s.wecom, s.runtime.playbook.current, s.clock,
                                      s.settings.playbook.materials_dir)
        assert all(r.ok for r in results), results
        assert len(s.calls("media/upload")) == 1
        await s.driver.add_external_contact("zhangwei", name="丙", state="payroll-onboarding")
        await s.run()
        (welcome,) = s.state.delivered_messages(kind="welcome")
        assert welcome.content["attachments"][0]["miniprogram"]["title"] == "代发开卡礼"
        assert len(s.calls("media/upload")) == 1


async def test_unreachable_cover_sends_the_text_alone(sqlite_url: str, tmp_path: Path) -> None:
    dead = "http://127.0.0.1:9/unreachable-cover.png"
    async with stack(sqlite_url, tmp_path, channels=CHANNELS, materials=_materials(dead)) as s:
        results = await sync_channels(s.runtime.sessions, s.wecom, s.runtime.playbook.current, s.clock,
                                      s.settings.playbook.materials_dir)
        (bad,) = [r for r in results if not r.ok]
        assert bad.key == "welcome t-mini" and "cannot download" in bad.message
        out = await s.driver.add_external_contact("zhangwei", name="丁", state="payroll-onboarding")
        await s.run()
        (welcome,) = s.state.delivered_messages(kind="welcome")
        assert welcome.content["text"]["content"] == "丁您好，开卡礼在下方小程序。"
        assert "attachments" not in welcome.content or not welcome.content["attachments"]
        async with s.runtime.sessions() as session:
            kinds = (await session.scalars(select(Timeline.kind)
                                           .where(Timeline.subject_id == out.fields["ExternalUserID"]))).all()
        assert "welcome.degraded" in kinds


async def test_a_media_id_wecom_forgot_is_uploaded_again_and_the_welcome_sent(sqlite_url: str,
                                                                              tmp_path: Path) -> None:
    """WeCom no longer knows the cached cover (the sandbox restarted, a restored database):
    the send answers 40007, and the welcome still goes out once, in its window, with a new id."""
    (tmp_path / "materials").mkdir()
    (tmp_path / "materials" / "gift.png").write_bytes(COVER)
    async with stack(sqlite_url, tmp_path, channels=CHANNELS, materials=_materials("gift.png")) as s:
        await s.driver.add_external_contact("zhangwei", name="甲", state="payroll-onboarding")
        await s.run()
        (first,) = s.state.delivered_messages(kind="welcome")
        stale = first.content["attachments"][0]["miniprogram"]["pic_media_id"]
        s.state.media.clear()  # WeCom forgot the upload; our media cache still holds its id

        await s.driver.add_external_contact("zhangwei", name="乙", state="payroll-onboarding")
        await s.run()
        welcomes = s.state.delivered_messages(kind="welcome")
        assert len(welcomes) == 2
        fresh = welcomes[1].content["attachments"][0]["miniprogram"]["pic_media_id"]
        assert fresh != stale and fresh in s.state.media
        assert len(s.calls("media/upload")) == 2  # the first welcome's, and exactly one again
        second = (await s.outbox_rows("externalcontact/send_welcome_msg"))[1]
        assert (second.status, second.attempts, second.last_error) == ("sent", 1, None)  # resent at once

        # The cache now holds the new id: the next welcome uploads nothing.
        await s.driver.add_external_contact("zhangwei", name="丙", state="payroll-onboarding")
        await s.run()
        welcomes = s.state.delivered_messages(kind="welcome")
        assert welcomes[2].content["attachments"][0]["miniprogram"]["pic_media_id"] == fresh
        assert len(s.calls("media/upload")) == 2
        # The media sources kept in the queued bodies never reach WeCom.
        assert all(set(w.content["attachments"][0]) == {"msgtype", "miniprogram"} for w in welcomes)
