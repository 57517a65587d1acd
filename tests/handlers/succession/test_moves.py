"""在职继承 / 管户调整: asked by an ops admin (CLI) or the CRM (signed HTTP), followed through
WeCom's answers: taken over after 24 h without refusal, refused, the 2-in-90-days limit, timeout."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.contacts.api import Customer
from handlers.crm.auth import headers
from handlers.succession.cli import cmd_succession
from scrm.kernel.models import InboxEvent, OutboxAction
from scrm.sandbox.records import Limits
from tests.handlers.staff.support import args
from tests.handlers.succession.support import follows_of, items, mirror_follows, write_rules
from tests.support.stack import Stack, stack

ONJOB = "externalcontact/transfer_customer"
SECRET = "s3cret"


async def _move(s: Stack, *argv: str) -> None:
    assert await cmd_succession(args("succession", "move", *argv), s.settings, clock=s.clock) == 0
    await s.run()
    s.clock.advance(60)
    await s.step()


async def test_moved_customer_is_taken_over_after_24_hours(db_url: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # The CRM's webhook is configured (unreachable here: what is queued for it is what counts).
    crm = {"crm": {"webhook_url": "http://127.0.0.1:9/crm", "webhook_secret": SECRET}}
    async with stack(db_url, tmp_path, customers=True, sections=crm) as s:
        write_rules(s)
        await mirror_follows(s)
        wang = s.ids.customers["王芳"]
        async with s.runtime.sessions() as session, session.begin():
            customer = await session.get(Customer, wang)
            assert customer is not None
            customer.crm_id = "C1"
        await _move(s, "--from", "zhangwei", "--to", "lina", wang)
        [call] = s.calls(ONJOB)
        assert call.body == {"handover_userid": "zhangwei", "takeover_userid": "lina", "external_userid": [wang],
                             "transfer_success_msg": "您好，张伟的工作已由我接替，我是李娜。"}
        assert [(i.target, i.status) for i in await items(s)] == [(wang, "waiting")]
        assert len(s.cards("lina")) == 1
        await s.run_until(s.clock.now() + timedelta(hours=25))
        assert [(i.target, i.status) for i in await items(s)] == [(wang, "done")]
        assert (await follows_of(s, "lina"))[wang] == "active"
        assert (await follows_of(s, "zhangwei"))[wang] == "transferred"
        async with s.runtime.sessions() as session:
            kinds = (await session.scalars(select(InboxEvent.event).where(InboxEvent.event == "crm.event"))).all()
        assert kinds == ["crm.event"]  # manager_change raised from the real transfer
        async with s.runtime.sessions() as session:
            told = (await session.scalars(select(OutboxAction.payload).where(OutboxAction.kind == "crm.webhook"))).all()
        assert [{k: p["body"][k] for k in ("type", "crm_id", "external_userid", "old_userid", "userid", "reason")}
                for p in told] == [{"type": "owner.changed", "crm_id": "C1", "external_userid": wang,
                                    "old_userid": "zhangwei", "userid": "lina", "reason": "move"}]
        # asking the same move again changes nothing
        await _move(s, "--from", "zhangwei", "--to", "lina", wang)
        assert len(s.calls(ONJOB)) == 1
        capsys.readouterr()
        assert await cmd_succession(args("succession", "list"), s.settings, clock=s.clock) == 0
        assert "done=1" in capsys.readouterr().out


async def test_refused_by_the_customer(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, customers=True) as s:
        await mirror_follows(s)
        wang = s.ids.customers["王芳"]
        await _move(s, "--from", "zhangwei", "--to", "lina", wang)
        await s.driver.transfer_fail("lina", wang, reason="customer_refused")
        await s.run()
        [item] = await items(s)
        assert (item.status, item.reason) == ("refused", "the customer refused the new manager (customer_refused)")
        assert (await follows_of(s, "zhangwei"))[wang] == "active"


async def test_the_limit_of_two_transfers_in_90_days(db_url: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path, customers=True, limits=Limits(follow_user_page=2, transfers_per_90_days=0)) as s:
        await mirror_follows(s)
        wang = s.ids.customers["王芳"]
        await _move(s, "--from", "zhangwei", "--to", "lina", wang, "--request-id", "R1")
        [item] = await items(s)
        assert (item.status, item.errcode) == ("limit", 40128)
        assert "at most twice in 90 days" in item.reason
        capsys.readouterr()
        assert await cmd_succession(args("succession", "show", "m:R1"), s.settings, clock=s.clock) == 0
        assert "limit  WeCom: a customer may be transferred at most twice in 90 days (40128)" in capsys.readouterr().out


async def test_no_answer_from_wecom_times_out(db_url: str, tmp_path: Path) -> None:
    limits = Limits(follow_user_page=2, transfer_takeover_s=30 * 86400.0)
    async with stack(db_url, tmp_path, customers=True, limits=limits) as s:
        await mirror_follows(s)
        wang = s.ids.customers["王芳"]
        await _move(s, "--from", "zhangwei", "--to", "lina", wang)
        await s.run_until(s.clock.now() + timedelta(hours=71))
        assert [i.status for i in await items(s)] == ["waiting"]
        await s.run_until(s.clock.now() + timedelta(hours=2))
        assert [i.status for i in await items(s)] == ["timeout"]


async def test_the_crm_asks_for_a_move_over_signed_http(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path, customers=True, sections={"crm": {"hmac_secret": SECRET}}) as s:
        await mirror_follows(s)
        wang, liu = s.ids.customers["王芳"], s.ids.customers["刘洋"]
        body = json.dumps({"moves": [{"request_id": "CRM-1", "from": "zhangwei", "to": "lina",
                                      "external_userids": [wang, liu]}]}).encode()
        now = int(s.clock.now().timestamp())
        resp = await s.client.post("/crm/v1/succession:move", data=body, headers=headers(SECRET, now, body))
        assert resp.status == 200 and await resp.json() == {"accepted": 1}
        resend = await s.client.post("/crm/v1/succession:move", data=body, headers=headers(SECRET, now, body))
        assert resend.status == 200
        await s.run()
        s.clock.advance(60)
        await s.step()
        assert [sorted(c.body["external_userid"]) for c in s.calls(ONJOB)] == [sorted([wang, liu])]
        bad = await s.client.post("/crm/v1/succession:move", data=body, headers=headers("wrong", now, body))
        assert bad.status == 401 and await bad.json() == {"error": "bad signature"}
        broken = json.dumps({"moves": [{"request_id": "CRM-2", "from": "zhangwei"}]}).encode()
        resp = await s.client.post("/crm/v1/succession:move", data=broken, headers=headers(SECRET, now, broken))
        assert resp.status == 400
        assert (await resp.json())["error"] == "1 invalid move(s); nothing stored"


async def test_bad_move_input_is_one_line(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path) as s:
        from scrm.cli_support import UserError

        with pytest.raises(UserError, match="not an active member"):
            await cmd_succession(args("succession", "move", "--from", "zhangwei", "--to", "ghost", "x"), s.settings,
                                 clock=s.clock)
        path = tmp_path / "moves.csv"
        path.write_text("from,to,external_userid\nzhangwei,lina,wm1\nzhangwei,,wm2\n", encoding="utf-8")
        assert await cmd_succession(args("succession", "move", "--file", str(path)), s.settings, clock=s.clock) == 2
        assert capsys.readouterr().err.splitlines() == [f"{path}:3: to: empty",
                                                        f"scrm: nothing moved: 1 problem(s) in {path}"]
        write_rules(s, "rules:\n  - pick: nearest\n    to: x\n")
        assert await cmd_succession(args("succession", "rules"), s.settings, clock=s.clock) == 2
        err = capsys.readouterr().err.splitlines()
        assert err == ["sop/succession.yaml:1: rules: no rule and no ops_queue: nobody could take a customer over",
                       "sop/succession.yaml:2: rules[0]: give exactly one of `to` (a successor's userid) "
                       "or `pick` (same_team | least_loaded)",
                       "scrm: 2 problem(s) in the succession rules"]
