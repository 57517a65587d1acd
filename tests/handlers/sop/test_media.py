"""Mass-send attachments that need media: uploaded when the outbox sends, cached for 3 days."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.handlers.sop.seeding import ROUTERS, local, seed
from tests.support.playbooks import write_shipped_playbook
from tests.support.service import drain
from tests.support.stack import Stack, stack

START = local("2026-11-02", "09:00")  # a Monday
CHAT = "wrMediaChat1"
CALENDAR = """\
calendar: media-test
name: 附件测试
group_type: regional
steps:
  - {day: 0, at: "10:00", send: t-mini}
  - {day: 0, at: "12:10", send: t-file}
  - {day: 1, at: "10:00", send: t-mini}
  - {day: 4, at: "10:00", send: t-mini}
"""
ONE_STEP = """\
calendar: media-test
name: 附件测试
group_type: regional
steps:
  - {day: 0, at: "12:10", send: t-file}
"""


def attachments(b: Stack) -> list[dict[str, Any]]:
    """What WeCom accepted (it validates media ids), one attachment per mass send, in order."""
    out = []
    for call in b.calls("externalcontact/add_msg_template"):
        (att,) = call.body["attachments"]
        out.append(att)
    return out


async def test_mini_program_and_file_go_with_media_ids_uploaded_once_per_three_days(db_url: str,
                                                                                     tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"media": CALENDAR})) as b:
        await seed(b, groups=[(CHAT, "regional", START)])
        await b.run_until(local("2026-11-06", "11:00"))

        rows = await b.outbox_rows("externalcontact/add_msg_template")
        assert [r.status for r in rows] == ["sent"] * 4, [(r.status, r.last_error) for r in rows]
        mini0, file0, mini1, mini4 = attachments(b)
        assert mini0 == {"msgtype": "miniprogram", "miniprogram": {
            "title": "测试福利", "appid": "wx3f2a9c7b1d4e6a80", "page": "pages/t/gift.html",
            "pic_media_id": mini0["miniprogram"]["pic_media_id"]}}
        assert file0["msgtype"] == "file" and set(file0["file"]) == {"media_id"}
        # The next day's send reuses the cached cover; four days on, it has expired: uploaded again.
        assert mini1 == mini0
        assert mini4["miniprogram"]["pic_media_id"] != mini0["miniprogram"]["pic_media_id"]
        uploads = [(c.query["type"], c.at) for c in b.calls("media/upload")]
        assert [t for t, _ in uploads] == ["image", "file", "image"]
        # The text still goes along with the attachment.
        texts = [c.body["text"]["content"] for c in b.calls("externalcontact/add_msg_template")]
        assert texts[1] == "本月存款利率表见附件。"


async def test_media_is_resolved_when_sent_not_when_queued(db_url: str, tmp_path: Path) -> None:
    """A mass send that waited four days in the outbox still goes with a live media id."""
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"media": ONE_STEP})) as b:
        await seed(b, groups=[(CHAT, "regional", START)])
        b.clock.set(local("2026-11-02", "12:11"))
        await b.runtime.scheduler.tick()
        await drain(b.runtime)  # planned and queued, but not sent
        (row,) = await b.outbox_rows("externalcontact/add_msg_template")
        assert row.status == "pending" and "_media" in row.payload["body"]["attachments"][0]
        b.clock.advance(timedelta(days=4).total_seconds())
        await b.send()
        (row,) = await b.outbox_rows("externalcontact/add_msg_template")
        assert row.status == "sent", row.last_error
        (upload,) = b.calls("media/upload")
        assert upload.at >= (START + timedelta(days=4)).timestamp()
        (att,) = attachments(b)
        assert att["file"]["media_id"]


async def test_missing_file_fails_the_send_with_its_name(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"media": ONE_STEP})) as b:
        await seed(b, groups=[(CHAT, "regional", START)])
        (b.settings.playbook.materials_dir / "files" / "rates.pdf").unlink()  # removed after the playbook loaded
        await b.run_until(local("2026-11-02", "12:30"))
        (row,) = await b.outbox_rows("externalcontact/add_msg_template")
        assert row.status == "failed"
        assert row.last_error == "attachment: no file materials/files/rates.pdf"
        assert b.calls("externalcontact/add_msg_template") == [] and b.calls("media/upload") == []


async def test_a_media_id_wecom_forgot_is_uploaded_again_and_the_mass_send_goes(db_url: str, tmp_path: Path) -> None:
    """A restored database holds a cached id WeCom no longer knows: the send answers 40007, the
    file is uploaded once more and the mass send goes in the same attempt."""
    async with stack(db_url, tmp_path, start=START, demo=False, routers=ROUTERS,
                     playbook=write_shipped_playbook(tmp_path, calendars={"media": CALENDAR})) as b:
        await seed(b, groups=[(CHAT, "regional", START)])
        await b.run_until(local("2026-11-02", "11:00"))
        (first,) = attachments(b)
        stale = first["miniprogram"]["pic_media_id"]
        b.state.media.clear()  # WeCom forgot the upload; our media cache still holds its id

        await b.run_until(local("2026-11-03", "11:00"))
        mini0, mini1 = (a for a in attachments(b) if a["msgtype"] == "miniprogram")
        fresh = mini1["miniprogram"]["pic_media_id"]
        assert mini0["miniprogram"]["pic_media_id"] == stale and fresh != stale and fresh in b.state.media
        rows = await b.outbox_rows("externalcontact/add_msg_template")
        assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] * 3  # the repeat was in the same attempt
        assert [c.query["type"] for c in b.calls("media/upload")] == ["image", "file", "image"]  # once more, only
