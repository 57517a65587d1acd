"""Conversation review (会话存档) end to end on the sandbox: the archive API with versioned keys,
the intake's batches (one transaction each), review cases and their alerts, and crash resume."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from subprocess import PIPE
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from handlers.compliance.archive.intake import ArchiveIntake, intake_for, rules_loader
from handlers.compliance.archive.keys import ArchiveKeyError, PrivateKeys
from handlers.compliance.archive.rules import REVIEW_FILE, ReviewRulesError, load_review_rules
from handlers.compliance.archive.sandbox_source import SandboxSource
from handlers.compliance.archive.source import ArchiveSourceError, load_sdk_source
from handlers.compliance.models import ArchiveCursor, ArchiveMessage, ReviewCase
from handlers.console.models import ConsoleAudit
from scrm.kernel.config import ConfigError
from scrm.kernel.models import OutboxAction
from scrm.sandbox.server_archive import Archive, archive_of
from tests.conftest import make_settings
from tests.handlers.console.support import ACCESS, console_stack, csrf_of, sign_in
from tests.support.stack import Stack, stack

ROOT = Path(__file__).resolve().parents[3]
REPO_REVIEW = ROOT / "sop" / "compliance" / "review.yaml"
OFFICERS = ("sunhui", "xuming")  # demo bank members, so the alerts can be delivered
ZONE = ZoneInfo("Asia/Shanghai")

# One planted violation per rule of the shipped review file (the rule each must hit), and clean
# messages that must hit none — a warning not to share codes is not asking for one.
PLANTED = {
    "promise-returns": "这款产品保本，年底前稳稳的，放心买",
    "ask-credentials": "您把手机刚收到的验证码发给我，我帮您操作",
    "personal-account": "手续费那部分您先转到我个人账户上",
    "off-book-sale": "这个不走系统，私下认购额度更高",
}
URGENT = {"ask-credentials", "personal-account"}
CLEAN = ["您好，本月理财产品净值已更新，详情请看附件。", "明天上午十点网点有客户活动，欢迎参加。", "收到，谢谢！",
         "好的，我稍后给您回电话。", "请勿向任何人透露密码和验证码。", "理财非存款，产品有风险，投资须谨慎。",
         "您的信用卡账单已出，记得按时还款。", "周末网点正常营业。"]


def key_pair(bits: int) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    return key, pem


@dataclass
class Script:
    """What the test put in the archive, known without asking the code under test."""

    conversations: dict[int, str] = field(default_factory=dict)  # seq → conversation key
    texts: dict[int, str] = field(default_factory=dict)
    planted: dict[int, str] = field(default_factory=dict)  # seq → rule id


def message(seq: int, start_ms: int, sender: str, to: str, text: str | None, room: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"msgid": f"msg{seq:06d}", "action": "send", "from": sender, "tolist": [to],
                            "roomid": room, "msgtime": start_ms + seq * 1000}
    if text is None:
        body.update(msgtype="image", image={"md5sum": "0" * 32, "filesize": 1024})
    else:
        body.update(msgtype="text", text={"content": text})
    return body


def fill(archive: Archive, count: int, *, seed: int, plants: int, rotate_at: int, start: datetime) -> Script:
    """``count`` messages across 40 one-to-one chats and 5 group chats, the key rotated from
    version 1 to 2 after ``rotate_at``, ``plants`` violations at random seqs (cycling the rules)."""
    rng = random.Random(seed)
    start_ms = int(start.timestamp() * 1000)
    planted_seqs = sorted(rng.sample(range(1, count + 1), plants))
    rules = list(PLANTED)
    script = Script(planted={s: rules[i % len(rules)] for i, s in enumerate(planted_seqs)})
    for seq in range(1, count + 1):
        chat = rng.randrange(45)
        manager, customer = f"mgr{chat % 8}", f"wmcustomer{chat:03d}"
        room = f"wrroom{chat}" if chat >= 40 else ""
        sender, to = (manager, customer) if rng.random() < 0.6 else (customer, manager)
        if seq in script.planted:
            text: str | None = PLANTED[script.planted[seq]]
            sender, to = manager, customer
        else:
            text = None if rng.random() < 0.05 else rng.choice(CLEAN)
        archive.add(message(seq, start_ms, sender, to, text, room), key_version=1 if seq <= rotate_at else 2)
        script.conversations[seq] = room or "|".join(sorted({sender, to}))
        script.texts[seq] = text or ""
    return script


def review_file(s: Stack, officers: tuple[str, ...] = OFFICERS) -> None:
    """The shipped review rules, alerting ``officers``."""
    text = REPO_REVIEW.read_text(encoding="utf-8").replace("officers: [hegui01]", f"officers: [{', '.join(officers)}]")
    assert "officers: [hegui01]" not in text or not officers
    path = s.settings.playbook.sop_dir / REVIEW_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def intake(s: Stack, pems: dict[int, str], *, batch: int = 1000) -> ArchiveIntake:
    return ArchiveIntake(source=SandboxSource(s.runtime.wecom), keys=PrivateKeys(pems), sessions=s.runtime.sessions,
                         clock=s.clock, outbox=s.runtime.outbox, settings=s.settings,
                         rules=rules_loader(s.settings.playbook.sop_dir), playbook=lambda: s.runtime.playbook.current,
                         batch=batch)


async def drain_archive(i: ArchiveIntake) -> int:
    total = 0
    while n := await i.pull():
        total += n
    return total


async def scalar(s: Stack, q: Any) -> Any:
    async with s.runtime.sessions() as db:
        return await db.scalar(q)


async def kill_mid_batch(s: Stack, pems: dict[int, str], freeze_at: int, tmp_path: Path) -> None:
    """Run the service's intake in a child process and kill -9 it once message ``freeze_at`` is
    stored and reviewed but its batch not committed."""
    spec = {"db_url": s.settings.database.url, "api_base": s.settings.wecom.api_base,
            "sop_dir": str(s.settings.playbook.sop_dir), "materials_dir": str(s.settings.playbook.materials_dir),
            "compliance": {"archive_source": "sandbox", "archive_private_keys": pems}, "now": s.clock.now().isoformat(),
            "freeze_at": freeze_at}
    (tmp_path / "child.json").write_text(json.dumps(spec), encoding="utf-8")
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", "tests.handlers.compliance.archive_child",
                                                 str(tmp_path / "child.json"), cwd=ROOT, stdout=PIPE, stderr=PIPE)
    try:
        said = await asyncio.wait_for(child.stdout.readline(), timeout=120) if child.stdout else b""
        assert said == b"frozen\n", (said, await child.stderr.read() if child.stderr else b"")
    finally:
        if child.returncode is None:
            child.kill()  # SIGKILL: no cleanup, no rollback from the child's side
        await child.wait()
    assert child.returncode == -signal.SIGKILL


async def test_ten_thousand_messages_fifty_cases_resumed_after_kill_9_mid_batch(db_url: str, tmp_path: Path) -> None:
    async with stack(db_url, tmp_path) as s:
        review_file(s)
        (k1, pem1), (k2, pem2) = key_pair(1024), key_pair(1024)  # 1024 bits: 10,000 decryptions stay fast
        archive = archive_of(s.state)
        archive.set_public_key(1, k1.public_key())
        archive.set_public_key(2, k2.public_key())
        script = fill(archive, 10_000, seed=19, plants=50, rotate_at=6_000, start=s.clock.now() - timedelta(days=1))

        await kill_mid_batch(s, {1: pem1, 2: pem2}, 2_500, tmp_path)
        # The third batch's transaction never committed: nothing of it is stored or reviewed.
        assert await scalar(s, select(ArchiveCursor.seq)) == 2000
        assert await scalar(s, select(func.max(ArchiveMessage.seq))) == 2000
        early = {seq for seq in script.planted if seq <= 2000}
        assert await scalar(s, select(func.count()).select_from(ReviewCase)) == len(early)

        assert await drain_archive(intake(s, {1: pem1, 2: pem2})) == 8000
        async with s.runtime.sessions() as db:
            stored = (await db.execute(select(ArchiveMessage.seq, ArchiveMessage.conversation,
                                              ArchiveMessage.key_version))).all()
            cases = (await db.execute(select(ReviewCase.message_seq, ReviewCase.rule, ReviewCase.urgent,
                                             ReviewCase.status))).all()
            alerts = (await db.scalars(select(OutboxAction.idempotency_key)
                                       .where(OutboxAction.idempotency_key.like("review-case:%")))).all()
        # every message stored once, in its conversation, under the key version it was archived with
        assert sorted(seq for seq, _, _ in stored) == list(range(1, 10_001))
        assert {seq: conv for seq, conv, _ in stored} == script.conversations
        assert {seq: ver for seq, _, ver in stored} == {seq: 1 if seq <= 6000 else 2 for seq in range(1, 10_001)}
        # exactly the 50 planted messages opened a case, each under the rule it was planted for
        assert len(script.planted) == 50
        assert {seq: rule for seq, rule, _, _ in cases} == script.planted
        assert len(cases) == 50 and {status for *_, status in cases} == {"open"}
        assert {seq for seq, _, urgent, _ in cases if urgent} == {q for q, r in script.planted.items() if r in URGENT}
        # one alert per case and officer, none twice (the crashed batch's were rolled back with it)
        assert sorted(alerts) == sorted(f"review-case:{seq}:{o}" for seq in script.planted for o in OFFICERS)


async def test_a_missing_or_wrong_key_version_stops_the_intake_with_the_cursor_unmoved(sqlite_url: str,
                                                                                       tmp_path: Path) -> None:
    async with stack(sqlite_url, tmp_path) as s:
        review_file(s)
        (k1, pem1), (k2, pem2), (_, other) = key_pair(2048), key_pair(2048), key_pair(2048)
        archive = archive_of(s.state)
        archive.set_public_key(1, k1.public_key())
        start_ms = int(s.clock.now().timestamp() * 1000)
        for seq in (1, 2):
            archive.add(message(seq, start_ms, "zhangwei", "wmcust", CLEAN[0]))
        archive.set_public_key(2, k2.public_key())  # rotated: seq 3 on is under version 2
        archive.add(message(3, start_ms, "zhangwei", "wmcust", CLEAN[1]))

        with pytest.raises(ArchiveKeyError) as missing:
            await intake(s, {1: pem1}).pull()
        assert str(missing.value) == ("archive message seq 3 (msg000003) is encrypted with public key version 2, and "
                                      "[compliance] archive_private_keys has version(s) 1: add the private key of "
                                      "version 2")
        with pytest.raises(ArchiveKeyError, match="does not decrypt with private key version 2"):
            await intake(s, {1: pem1, 2: other}).pull()
        assert pem2 not in str(missing.value) and other not in str(missing.value)
        # nothing of the refused batch was stored: not even the two messages that did decrypt
        assert await scalar(s, select(ArchiveCursor.seq)) == 0
        assert await scalar(s, select(func.count()).select_from(ArchiveMessage)) == 0

        assert await intake(s, {1: pem1, 2: pem2}).pull() == 3
        assert await scalar(s, select(ArchiveCursor.seq)) == 3


async def test_alerts_wait_for_the_end_of_quiet_hours_unless_urgent(sqlite_url: str, tmp_path: Path) -> None:
    k1, pem1 = key_pair(2048)
    sections = {"compliance": {"archive_source": "sandbox", "archive_private_keys": {1: pem1}}}
    async with stack(sqlite_url, tmp_path, sections=sections) as s:
        evening = datetime.combine(s.clock.now().astimezone(ZONE).date() + timedelta(days=1), time(22, 0), ZONE)
        s.clock.set(evening)
        review_file(s, officers=("sunhui",))
        archive = archive_of(s.state)
        archive.set_public_key(1, k1.public_key())
        start_ms = int(s.clock.now().timestamp() * 1000)
        archive.add(message(1, start_ms, "zhangwei", "wmcust", PLANTED["promise-returns"]))
        archive.add(message(2, start_ms, "lina", "wmcust2", PLANTED["ask-credentials"]))

        worker = intake_for(s.runtime)  # built from [compliance] like the service's worker
        assert await worker.pull() == 2
        await s.send()
        first = s.notices("sunhui")
        assert len(first) == 1 and "紧急" in first[0] and "索要密码或验证码" in first[0]
        # the link to the case, never the message itself
        assert PLANTED["ask-credentials"] not in first[0] and "/console/cases/" in first[0]

        morning = datetime.combine(evening.date() + timedelta(days=1), time(8, 30), ZONE)
        s.clock.set(morning - timedelta(minutes=1))
        await s.send()
        assert len(s.notices("sunhui")) == 1  # still quiet at 08:29
        s.clock.set(morning)
        await s.send()
        later = s.notices("sunhui")[1:]
        assert len(later) == 1 and "承诺保本或收益" in later[0] and "紧急" not in later[0]
        assert await worker.pull() == 0  # drained: nothing again, no second alert
        await s.send()
        assert len(s.notices("sunhui")) == 2


def test_the_finance_sdk_is_loaded_at_run_time_and_its_absence_is_one_line() -> None:
    with pytest.raises(ArchiveSourceError) as absent:
        load_sdk_source("no_such_finance_sdk_module")
    assert "\n" not in str(absent.value) and "'no_such_finance_sdk_module'" in str(absent.value)
    with pytest.raises(ArchiveSourceError, match="lacks get_chat_data, decrypt_data"):
        load_sdk_source("json")


def test_a_bad_private_key_is_named_by_version_without_its_text() -> None:
    with pytest.raises(ArchiveKeyError) as bad:
        PrivateKeys({2: "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n"})
    assert str(bad.value) == ("[compliance] archive_private_keys.2: not a PEM RSA private key without a passphrase")


async def test_cases_are_for_compliance_officers_and_every_view_is_audited(db_url: str, tmp_path: Path) -> None:
    access = ACCESS + "  hemin: {role: compliance_officer}\n"
    async with console_stack(db_url, tmp_path, access=access) as s:
        review_file(s, officers=("hemin",))
        k1, pem1 = key_pair(2048)
        archive = archive_of(s.state)
        archive.set_public_key(1, k1.public_key())
        start_ms = int(s.clock.now().timestamp() * 1000)
        # Conversation A (zhangwei ↔ wmA) at seqs 1..13 with another chat interleaved at the even
        # seqs 14..; the violation at A's 8th message: 5 of A's before it, 5 after.
        a_seqs, seq = [], 0
        for n in range(13):
            seq += 1
            a_seqs.append(seq)
            text = PLANTED["promise-returns"] if n == 7 else f"A 的第{n}条消息"
            archive.add(message(seq, start_ms, "zhangwei", "wmA", text))
            seq += 1
            archive.add(message(seq, start_ms, "lina", "wmB", f"B 的第{n}条消息"))
        hit = a_seqs[7]
        assert await drain_archive(intake(s, {1: pem1})) == 26
        async with s.runtime.sessions() as db:
            case_id = await db.scalar(select(ReviewCase.id).where(ReviewCase.message_seq == hit))
        assert case_id is not None

        await sign_in(s, "hemin")
        listing = await s.client.get("/console/cases")
        body = await listing.text()
        assert listing.status == 200 and f'id="case-{case_id}"' in body and 'href="/console/cases"' in body
        page = await (await s.client.get(f"/console/cases/{case_id}")).text()
        shown = [f"A 的第{n}条消息" for n in (2, 3, 4, 5, 6, 8, 9, 10, 11, 12)]
        assert PLANTED["promise-returns"] in page and all(t in page for t in shown)
        assert "A 的第1条消息" not in page and "B 的第" not in page  # 5 each side, this conversation only
        assert 'data-action="dismiss"' in page

        for userid in ("zhouhai", "mali"):  # an ops admin and a branch head may not see archived content
            s.client.session.cookie_jar.clear()
            await sign_in(s, userid)
            refused = await s.client.get(f"/console/cases/{case_id}")
            text = await refused.text()
            assert refused.status == 403 and PLANTED["promise-returns"] not in text
            assert (await s.client.get("/console/cases")).status == 403
            assert 'href="/console/cases"' not in await (await s.client.get("/console/")).text()

        s.client.session.cookie_jar.clear()
        await sign_in(s, "sunhui")  # an auditor reads, and cannot decide
        assert (await s.client.get(f"/console/cases/{case_id}")).status == 200
        assert (await s.client.post(f"/console/cases/{case_id}/dismiss",
                                    data={"csrf_token": await csrf_of(s)})).status == 403

        s.client.session.cookie_jar.clear()
        await sign_in(s, "hemin")
        csrf = await csrf_of(s)
        done = await s.client.post(f"/console/cases/{case_id}/dismiss", data={"csrf_token": csrf, "note": "客户已知情"},
                                   allow_redirects=False)
        assert done.status == 303
        again = await s.client.post(f"/console/cases/{case_id}/escalate", data={"csrf_token": csrf})
        assert again.status == 409
        assert (await s.client.get("/console/cases/x")).status == 400

        async with s.runtime.sessions() as db:
            case = await db.get(ReviewCase, case_id)
            trail = [(a.actor, a.action, a.target) for a in
                     (await db.scalars(select(ConsoleAudit).order_by(ConsoleAudit.id))).all()
                     if "cases" in a.target or a.target.startswith("case:")]
        assert case is not None and (case.status, case.assignee, case.note) == ("dismissed", "hemin", "客户已知情")
        target = f"/console/cases/{case_id}"
        assert trail == [
            ("hemin", "view", "/console/cases"), ("hemin", "view_case", f"case:{case_id}"),
            ("zhouhai", "forbidden", target), ("zhouhai", "forbidden", "/console/cases"),
            ("mali", "forbidden", target), ("mali", "forbidden", "/console/cases"),
            ("sunhui", "view_case", f"case:{case_id}"), ("sunhui", "forbidden", f"{target}/dismiss"),
            ("hemin", "case_dismiss", f"case:{case_id}"), ("hemin", "case_escalate", f"case:{case_id}"),
        ]


def test_archive_settings_are_checked_at_start_up_without_echoing_a_key(sqlite_url: str) -> None:
    broken = "-----BEGIN RSA PRIVATE KEY-----\nsecret-looking-line\n-----END RSA PRIVATE KEY-----\n"
    with pytest.raises(ConfigError) as bad_key:
        make_settings(sqlite_url, compliance={"archive_source": "sandbox", "archive_private_keys": {"2": broken}})
    assert str(bad_key.value).endswith("compliance.archive_private_keys (env SCRM_COMPLIANCE__ARCHIVE_PRIVATE_KEYS): "
                                       "version 2: not a PEM RSA private key without a passphrase")
    assert "secret-looking-line" not in str(bad_key.value)
    _, pem = key_pair(1024)
    with pytest.raises(ConfigError, match="needs the finance SDK wrapper module 'no_such_finance_sdk'"):
        make_settings(sqlite_url, compliance={"archive_source": "sdk", "archive_sdk_module": "no_such_finance_sdk",
                                              "archive_private_keys": {"1": pem}})
    with pytest.raises(ConfigError, match="archive_private_keys is empty"):
        make_settings(sqlite_url, compliance={"archive_source": "sandbox"})


def test_review_rule_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "review.yaml"
    path.write_text("officers: [hemin]\n"
                    "rules:\n"
                    "  - id: promise-returns\n"
                    "    title: 承诺收益\n"
                    "    patterns: ['保本']\n"
                    "  - id: promise-returns\n"
                    "    title: 重复\n"
                    "    words: [稳赚]\n"
                    "  - {id: Bad_Id, title: x, words: [a]}\n"
                    "  - {id: no-words, title: 空}\n"
                    "  - {id: bad-pattern, title: 坏, patterns: ['保(本']}\n", encoding="utf-8")
    with pytest.raises(ReviewRulesError) as bad:
        load_review_rules(path, "sop/compliance/review.yaml")
    assert [str(i) for i in bad.value.issues] == [
        "sop/compliance/review.yaml:6: rules[1].id: rule id 'promise-returns' is used twice",
        "sop/compliance/review.yaml:9: rules[2].id: an id of lowercase letters, digits and '-' (up to 64)",
        "sop/compliance/review.yaml:10: rules[3]: a rule needs words or patterns",
        "sop/compliance/review.yaml:11: rules[4].patterns[0]: not a regular expression: "
        "missing ), unterminated subpattern at position 1",
    ]
    shipped = load_review_rules(REPO_REVIEW)  # the shipped file is valid and each plant hits its rule
    assert {rule: [r.id for r, _ in shipped.hits(text)] for rule, text in PLANTED.items()} == \
        {rule: [rule] for rule in PLANTED}
    assert [t for t in CLEAN if shipped.hits(t)] == []
