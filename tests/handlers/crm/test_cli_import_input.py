"""``scrm crm import``: the encodings banks export in, and rows it cannot honour, via the CLI.

A Chinese bank's Excel saves CSV as GBK (or GB18030) with CRLF line ends; UTF-8 exports often
start with a byte-order mark. Bad rows are one line each and are not stored; the good rows are.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from handlers.crm.models import CrmCustomer, CrmEvent
from scrm.adapters.db.engine import make_engine
from scrm.cli import main

CUSTOMERS = ("crm_id,name,city,tier,products,birthday\r\n"
             "C1,王芳,上海,V2,payroll|wealth,1980-12-31\r\n"
             "C2,刘洋,北京,VIP,,\r\n")


async def _table(url: str, model: Any) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            if model is CrmCustomer:
                rows = await conn.execute(select(CrmCustomer.crm_id, CrmCustomer.attributes))
            else:
                rows = await conn.execute(select(CrmEvent.event_id, CrmEvent.payload))
            return {key: dict(value) for key, value in rows.all()}
    finally:
        await engine.dispose()


def _customers(url: str) -> dict[str, Any]:
    return asyncio.run(_table(url, CrmCustomer))


def _events(url: str) -> dict[str, Any]:
    return asyncio.run(_table(url, CrmEvent))


@pytest.fixture
def url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCRM_DATABASE__URL", db_url)
    return db_url


@pytest.mark.parametrize("encoding", ["gbk", "GB18030", "cp936"])
def test_import_a_gbk_excel_export(encoding: str, url: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "客户.csv"
    path.write_bytes(CUSTOMERS.encode(encoding))
    assert main(["crm", "import", "--encoding", encoding, str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: 2 rows, 2 stored, 2 customers changed, 0 new events, 0 errors\n"
    assert _customers(url) == {
        "C1": {"name": "王芳", "city": "上海", "tier": "V2", "products": "payroll|wealth", "birthday": "1980-12-31"},
        "C2": {"name": "刘洋", "city": "北京", "tier": "VIP"},
    }


def test_import_gb18030_beyond_gbk_with_its_byte_order_mark(url: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # 𠮷 is outside GBK; GB18030 covers all of Unicode, and has a byte-order mark of its own.
    path = tmp_path / "events.csv"
    text = ("\ufeffevent_id,crm_id,kind,at,maturity_date,product_name,amount\r\n"
            "E1,C1,maturity,2026-11-01T09:30:00+08:00,2026-12-01,𠮷祥90天,50000\r\n")
    path.write_bytes(text.encode("gb18030"))
    assert main(["crm", "import", "--encoding", "gb18030", str(path)]) == 0
    assert capsys.readouterr().out.endswith("1 rows, 1 stored, 0 customers changed, 1 new events, 0 errors\n")
    assert _events(url) == {"E1": {"maturity_date": "2026-12-01", "product_name": "𠮷祥90天", "amount": "50000"}}


def test_utf8_with_or_without_byte_order_mark_by_default(url: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    bom, plain = tmp_path / "bom.csv", tmp_path / "plain.jsonl"
    bom.write_bytes("\ufeff".encode() + CUSTOMERS.encode())
    plain.write_text('{"crm_id": "C3", "name": "赵敏"}\n', encoding="utf-8")
    assert main(["crm", "import", str(bom), str(plain)]) == 0
    assert main(["crm", "import", "--encoding", "utf-8", str(bom)]) == 0  # the same file, by name
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1] for line in out] == [
        "2 rows, 2 stored, 2 customers changed, 0 new events, 0 errors",
        "1 rows, 1 stored, 1 customers changed, 0 new events, 0 errors",
        "2 rows, 2 stored, 0 customers changed, 0 new events, 0 errors",
    ]
    assert _customers(url)["C1"]["name"] == "王芳" and _customers(url)["C3"] == {"name": "赵敏"}


@pytest.mark.parametrize(("name", "message"), [
    ("gbkk", "unknown encoding 'gbkk'; use utf-8 (the default), gbk or gb18030"),
    ("rot13", "unknown encoding 'rot13'; use utf-8 (the default), gbk or gb18030"),
    ("utf-16", "encoding 'utf-16' is not supported (lines are read one at a time); "
               "use utf-8 (the default), gbk or gb18030"),
], ids=["unknown", "not-text", "utf-16"])
def test_an_encoding_it_cannot_read_is_one_line_and_exit_2(name: str, message: str, url: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(CUSTOMERS.encode("gbk"))
    assert main(["crm", "import", "--encoding", name, str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"scrm: {message}\n"
    assert _customers(url) == {}


def test_a_utf8_file_named_gbk_is_refused_whole(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("\ufeff".encode() + CUSTOMERS.encode())
    assert main(["crm", "import", "--encoding", "gbk", str(path)]) == 1
    assert capsys.readouterr().out == (f"scrm: {path}:1: starts with a UTF-8 byte-order mark: "
                                       "the file is UTF-8, not GBK\n")
    assert _customers(url) == {}


def test_a_gbk_line_in_a_gb18030_file_reads_and_a_broken_one_is_a_bad_row(
        url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("crm_id,name\r\nC1,王芳\r\n".encode("gbk") + b"C2,\xff\xfe\r\n" + "C3,刘洋\r\n".encode("gb18030"))
    assert main(["crm", "import", "--encoding", "gb18030", str(path)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"{path}:3: not GB18030 text (save the file as GB18030)"
    assert set(_customers(url)) == {"C1", "C3"}


def test_jsonl_rows_it_cannot_honour_are_bad_rows_and_not_stored(url: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    at = "2026-11-01T09:30:00+08:00"
    good = {"event_id": "E0", "crm_id": "C0", "kind": "large_transfer", "at": at, "payload": {"amount": 500000}}
    lines = [
        json.dumps(good),
        json.dumps({**good, "event_id": "E1", "kind": "large_transfr"}),
        json.dumps({**good, "event_id": "E2", "kind": "maturity", "payload": {"maturity_date": "2026-02-30"}}),
        json.dumps({**good, "event_id": "E3", "kind": "birthday", "payload": {"birthday": "31/12/1980"}}),
        json.dumps({**good, "event_id": "E4"}).replace("500000", "NaN"),
        json.dumps({**good, "event_id": "E5"}).replace("500000", "1e400"),
        json.dumps({**good, "event_id": "E6", "payload": {"amount": 1, "x": [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}}),
        '{"event_id": "E7", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}",
        json.dumps({**good, "event_id": "E8", "crm_id": "C\x00"}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["crm", "import", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:2: kind: Value error, unknown event kind 'large_transfr'; use one of account.opened, birthday, "
        "card.activated, interaction.call, interaction.visit, large_transfer, loan.drawn, manager_change, maturity, "
        "payroll.credit, purchase.fund, purchase.insurance, purchase.wealth, risk_expiry, tier_down, tier_up",
        f"{path}:3: payload: Value error, maturity_date: '2026-02-30' is not a date; write YYYY-MM-DD, e.g. 2026-12-01",
        f"{path}:4: payload: Value error, birthday: '31/12/1980' is not a date; write YYYY-MM-DD, e.g. 2026-12-01",
        f"{path}:5: not JSON: NaN is not valid JSON (JSON has no NaN or Infinity)",
        f"{path}:6: not JSON: 1e400 is too large a number",
        f"{path}:7: nested deeper than 16 levels",
        f"{path}:8: not JSON: nested deeper than 16 levels",
        f"{path}:9: text contains a NUL character (\\u0000), which the database cannot store",
        f"{path}: 9 rows, 1 stored, 0 customers changed, 1 new events, 8 errors",
    ]
    assert list(_events(url)) == ["E0"]
