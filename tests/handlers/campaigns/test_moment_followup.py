"""The Moments follow-up on its own, against a scripted stand-in for WeCom (each answer written
here as WeCom documents it): failures end it with their reason, a failed read while managers
publish does not, and the window ends it with the reach found so far."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from handlers.campaigns.models import CampaignMoment, CampaignTouch
from handlers.campaigns.moments import FOLLOW_FOR, POLL_PUBLISHING, POLL_RUNNING, follow_moment, record_moment
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.adapters.wecom.errors import WeComError
from scrm.kernel.models import OutboxAction

T0 = datetime(2026, 11, 3, 2, 40, tzinfo=UTC)
KEY = "sop:campaign:c:post:moment:2026-11-03"


class ScriptedWeCom:
    """Answers each API from a queue of scripted answers (an exception is raised instead)."""

    def __init__(self, script: dict[str, list[dict[str, Any] | Exception]]) -> None:
        self.script = script
        self.calls: list[str] = []

    async def call(self, api: str, body: dict[str, Any] | None = None, *, method: str = "POST",
                   params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(api)
        answer = self.script[api].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def job_done(moment_id: str = "mom1", *, errcode: int = 0, invalid: list[str] | None = None) -> dict[str, Any]:
    return {"status": 3, "type": "add_moment_task",
            "result": {"errcode": errcode, "errmsg": "ok" if not errcode else "invalid", "moment_id": moment_id,
                       "invalid_sender_list": {"user_list": invalid or []}}}


def tasks(published: set[str], senders: tuple[str, ...] = ("m1", "m2", "m3")) -> dict[str, Any]:
    return {"task_list": [{"userid": u, "publish_status": int(u in published)} for u in senders],
            "next_cursor": ""}


async def prepare(db_url: str, outbox_status: str = "sent", result: dict[str, Any] | None = None) -> None:
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as s, s.begin():
        s.add(OutboxAction(idempotency_key=KEY, kind="wecom", payload={"api": "externalcontact/add_moment_task"},
                           status=outbox_status, next_attempt_at=T0, created_at=T0,
                           result=result if result is not None else {"jobid": "job1"},
                           last_error="errcode 40058: bad" if outbox_status == "failed" else None))
        await record_moment(s, KEY, "c", "post", ["m1", "m2", "m3", "m2"], T0)
        s.add_all([CampaignTouch(campaign="c", channel="post", customer=f"wm{m}{i}", manager=m, outcome="asked",
                                 at=T0) for m in ("m1", "m2", "m3") for i in (1, 2)])
    await engine.dispose()


async def poll(db_url: str, wecom: ScriptedWeCom, now: datetime) -> tuple[datetime | None, CampaignMoment,
                                                                          dict[str, str]]:
    engine = make_engine(db_url)
    try:
        sessions = make_sessionmaker(engine)
        async with sessions() as s, s.begin():
            again = await follow_moment(s, wecom, KEY, now)
        async with sessions() as s:
            row = await s.get(CampaignMoment, KEY)
            assert row is not None
            reach = {t.customer: t.outcome for t in (await s.scalars(select(CampaignTouch))).all()}
            return again, row, reach
    finally:
        await engine.dispose()


async def test_running_then_published_then_a_failed_read_then_the_window_ends(db_url: str) -> None:
    await prepare(db_url)
    wecom = ScriptedWeCom({
        "externalcontact/get_moment_task_result": [{"status": 2, "type": "add_moment_task"}, job_done(invalid=["m3"])],
        "externalcontact/get_moment_task": [tasks({"m1"}), WeComError(-1, "system busy", "get_moment_task"),
                                            tasks({"m1"})],
    })
    t = T0 + timedelta(minutes=5)
    again, row, _ = await poll(db_url, wecom, t)
    assert again == t + POLL_RUNNING and row.state == "queued" and row.jobid == "job1" and row.moment_id is None
    t = again
    again, row, reach = await poll(db_url, wecom, t)
    assert (row.moment_id, row.invalid, sorted(row.published), row.state) == ("mom1", ["m3"], ["m1"], "running")
    assert row.asked == ["m1", "m2", "m3"]  # each sender once
    assert again == t + POLL_PUBLISHING
    assert reach == {f"wm{m}{i}": "visible" if m == "m1" else "asked" for m in ("m1", "m2", "m3") for i in (1, 2)}
    t = again
    again, row, _ = await poll(db_url, wecom, t)  # the read fails: asked again, nothing lost
    assert again == t + POLL_PUBLISHING and row.state == "running" and row.error is None
    # m2 never publishes, m3 was refused by WeCom: at the window's end the follow-up stops.
    again, row, reach = await poll(db_url, wecom, T0 + FOLLOW_FOR)
    assert again is None and row.state == "done"
    assert sum(o == "visible" for o in reach.values()) == 2
    assert wecom.calls.count("externalcontact/get_moment_task_result") == 2  # never after the job was done


async def test_a_failed_job_or_a_failed_call_ends_the_follow_up_with_its_reason(db_url: str) -> None:
    await prepare(db_url)
    wecom = ScriptedWeCom({"externalcontact/get_moment_task_result": [job_done("", errcode=40058)]})
    again, row, reach = await poll(db_url, wecom, T0 + POLL_RUNNING)
    assert again is None and row.state == "failed" and row.error == "moment job job1: 40058 invalid"
    assert set(reach.values()) == {"asked"}
    again, row, _ = await poll(db_url, wecom, T0 + 2 * POLL_RUNNING)  # finished: WeCom is not asked again
    assert again is None and wecom.calls == ["externalcontact/get_moment_task_result"]


async def test_an_outbox_failure_ends_it(db_url: str) -> None:
    await prepare(db_url, outbox_status="failed", result={})
    wecom = ScriptedWeCom({})
    again, row, _ = await poll(db_url, wecom, T0 + POLL_RUNNING)
    assert again is None and row.state == "failed" and row.error == "add_moment_task failed: errcode 40058: bad"
    assert wecom.calls == []


async def test_a_lost_reply_waits_for_the_operator_then_the_window_ends(db_url: str) -> None:
    await prepare(db_url, outbox_status="unknown", result={"maybe_sent": True})
    wecom = ScriptedWeCom({})
    again, row, _ = await poll(db_url, wecom, T0 + POLL_RUNNING)
    assert again == T0 + 2 * POLL_RUNNING and row.state == "queued" and row.jobid is None
    again, row, reach = await poll(db_url, wecom, T0 + FOLLOW_FOR)
    assert again is None and row.state == "failed" and set(reach.values()) == {"asked"}
    assert wecom.calls == []  # no job id: nothing to ask WeCom about
