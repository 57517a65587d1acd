"""Outbox against the sandbox over real HTTP: faults, ambiguity, reconciliation, no duplicates."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from scrm.adapters.wecom.errors import WeComError
from scrm.adapters.wecom.media import SOURCES
from scrm.kernel.clock import FakeClock
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import PRIORITY_WELCOME, Outbox
from scrm.kernel.service import Runtime
from tests.conftest import make_settings
from tests.fakes.sandbox import Sandbox, running_sandbox
from tests.support.service import running_service


async def statuses(runtime: Runtime) -> Counter[str]:
    async with runtime.sessions() as s:
        rows = (await s.execute(select(OutboxAction.status, func.count()).group_by(OutboxAction.status))).all()
    return Counter({status: n for status, n in rows})


async def settle(runtime: Runtime, clock: FakeClock, *, max_rounds: int = 400) -> Counter[str]:
    """Send until nothing is pending, sending or unknown; fake time moves past every backoff."""
    for _ in range(max_rounds):
        while await runtime.outbox.process_due():
            pass
        counts = await statuses(runtime)
        if not (counts["pending"] or counts["sending"] or counts["unknown"]):
            return counts
        clock.advance(31)
    raise AssertionError(f"outbox did not settle: {await statuses(runtime)}")


def seed(sb: Sandbox, members: int, customers: int) -> None:
    for m in range(members):
        sb.state.add_member(f"mgr{m:03d}", f"经理{m}")
    for c in range(customers):
        cust = sb.state.add_customer(f"客户{c}", external_userid=f"wmc{c:05d}")
        sb.state.add_follow(f"mgr{c % members:03d}", cust.external_userid, sb.now - 1000)


async def add(runtime: Runtime, key: str, api: str, body: dict[str, Any], **kw: Any) -> None:
    async with runtime.sessions() as s, s.begin():
        await runtime.outbox.add(s, key, api, body, **kw)


async def test_send_once_even_when_added_twice(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 0)
        body = {"touser": "mgr000", "msgtype": "text", "agentid": 1000002, "text": {"content": "早安"}}
        await add(runtime, "notice:1", "message/send", body)
        await add(runtime, "notice:1", "message/send", body)  # a replayed handler
        assert await settle(runtime, clock) == Counter(sent=1)
        assert len(sb.state.delivered_messages(kind="app")) == 1


async def test_dropped_reply_on_mass_send_is_reconciled_not_resent(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        sb.server.faults.drop_reply("externalcontact/add_msg_template", count=1)
        body = {"chat_type": "single", "external_userid": ["wmc00000"], "sender": "mgr000",
                "text": {"content": "本周理财沙龙，欢迎报名"}}
        await add(runtime, "sop:salon:1", "externalcontact/add_msg_template", body)
        await runtime.outbox.process_due()
        assert await statuses(runtime) == Counter(unknown=1)
        assert await settle(runtime, clock) == Counter(sent=1)
        assert len(sb.state.received_calls("externalcontact/add_msg_template")) == 1
        async with runtime.sessions() as s:
            row = (await s.scalars(select(OutboxAction))).one()
        assert row.wecom_msgid and row.result and row.result.get("reconciled")


async def test_timeout_after_send_is_reconciled(db_url: str) -> None:
    """Our client gave up waiting, WeCom acted anyway: reconciliation finds the task."""
    clock = FakeClock()
    async with running_sandbox(clock, timeout_s=0.2) as sb, running_service(
            make_settings(db_url), clock=clock, wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        sb.server.faults.slow("externalcontact/add_msg_template", 1.0, count=1)  # reply too late
        body = {"chat_type": "single", "external_userid": ["wmc00000"], "sender": "mgr000",
                "text": {"content": "slow one"}}
        await add(runtime, "sop:slow:1", "externalcontact/add_msg_template", body)
        counts = await settle(runtime, clock)
        assert counts == Counter(sent=1)
        # The slow call did take effect in the end (WeCom acted after our timeout), so exactly
        # one task exists: reconciliation found it instead of creating a second one.
        assert len(sb.state.received_calls("externalcontact/add_msg_template")) == 1


async def test_unknown_for_non_idempotent_api_waits_for_an_operator(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 0)
        sb.server.faults.drop_reply("externalcontact/add_contact_way", count=1)
        await add(runtime, "way:lobby", "externalcontact/add_contact_way",
                  {"type": 1, "scene": 2, "user": ["mgr000"], "state": "lobby"})
        await runtime.outbox.process_due()
        clock.advance(3600)
        await runtime.outbox.process_due()
        assert await statuses(runtime) == Counter(unknown=1)
        assert len(sb.state.received_calls("externalcontact/add_contact_way")) == 1
        async with runtime.sessions() as s:
            row = (await s.scalars(select(OutboxAction))).one()
        assert row.last_error and "scrm outbox retry" in row.last_error
        assert await runtime.outbox.cancel([row.id]) == 1


async def test_welcome_after_its_window_is_not_sent(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        code = sb.state.issue_welcome_code("mgr000", "wmc00000", sb.now)
        await add(runtime, f"welcome:{code}", "externalcontact/send_welcome_msg",
                  {"welcome_code": code, "text": {"content": "您好"}}, priority=PRIORITY_WELCOME,
                  not_after=clock.now())
        clock.advance(25)
        await runtime.outbox.process_due()
        assert await statuses(runtime) == Counter(failed=1)
        assert sb.state.delivered_messages(kind="welcome") == []


async def test_welcome_dropped_reply_retries_into_41051_without_a_second_delivery(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        code = sb.state.issue_welcome_code("mgr000", "wmc00000", sb.now)
        sb.server.faults.drop_reply("externalcontact/send_welcome_msg", count=1)
        await add(runtime, f"welcome:{code}", "externalcontact/send_welcome_msg",
                  {"welcome_code": code, "text": {"content": "您好"}}, priority=PRIORITY_WELCOME)
        assert await settle(runtime, clock) == Counter(sent=1)
        assert len(sb.state.delivered_messages(kind="welcome")) == 1


PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def stale_cover_welcome(code: str) -> dict[str, Any]:
    """A welcome whose cover id, from our media cache, WeCom does not know (40007)."""
    return {"welcome_code": code, "text": {"content": "您好"},
            "attachments": [{"msgtype": "image", "image": {"media_id": "sbmedia-forgotten"},
                             SOURCES: {"media_id": {"path": "cover.png", "type": "image"}}}]}


async def test_welcome_with_a_forgotten_media_id_is_uploaded_again_and_resent(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "cover.png").write_bytes(PNG)
    clock = FakeClock()
    settings = make_settings(db_url, playbook={"materials_dir": str(tmp_path)})
    async with running_sandbox(clock) as sb, running_service(settings, clock=clock, wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        code = sb.state.issue_welcome_code("mgr000", "wmc00000", sb.now)
        await add(runtime, f"welcome:{code}", "externalcontact/send_welcome_msg", stale_cover_welcome(code),
                  priority=PRIORITY_WELCOME, not_after=clock.now() + timedelta(seconds=20))
        await runtime.outbox.process_due()  # one attempt: refused, uploaded again, resent
        assert await statuses(runtime) == Counter(sent=1)
        (welcome,) = sb.state.delivered_messages(kind="welcome")
        assert welcome.content["attachments"] == [{"msgtype": "image",
                                                   "image": {"media_id": next(iter(sb.state.media))}}]
        assert len(sb.state.received_calls("media/upload")) == 1


async def test_a_repair_that_outlasts_the_welcome_window_sends_nothing(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "cover.png").write_bytes(PNG)
    clock = FakeClock()
    settings = make_settings(db_url, playbook={"materials_dir": str(tmp_path)})
    async with running_sandbox(clock) as sb, running_service(settings, clock=clock, wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        code = sb.state.issue_welcome_code("mgr000", "wmc00000", sb.now)
        await add(runtime, f"welcome:{code}", "externalcontact/send_welcome_msg", stale_cover_welcome(code),
                  priority=PRIORITY_WELCOME, not_after=clock.now() + timedelta(seconds=20))
        refresh = runtime.outbox.refreshers["externalcontact/send_welcome_msg"]

        async def slow(outbox: Outbox, body: dict[str, Any], error: WeComError) -> dict[str, Any] | None:
            fresh = await refresh(outbox, body, error)
            clock.advance(21)  # the upload took longer than the code lives
            return fresh

        runtime.outbox.refreshers["externalcontact/send_welcome_msg"] = slow
        await runtime.outbox.process_due()
        assert await statuses(runtime) == Counter(failed=1)
        assert sb.state.delivered_messages(kind="welcome") == []


async def test_fault_storm_2000_actions_each_sent_exactly_once(db_url: str) -> None:
    """10% -1, 5% 45009, 2% dropped replies and a forced token expiry: zero duplicates."""
    clock = FakeClock()
    settings = make_settings(db_url, outbox={"batch_size": 200, "concurrency": 16, "max_attempts": 30,
                                             "backoff_base_s": 1.0, "backoff_max_s": 30.0})
    async with running_sandbox(clock) as sb, running_service(settings, clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 100, 600)
        group = (await sb.client.call("externalcontact/add_corp_tag",
                                      {"group_name": "兴趣", "tag": [{"name": "理财"}, {"name": "健康"}]}))
        tag_ids = [t["id"] for t in group["tag_group"]["tag"]]
        for path in ("message/send", "externalcontact/mark_tag", "externalcontact/add_msg_template",
                     "externalcontact/get", "externalcontact/get_groupmsg_list_v2"):
            sb.server.faults.drop_reply(path, rate=0.02)
            sb.server.faults.system_busy(path, rate=0.10)
            sb.server.faults.freq_limit(path, rate=0.05)
        async with runtime.sessions() as s, s.begin():
            for i in range(1000):
                await runtime.outbox.add(s, f"app:{i}", "message/send", {
                    "touser": f"mgr{i % 100:03d}", "msgtype": "text", "agentid": 1000002,
                    "text": {"content": f"任务提醒 #{i}"}})
            for i in range(600):
                await runtime.outbox.add(s, f"tag:{i}", "externalcontact/mark_tag", {
                    "userid": f"mgr{i % 100:03d}", "external_userid": f"wmc{i:05d}", "add_tag": [tag_ids[i % 2]]})
            for i in range(400):
                await runtime.outbox.add(s, f"mass:{i}", "externalcontact/add_msg_template", {
                    "chat_type": "single", "external_userid": [f"wmc{i:05d}"], "sender": f"mgr{i % 100:03d}",
                    "text": {"content": f"专属活动 #{i}"}})
        await runtime.outbox.process_due()
        sb.server.expire_all_tokens()  # WeCom may invalidate tokens early
        counts = await settle(runtime, clock)
        assert counts == Counter(sent=2000), counts

        fired = Counter(f.kind for f in sb.server.faults.fired)
        assert fired["drop"] > 0 and fired["error"] > 0
        app = Counter(d.content.get("text", {}).get("content") for d in sb.state.delivered_messages(kind="app"))
        assert len(app) == 1000 and max(app.values()) == 1
        tasks = Counter(c.body["text"]["content"] for c in sb.state.received_calls("externalcontact/add_msg_template"))
        assert len(tasks) == 400 and max(tasks.values()) == 1
        tags = Counter((c.body["userid"], c.body["external_userid"])
                       for c in sb.state.received_calls("externalcontact/mark_tag"))
        assert len(tags) == 600 and max(tags.values()) == 1
        for i in range(600):
            follow = sb.state.require_follow(f"mgr{i % 100:03d}", f"wmc{i:05d}")
            assert tag_ids[i % 2] in follow.tag_ids


# ---------------------------------------------------------------------- welcomes past their window
WELCOME = "externalcontact/send_welcome_msg"


async def welcome_row(runtime: Runtime) -> OutboxAction:
    async with runtime.sessions() as s:
        return (await s.scalars(select(OutboxAction))).one()


def record_failures(outbox: Outbox) -> list[tuple[str, str]]:
    """A failure hook for welcomes that records (key, error) once per failure."""
    failures: list[tuple[str, str]] = []

    async def hook(_: Outbox, session: Any, row: Any, error: str) -> None:
        failures.append((row["idempotency_key"], error))

    outbox.failure_hooks[WELCOME] = hook
    return failures


async def test_a_welcome_whose_reply_was_lost_is_recorded_sent_even_past_its_window(db_url: str) -> None:
    """WeCom accepted it but the reply never came, and the retry falls after the 20 s: asking once
    more answers 41051 (the code was used), so it went out: sent, not failed, and no one is told."""
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        failures = record_failures(runtime.outbox)
        code = sb.state.issue_welcome_code("mgr000", "wmc00000", sb.now)
        sb.server.faults.drop_reply(WELCOME, count=1)
        await add(runtime, f"welcome:{code}", WELCOME, {"welcome_code": code, "text": {"content": "您好"}},
                  priority=PRIORITY_WELCOME, not_after=clock.now() + timedelta(seconds=20))
        await runtime.outbox.process_due()
        assert (await welcome_row(runtime)).status == "pending"
        clock.advance(30)
        await runtime.outbox.process_due()
        row = await welcome_row(runtime)
        assert (row.status, (row.result or {}).get("note")) == ("sent", "went out on an earlier attempt")
        assert len(sb.state.delivered_messages(kind="welcome")) == 1
        assert failures == []


async def test_a_welcome_sent_just_before_a_crash_is_recorded_sent_after_the_restart(db_url: str) -> None:
    """The process died between WeCom's reply and the commit: the row is left `sending`."""
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        code = sb.state.issue_welcome_code("mgr000", "wmc00000", sb.now)
        body = {"welcome_code": code, "text": {"content": "您好"}}
        await add(runtime, f"welcome:{code}", WELCOME, body, priority=PRIORITY_WELCOME,
                  not_after=clock.now() + timedelta(seconds=20))
        await sb.client.call(WELCOME, body)  # it went out...
        async with runtime.engine.begin() as conn:  # ...and the process died before recording it
            await conn.execute(OutboxAction.__table__.update().values(status="sending", attempts=1))
        clock.advance(60)
        await runtime.outbox.process_due()
        assert (await welcome_row(runtime)).status == "sent"
        assert len(sb.state.delivered_messages(kind="welcome")) == 1


async def test_a_welcome_that_never_went_out_fails_once_and_its_failure_hook_runs_once(db_url: str) -> None:
    clock = FakeClock()
    async with running_sandbox(clock) as sb, running_service(make_settings(db_url), clock=clock,
                                                             wecom=sb.client) as (runtime, _):
        seed(sb, 1, 1)
        failures = record_failures(runtime.outbox)
        code = sb.state.issue_welcome_code("mgr000", "wmc00000", sb.now)
        await add(runtime, f"welcome:{code}", WELCOME, {"welcome_code": code, "text": {"content": "您好"}},
                  priority=PRIORITY_WELCOME, not_after=clock.now() + timedelta(seconds=20))
        async with runtime.engine.begin() as conn:  # claimed by a process killed before its call
            await conn.execute(OutboxAction.__table__.update().values(status="sending", attempts=1))
        clock.advance(60)
        await runtime.outbox.process_due()
        await runtime.outbox.process_due()
        row = await welcome_row(runtime)
        assert row.status == "failed" and (row.last_error or "").startswith("window missed")
        assert failures == [(f"welcome:{code}", row.last_error)]
        assert sb.state.delivered_messages(kind="welcome") == []
