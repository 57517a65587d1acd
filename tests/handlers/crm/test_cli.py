"""``scrm crm import FILE...`` and ``scrm sync tags [--dry-run]``."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from handlers.crm.cli import _sync_tags
from handlers.crm.models import CrmCustomer, CrmEvent
from handlers.tags import catalog as tagcatalog
from scrm.adapters.db.engine import make_engine
from scrm.cli import _register_extras, build_parser, main
from scrm.kernel.models import InboxEvent
from tests.handlers.crm.receiver import crm_stack

MARK_TAG = "externalcontact/mark_tag"


def _args(*argv: str) -> argparse.Namespace:
    _register_extras()
    return build_parser().parse_args(list(argv))


async def _counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            out = []
            for model in (CrmCustomer, CrmEvent, InboxEvent):
                out.append(int(await conn.scalar(select(func.count()).select_from(model)) or 0))
            return out[0], out[1], out[2]
    finally:
        await engine.dispose()


def test_crm_import_reports_bad_rows_keeps_good_ones(sqlite_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    customers = tmp_path / "customers.csv"
    customers.write_text("crm_id,tier,products,aum\n"
                         "C1,V1,payroll|wealth,120000\n"
                         ",V2,,\n"                     # line 3: no crm_id
                         "C2,V3,mortgage,1,extra\n"    # line 4: a cell too many
                         "\"C3\",\"VIP\",\"pension\",\"9\"\n"
                         "C1,,,130000\n",              # line 6: a later row for C1 changes one attribute
                         encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "E1", "crm_id": "C1", "kind": "maturity", "at": "2026-11-02T09:00:00+08:00"}\n'
                      "\n"
                      "[1, 2]\n"                                                       # line 3
                      '{"event_id": "E2", "crm_id": "C1", "kind": "maturity", "at": "2026-11-02T09:00:00"}\n'
                      '{"event_id": "E1", "crm_id": "C1", "kind": "maturity", "at": "2026-11-02T09:00:00+08:00"}\n'
                      "{oops\n", encoding="utf-8")                                    # line 6
    code = main(["crm", "import", str(customers), str(events)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [
        f"{customers}:3: crm_id: Field required",
        f"{customers}:4: more cells than header columns",
        f"{customers}: 5 rows, 3 stored, 2 customers changed, 0 new events, 2 errors",
        f"{events}:3: not a JSON object",
        f"{events}:4: at: Value error, needs a time zone, e.g. 2026-11-01T09:30:00+08:00",
        f"{events}:6: not JSON: Expecting property name enclosed in double quotes",
        f"{events}: 5 rows, 2 stored, 0 customers changed, 1 new events, 3 errors",
    ]
    # progress on stderr: the final line of each file
    assert "import customers.csv 100.0% 5 rows, 3 stored, 2 errors" in err
    assert "import events.jsonl 100.0% 5 rows, 2 stored, 3 errors" in err
    assert asyncio.run(_counts(sqlite_url)) == (2, 1, 2)  # C1, C3; E1 once; one crm.changed + one crm.event
    # C1's two rows were applied in order: the later aum wins, the earlier tier stays.
    engine = make_engine(sqlite_url)

    async def attrs() -> dict[str, object]:
        async with engine.connect() as conn:
            value = await conn.scalar(select(CrmCustomer.attributes).where(CrmCustomer.crm_id == "C1"))
        await engine.dispose()
        return dict(value)

    assert asyncio.run(attrs()) == {"tier": "V1", "products": "payroll|wealth", "aum": "130000"}
    # The same files again: nothing changes, nothing is queued; a clean file exits 0.
    clean = tmp_path / "clean.csv"
    clean.write_text("crm_id,tier\nC3,VIP\n", encoding="utf-8")
    assert main(["crm", "import", str(clean)]) == 0
    assert capsys.readouterr().out == f"{clean}: 1 rows, 1 stored, 0 customers changed, 0 new events, 0 errors\n"
    assert asyncio.run(_counts(sqlite_url)) == (2, 1, 2)
    # Whole-file problems: one line each, the other files still run.
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "noid.csv").write_text("id,tier\n1,V1\n")
    code = main(["crm", "import", str(tmp_path / "notes.txt"), str(tmp_path / "noid.csv"),
                 str(tmp_path / "missing.csv"), str(clean)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1 and len(lines) == 4
    assert lines[0] == f"scrm: {tmp_path}/notes.txt: unknown format (use .csv or .jsonl)"
    assert lines[1] == f"scrm: {tmp_path}/noid.csv:1: no crm_id column in the header row"
    assert lines[2].startswith("scrm: [Errno 2] No such file or directory")
    assert lines[3].startswith(f"{clean}: 1 rows")


def test_crm_import_bad_encoding_is_a_bad_row(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SCRM_DATABASE__URL", sqlite_url)
    path = tmp_path / "mixed.csv"
    path.write_bytes("\ufeffcrm_id,tier,note\nC1,V1,\"两行\n备注\"\n".encode()
                     + "C2,V2,中文\n".encode("gbk")               # line 4: saved as GBK
                     + "C3,V3,\"第一行\n".encode() + "第二行\"\n".encode("gbk")  # lines 5-6
                     + b"C4,V3,ok\n")
    assert main(["crm", "import", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:4: not UTF-8 text (save the file as UTF-8)",
        f"{path}:6: not UTF-8 text (save the file as UTF-8)",
        f"{path}: 4 rows, 2 stored, 2 customers changed, 0 new events, 2 errors",
    ]


async def test_sync_tags_dry_run_then_real_run(db_url: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        s = c.s
        exts = list(s.ids.customers.values())
        await c.seed_quietly([{"crm_id": f"K{i}", "external_userid": e,
                               "attributes": {"tier": "V3", "products": ["pension"], "aum": 1000}}
                              for i, e in enumerate(exts)])
        async with s.runtime.sessions() as session, session.begin():
            await tagcatalog.refresh(session, s.wecom)  # the service keeps this mirror in step
        calls = len(s.state.received)
        assert await _sync_tags(_args("sync", "tags", "--dry-run"), s.settings, clock=s.clock) == 0
        out, err = capsys.readouterr()
        assert out.splitlines() == [
            "10 relations checked, 10 to change: would queue 10 mark_tag calls",
            "  + 产品持有/养老金: 10",
            "  + 客户等级/V3: 10",
            "  + 资产规模/5万以下: 10",
            "  - 产品持有/代发: 2",
            "  - 产品持有/信用卡: 1",
            "  - 产品持有/按揭: 1",
            "  - 产品持有/理财: 2",
            "  - 客户等级/V0: 2",
            "  - 客户等级/V1: 3",
            "  - 客户等级/V2: 1",
            "  - 客户等级/VIP: 1",
            "  - 客户等级/VVIP: 1",
            "  ! 产品持有/养老金: not in WeCom yet (created on a real run)",
            "  ! 资产规模/5万以下: not in WeCom yet (created on a real run)",
            "  ! 资产规模/5万-50万: not in WeCom yet (created on a real run)",
            "  ! 资产规模/50万以上: not in WeCom yet (created on a real run)",
        ]
        assert "sync tags 10 relations, 10 mark_tag" in err
        assert s.state.received[calls:] == [] and await s.outbox_rows(MARK_TAG) == []  # nothing done
        # The real run creates the missing tags, queues the calls; the service sends them.
        assert await _sync_tags(_args("sync", "tags"), s.settings, clock=s.clock) == 0
        out, _ = capsys.readouterr()
        assert out.splitlines()[0] == "10 relations checked, 10 to change: queued 10 mark_tag calls"
        assert "!" not in out
        assert len(await s.outbox_rows(MARK_TAG)) == 10 and s.calls(MARK_TAG) == []
        await s.send()
        for userid, ext in c.mark_tag_pairs():
            crm_tags = {t for t in c.tag_names(userid, ext) if not t.startswith("兴趣/")}
            assert crm_tags == {"客户等级/V3", "产品持有/养老金", "资产规模/5万以下"}
        # Nothing left to do.
        assert await _sync_tags(_args("sync", "tags"), s.settings, clock=s.clock) == 0
        assert capsys.readouterr().out == "10 relations checked, 0 to change: queued 0 mark_tag calls\n"
        assert len(s.calls(MARK_TAG)) == 10
