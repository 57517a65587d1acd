"""The message trail: every customer-facing message that went out is recorded once, with its
material's content hash and sign-off and the checks that let it through; what did not go out is
not; the chain shows a changed, a deleted and an inserted record."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from handlers.compliance.cli import cmd_audit
from handlers.compliance.models import TrailHead, TrailRecord
from handlers.console.models import ConsoleAudit
from scrm.kernel.models import OutboxAction
from tests.handlers.staff.support import args
from tests.support.playbooks import REPO, write_shipped_playbook
from tests.support.service import drain
from tests.support.stack import Stack, stack

WELCOME = "externalcontact/send_welcome_msg"


def sha(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


async def trail(s: Stack) -> list[TrailRecord]:
    async with s.runtime.sessions() as db:
        return list((await db.scalars(select(TrailRecord).order_by(TrailRecord.seq))).all())


async def verify_exit(s: Stack, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = await cmd_audit(args("audit", "verify"), s.settings, clock=s.clock)
    return code, capsys.readouterr().out


async def test_a_welcome_that_went_out_is_recorded_with_its_material_and_sign_off(db_url: str, tmp_path: Path,
                                                                                   capsys: pytest.CaptureFixture[str]
                                                                                   ) -> None:
    async with stack(db_url, tmp_path) as s:
        out = await s.driver.add_external_contact("zhangwei", name="郑十四", state="lobby-chengxi")
        await s.run()
        ext = out.fields["ExternalUserID"]
        [row] = await s.outbox_rows(WELCOME)
        assert row.status == "sent"
        [record] = await trail(s)
        material = s.runtime.playbook.current.welcome_for("lobby-chengxi")  # type: ignore[union-attr]
        assert material is not None and material.approved is not None
        assert (record.seq, record.kind, record.api, record.sender, record.audience) == (1, "welcome", WELCOME,
                                                                                         "zhangwei", [ext])
        assert record.material == material.id
        # The content without its sign-off, defaults left out: the number its approval records.
        assert record.material_hash == sha(material.model_dump(mode="json", exclude={"approved", "valid_until"},
                                                               exclude_defaults=True))
        body = row.payload["body"]
        assert record.text_hash == sha({k: v for k, v in body.items() if k != "welcome_code"})
        assert record.decisions[0] == f"approved by {material.approved.by} on {material.approved.at}"
        assert record.outbox_key == row.idempotency_key and record.at == row.sent_at
        # Replaying the outbox records nothing more.
        await s.send()
        assert len(await trail(s)) == 1
        assert (await verify_exit(s, capsys))[0] == 0


async def test_what_did_not_go_out_is_not_recorded_and_an_operators_check_is(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        await s.driver.add_external_contact("zhangwei", name="郑十四", state="lobby-chengxi")
        await drain(s.runtime)
        s.clock.advance(30)  # the welcome's code expires before the outbox gets to it
        await s.send()
        [missed] = await s.outbox_rows(WELCOME)
        assert missed.status == "failed"
        assert await trail(s) == []
        # An action left `unknown` that an operator found delivered in WeCom's admin console.
        async with s.runtime.sessions() as db, db.begin():
            db.add(OutboxAction(idempotency_key="sop:manual", kind="wecom", status="unknown", attempts=1,
                                payload={"api": "externalcontact/add_msg_template", "method": "POST",
                                         "body": {"sender": "lina", "chat_type": "single", "external_userid": ["wmX"],
                                                  "text": {"content": "您好"}}},
                                next_attempt_at=s.clock.now(), created_at=s.clock.now()))
        [unknown] = [r for r in await s.outbox_rows() if r.idempotency_key == "sop:manual"]
        assert await s.runtime.outbox.mark_sent([unknown.id], by="ops") == 1
        assert await s.runtime.outbox.mark_sent([unknown.id], by="ops") == 0  # once
        [record] = await trail(s)
        assert (record.kind, record.sender, record.audience, record.decisions) == ("mass_send", "lina", ["wmX"],
                                                                                   ["unrecorded"])
        assert record.text_hash == sha({"text": {"content": "您好"}})


async def test_thirty_days_verify_and_a_changed_deleted_or_inserted_record_is_found(
        sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(sqlite_url, tmp_path, playbook=write_shipped_playbook(
            tmp_path, paths={"new-contact": (REPO / "sop" / "paths" / "new-contact.yaml").read_text()})) as s:
        start = s.clock.now()
        for day in range(10):  # a customer a day for ten days, then what the path sends them over 30 days
            for userid in ("zhangwei", "lina"):
                await s.driver.add_external_contact(userid, name=f"客户{day}{userid}", state="lobby-chengxi")
            await s.run()
            await s.run_until(start + timedelta(days=day + 1))
        await s.run_until(start + timedelta(days=30))
        records = await trail(s)
        failed = [(r.payload["api"], r.last_error) for r in await s.outbox_rows() if r.status == "failed"]
        kinds = {r.kind for r in records}
        assert failed == []
        # 20 welcomes, and the path's day-1 and day-7 messages to each of the 20 customers.
        assert sorted(Counter(r.kind for r in records).items()) == [("sop", 40), ("welcome", 20)], kinds
        assert [r.seq for r in records] == list(range(1, len(records) + 1))
        code, text = await verify_exit(s, capsys)
        assert code == 0 and f"{len(records)} record(s)" in text, text
        middle = records[len(records) // 2]

        # Changed: one decision rewritten.
        async with s.runtime.sessions() as db, db.begin():
            await db.execute(update(TrailRecord).where(TrailRecord.seq == middle.seq).values(decisions=["forged"]))
        code, text = await verify_exit(s, capsys)
        assert code == 1 and f"record {middle.seq}: its content was changed" in text, text
        async with s.runtime.sessions() as db, db.begin():
            await db.execute(update(TrailRecord).where(TrailRecord.seq == middle.seq)
                             .values(decisions=middle.decisions))
        assert (await verify_exit(s, capsys))[0] == 0

        # Deleted: one record gone.
        saved = {c: getattr(middle, c) for c in (col.name for col in TrailRecord.__table__.columns)}
        async with s.runtime.sessions() as db, db.begin():
            await db.execute(delete(TrailRecord).where(TrailRecord.seq == middle.seq))
        code, text = await verify_exit(s, capsys)
        assert code == 1 and f"records {middle.seq}–{middle.seq} are missing" in text, text
        async with s.runtime.sessions() as db, db.begin():
            await db.execute(insert(TrailRecord).values(**saved))
        assert (await verify_exit(s, capsys))[0] == 0

        # Inserted: a record that never went out, hashed the way the service hashes, appended
        # after the last one without moving the head (what a forger without the lock would do).
        last = records[-1]
        forged = {**{c: getattr(last, c) for c in (col.name for col in TrailRecord.__table__.columns)},
                  "seq": last.seq + 1, "prev_hash": last.hash, "outbox_key": "forged"}
        forged["hash"] = hashlib.sha256(_canonical(forged).encode()).hexdigest()
        async with s.runtime.sessions() as db, db.begin():
            await db.execute(insert(TrailRecord).values(**forged))
        code, text = await verify_exit(s, capsys)
        assert code == 1 and f"the chain ends at record {last.seq + 1} but its head says {last.seq}" in text, text


def _canonical(record: Mapping[str, Any]) -> str:
    """The published hashing rule, written here again from its description (chain.py's docstring)."""
    fields = ("seq", "at", "kind", "api", "outbox_key", "msgid", "sender", "audience", "audience_type", "material",
              "material_hash", "text_hash", "decisions", "retain_until", "prev_hash")
    return json.dumps({k: (record[k].isoformat() if hasattr(record[k], "isoformat") else record[k]) for k in fields},
                      ensure_ascii=False, sort_keys=True, separators=(",", ":"))


ACCESS = "members:\n  sunhui: {role: auditor}\n  zhouhai: {role: ops_admin}\n"


async def test_an_export_is_for_auditors_masks_customers_and_is_itself_audited(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scrm.cli_support import UserError

    async with stack(db_url, tmp_path) as s:
        (s.settings.playbook.sop_dir / "console.yaml").write_text(ACCESS, encoding="utf-8")
        out = await s.driver.add_external_contact("zhangwei", name="郑十四", state="lobby-chengxi")
        await s.run()
        ext = out.fields["ExternalUserID"]
        day = s.clock.now().date().isoformat()
        with pytest.raises(UserError, match="zhouhai is not an auditor"):
            await cmd_audit(args("audit", "export", "--since", day, "--until", day, "--as", "zhouhai"), s.settings,
                            clock=s.clock)
        with pytest.raises(UserError, match="--since must be a date"):
            await cmd_audit(args("audit", "export", "--since", "yesterday", "--until", day, "--as", "sunhui"),
                            s.settings, clock=s.clock)
        capsys.readouterr()
        assert await cmd_audit(args("audit", "export", "--since", day, "--until", day, "--as", "sunhui"), s.settings,
                               clock=s.clock) == 0
        [line] = capsys.readouterr().out.splitlines()
        masked = json.loads(line)
        assert ext not in line and masked["audience"] == ["anon:" + hashlib.sha256(ext.encode()).hexdigest()[:16]]
        assert await cmd_audit(args("audit", "export", "--since", day, "--until", day, "--as", "sunhui", "--reveal"),
                               s.settings, clock=s.clock) == 0
        revealed = json.loads(capsys.readouterr().out)
        assert revealed["audience"] == [ext]
        # A revealed export re-verifies with nothing but SHA-256 and the published rule.
        assert hashlib.sha256(_canonical(revealed).encode()).hexdigest() == revealed["hash"]
        assert await cmd_audit(args("audit", "export", "--since", day, "--until", day, "--as", "sunhui", "--csv"),
                               s.settings, clock=s.clock) == 0
        header, row = capsys.readouterr().out.splitlines()
        assert header.startswith("seq,at,kind,") and row.startswith("1,")
        async with s.runtime.sessions() as db:
            audits = (await db.scalars(select(ConsoleAudit).where(ConsoleAudit.action == "trail_export")
                                       .order_by(ConsoleAudit.id))).all()
        assert [(a.actor, a.detail["revealed"], a.detail["records"]) for a in audits] == [
            ("sunhui", False, 1), ("sunhui", True, 1), ("sunhui", False, 1)]


async def test_purging_expired_records_leaves_a_verifiable_chain(db_url: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    async with stack(db_url, tmp_path, sections={"compliance": {"retain_days": 400,
                                                                "retain_days_by_kind": {"welcome": 30}}}) as s:
        for n, name in enumerate(("甲", "乙", "丙", "丁")):
            if n == 2:  # the third record is a mass send, kept 400 days: it holds back what follows it
                async with s.runtime.sessions() as db, db.begin():
                    db.add(OutboxAction(idempotency_key="sop:kept", kind="wecom", status="unknown", attempts=1,
                                        payload={"api": "externalcontact/add_msg_template", "method": "POST",
                                                 "body": {"sender": "lina", "chat_type": "single",
                                                          "external_userid": ["wmX"], "text": {"content": "您好"}}},
                                        next_attempt_at=s.clock.now(), created_at=s.clock.now()))
                [kept] = [r for r in await s.outbox_rows() if r.idempotency_key == "sop:kept"]
                await s.runtime.outbox.mark_sent([kept.id], by="ops")
            await s.driver.add_external_contact("zhangwei", name=name, state="lobby-chengxi")
            await s.run()
            s.clock.advance(3600)
        assert [(r.seq, r.kind) for r in await trail(s)] == [(1, "welcome"), (2, "welcome"), (3, "mass_send"),
                                                            (4, "welcome"), (5, "welcome")]
        s.clock.advance(86400 * 31)
        capsys.readouterr()
        assert await cmd_audit(args("audit", "purge"), s.settings, clock=s.clock) == 0
        assert capsys.readouterr().out.startswith("2 expired record(s) purged")
        assert [r.seq for r in await trail(s)] == [3, 4, 5]
        code, text = await verify_exit(s, capsys)
        assert code == 0 and "3 record(s), 3–5" in text, text
        async with s.runtime.sessions() as db:
            head = (await db.scalars(select(TrailHead))).one()
        assert (head.base_seq, head.seq) == (2, 5)
        # Purging again finds nothing new to purge; a record deleted before the base is still found.
        assert await cmd_audit(args("audit", "purge"), s.settings, clock=s.clock) == 0
        assert capsys.readouterr().out.startswith("0 expired")
        async with s.runtime.sessions() as db, db.begin():
            await db.execute(delete(TrailRecord).where(TrailRecord.seq == 3))
        code, text = await verify_exit(s, capsys)
        assert code == 1 and "records 3–3 are missing" in text, text
