"""The push API refuses what it cannot honour: one line of JSON, 400, nothing stored.

Each case is a correctly signed request over real HTTP, on SQLite and on PostgreSQL (which is
stricter about what its JSON columns take). Every batch also holds a valid record, so "nothing
stored" shows the batch is all or nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from handlers.crm import auth
from handlers.crm.models import Binding, CrmCustomer, CrmEvent
from handlers.crm.records import CONVERSION_KINDS, EVENT_KINDS, INTERACTION_KINDS, MAX_DEPTH
from handlers.sop.reminders import CRM_KINDS
from scrm.kernel.models import InboxEvent
from tests.handlers.crm.receiver import SECRET, CrmStack, crm_stack

CUSTOMERS, EVENTS, BINDINGS = "/crm/v1/customers:batchUpsert", "/crm/v1/events", "/crm/v1/bindings"
AT = "2026-11-01T09:30:00+08:00"
GOOD_EVENT = {"event_id": "E0", "crm_id": "C0", "kind": "large_transfer", "at": AT, "payload": {"amount": 500000}}
GOOD_CUSTOMER = {"crm_id": "C0", "attributes": {"tier": "V1", "birthday": "1980-12-31"}}


def _event(kind: str = "maturity", **payload: Any) -> dict[str, Any]:
    return {"event_id": "E1", "crm_id": "C1", "kind": kind, "at": AT, "payload": payload}


def _events(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": [GOOD_EVENT, *events]}, ensure_ascii=False).encode()


def _customers(*customers: dict[str, Any]) -> bytes:
    return json.dumps({"customers": [GOOD_CUSTOMER, *customers]}, ensure_ascii=False).encode()


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


# (path, signed body, what the error line or the record's detail line says)
CASES: dict[str, tuple[str, bytes, str]] = {
    "unknown kind": (EVENTS, _events(_event("large_transfr", amount=1)),
                     "events[1]: kind: Value error, unknown event kind 'large_transfr'; use one of account.opened, "
                     "birthday, card.activated, interaction.call, interaction.visit, large_transfer, loan.drawn, "
                     "manager_change, maturity, payroll.credit, purchase.fund, purchase.insurance, purchase.wealth, "
                     "risk_expiry, tier_down, tier_up"),
    "impossible date": (EVENTS, _events(_event(maturity_date="2026-02-30", product_name="稳享90天")),
                        "events[1]: payload: Value error, maturity_date: '2026-02-30' is not a date; "
                        "write YYYY-MM-DD, e.g. 2026-12-01"),
    "day-first date": (EVENTS, _events(_event("birthday", birthday="31/12/1980")),
                       "events[1]: payload: Value error, birthday: '31/12/1980' is not a date"),
    "impossible date in any field": (EVENTS, _events(_event("tier_up", effective="2026-02-30")),
                                     "events[1]: payload: Value error, effective: '2026-02-30' is not a date"),
    "customer birthday": (CUSTOMERS, _customers({"crm_id": "C1", "attributes": {"birthday": "31/12/1980"}}),
                          "customers[1]: attributes: Value error, birthday: '31/12/1980' is not a date"),
    "amount in words": (EVENTS, _events(_event("large_transfer", amount="50万")),
                        "events[1]: payload: Value error, amount: '50万' is not a number"),
    "large transfer without amount": (EVENTS, _events(_event("large_transfer", note="x")),
                                      "events[1]: payload: Value error, a large_transfer event needs amount"),
    "NaN": (CUSTOMERS, b'{"customers": [{"crm_id": "C0"}, {"crm_id": "C1", "attributes": {"aum": NaN}}]}',
            "body is not JSON: NaN is not valid JSON (JSON has no NaN or Infinity)"),
    "Infinity": (EVENTS, _events(_event("large_transfer", amount=0)).replace(b'"amount": 0', b'"amount": Infinity'),
                 "body is not JSON: Infinity is not valid JSON (JSON has no NaN or Infinity)"),
    "-Infinity": (CUSTOMERS, b'{"customers": [{"crm_id": "C1", "attributes": {"aum": -Infinity}}]}',
                  "body is not JSON: -Infinity is not valid JSON (JSON has no NaN or Infinity)"),
    "overflowing number": (CUSTOMERS, b'{"customers": [{"crm_id": "C1", "attributes": {"aum": 1e400}}]}',
                           "body is not JSON: 1e400 is too large a number"),
    "huge integer": (CUSTOMERS, b'{"customers": [{"crm_id": "C1", "attributes": {"aum": ' + b"9" * 5000 + b"}}]}",
                     "body is not JSON: 99999999999999999999... is too large a number"),
    "nested deep": (CUSTOMERS, _customers({"crm_id": "C1", "attributes": {"x": json.loads(_nested(MAX_DEPTH))}}),
                    f"customers[1]: nested deeper than {MAX_DEPTH} levels"),
    "nested past the parser": (CUSTOMERS, ('{"customers": [{"crm_id": "C1", "attributes": {"x": '
                                           + _nested(100_000) + "}}]}").encode(),
                               f"body is not JSON: nested deeper than {MAX_DEPTH} levels"),
    "NUL in text": (CUSTOMERS, _customers({"crm_id": "C1", "attributes": {"name": "王\x00芳"}}),
                    "customers[1]: text contains a NUL character (\\u0000), which the database cannot store"),
    "lone surrogate": (CUSTOMERS, b'{"customers": [{"crm_id": "C0"}, {"crm_id": "C1\\ud800"}]}',
                       "customers[1]: text contains a lone UTF-16 surrogate"),
    "one contact, two customers": (
        CUSTOMERS, _customers({"crm_id": "C1", "external_userid": "wm-1"}, {"crm_id": "C1", "attributes": {}},
                              {"crm_id": "C2", "external_userid": "wm-1"}),
        "customers[3]: external_userid 'wm-1' is also given to crm_id 'C1' in customers[1]; "
        "one WeCom contact is one CRM customer"),
    "one contact, two bindings": (
        BINDINGS, json.dumps({"bindings": [{"crm_id": "C0", "external_userid": "wm-0"},
                                           {"crm_id": "C1", "external_userid": "wm-1"},
                                           {"crm_id": "C2", "external_userid": "wm-1"}]}).encode(),
        "bindings[2]: external_userid 'wm-1' is also given to crm_id 'C1' in bindings[1]"),
}


async def _post(c: CrmStack, path: str, body: bytes) -> tuple[int, str]:
    stamp = int(c.s.clock.now().timestamp())
    resp = await c.s.client.post(path, data=body, headers=auth.headers(SECRET, stamp, body))
    return resp.status, await resp.text()


async def _stored(c: CrmStack) -> list[int]:
    async with c.s.runtime.sessions() as session:
        return [int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (CrmCustomer, CrmEvent, Binding, InboxEvent)]


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_batch_is_one_line_400_and_nothing_stored(case: str, db_url: str, tmp_path: Path) -> None:
    path, body, expected = CASES[case]
    async with crm_stack(db_url, tmp_path) as c:
        status, text = await _post(c, path, body)
        assert status == 400, text
        assert "\n" not in text.strip()
        answer = json.loads(text)
        if expected.startswith("body"):
            assert answer == {"error": expected}
        else:
            assert answer["error"] == "1 invalid record(s); nothing stored"
            assert len(answer["details"]) == 1 and answer["details"][0].startswith(expected)
        assert await _stored(c) == [0, 0, 0, 0]


async def test_what_the_rules_allow_is_stored(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        customers = [
            # One customer may come twice with the same contact (later attributes win).
            {"crm_id": "C1", "external_userid": "wm-1", "attributes": {"birthday": "1980-12-31", "aum": 1.5e6}},
            {"crm_id": "C1", "external_userid": "wm-1", "attributes": {"maturity_date": "2026-12-01 00:00:00"}},
            {"crm_id": "C2", "attributes": {"note": "2026-02-30 是笔误", "nested": {"a": json.loads(_nested(13))}}},
        ]
        status, text = await _post(c, CUSTOMERS, json.dumps({"customers": customers}, ensure_ascii=False).encode())
        assert status == 200, text
        events = [
            {**GOOD_EVENT, "payload": {"amount": "500000.00"}},  # a CSV cell: text that is a number
            _event("maturity", maturity_date="2026-12-01", product_name="稳享90天", amount=50000),
            {**_event("manager_change", new_manager="lina"), "event_id": "E2"},
        ]
        status, text = await _post(c, EVENTS, json.dumps({"events": events}, ensure_ascii=False).encode())
        assert status == 200 and json.loads(text)["new_events"] == 3, text
        async with c.s.runtime.sessions() as session:
            c1 = await session.get(CrmCustomer, "C1")
            assert c1 is not None and c1.attributes == {"birthday": "1980-12-31", "aum": 1.5e6,
                                                         "maturity_date": "2026-12-01 00:00:00"}
            assert (await session.get(Binding, "C1")) is not None


def test_the_kinds_accepted_are_the_kinds_the_reminders_act_on() -> None:
    # A kind accepted here but unknown to the reminder engine would be stored and do nothing;
    # interactions are the exception, they record contact (handlers.crm.handlers.on_interaction),
    # and so are conversions, which SOP goals count (handlers.console.effect).
    assert set(EVENT_KINDS) == set(CRM_KINDS) | INTERACTION_KINDS | CONVERSION_KINDS
    assert not INTERACTION_KINDS & set(CRM_KINDS) and not CONVERSION_KINDS & (set(CRM_KINDS) | INTERACTION_KINDS)
