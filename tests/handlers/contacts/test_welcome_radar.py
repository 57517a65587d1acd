"""Welcome messages and the radar: a link goes out as a tracked link for that customer and
manager, its open is attributed and counted; an image URL goes out as ``pic_url``."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from handlers.radar.cli import cmd_radar
from handlers.radar.links import LinkMaker
from handlers.radar.models import RadarClick, RadarSend
from scrm.cli import _register_extras, build_parser
from tests.support.playbooks import CHANNELS, MATERIALS
from tests.support.stack import stack

GIFT = "https://bank.example.com/gift"


def _args(*argv: str) -> argparse.Namespace:
    _register_extras()
    return build_parser().parse_args(list(argv))


async def test_welcome_link_is_tracked_attributed_and_counted(db_url: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="王小二", state="payroll-onboarding")
        await s.run()
        ext = out.fields["ExternalUserID"]
        (welcome,) = s.state.delivered_messages(kind="welcome", to=ext)
        (att,) = welcome.content["attachments"]
        url = att["link"]["url"]
        assert url.startswith(s.settings.server.public_url.rstrip("/") + "/r/")
        assert att["link"]["title"] == "代发开卡礼"  # the rest of the card is unchanged
        claims = LinkMaker(s.settings).claims_of(url)
        assert claims is not None
        assert (claims.material, claims.sender, claims.customer) == ("t-welcome-payroll", "zhangwei", ext)
        assert (claims.occurrence or "").startswith("welcome:payroll-onboarding@")

        resp = await s.client.get(urlsplit(url).path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == GIFT
        await s.runtime.inbox.writer.sync()  # the click is queued, not awaited, by the redirect
        await s.run()
        async with s.runtime.sessions() as session:
            clicks = (await session.scalars(select(RadarClick))).all()
            sends = (await session.scalars(select(RadarSend))).all()
        assert [(c.external_userid, c.sender, c.material_id) for c in clicks] == [
            (ext, "zhangwei", "t-welcome-payroll")]
        assert [(r.external_userid, r.sender) for r in sends] == [(ext, "zhangwei")]
        assert any("王小二" in m and "《代发开卡礼》" in m for m in s.app_messages("zhangwei"))

        capsys.readouterr()
        assert await cmd_radar(_args("radar", "stats"), s.settings) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == ["material", "sends", "opens", "unique", "open_rate"]
        assert [line.split() for line in lines[1:]] == [["t-welcome-payroll", "1", "1", "1", "100.0%"]]


async def test_text_welcome_counts_no_send(sqlite_url: str, tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        await s.driver.add_external_contact("chenjing", name="钱多多", state="wealth-salon")
        await s.run()
        (welcome,) = s.state.delivered_messages(kind="welcome")
        assert not welcome.content.get("attachments")
        async with s.runtime.sessions() as session:
            assert (await session.scalars(select(RadarSend))).all() == []


POSTER = "https://bank.example.com/poster.png"
IMAGE_MATERIALS = MATERIALS + f"""\
- id: t-poster
  type: image
  text: "{{customer.name}}您好，这是本月活动海报。"
  image: {{url: "{POSTER}"}}
  approved: {{by: 合规部-测试, at: 2025-01-01}}
"""


async def test_image_url_goes_out_as_pic_url_without_upload(sqlite_url: str, tmp_path: Path) -> None:
    channels = CHANNELS.replace("welcome: t-welcome-payroll", "welcome: t-poster")
    async with stack(sqlite_url, tmp_path, channels=channels, materials=IMAGE_MATERIALS) as s:
        await s.driver.add_external_contact("zhangwei", name="孙七", state="payroll-onboarding")
        await s.run()
        (welcome,) = s.state.delivered_messages(kind="welcome")
        assert welcome.content["attachments"] == [{"msgtype": "image", "image": {"pic_url": POSTER}}]
        assert s.calls("media/upload") == []
