"""``scrm radar stats [--material X] [--since DATE] [--by-step] [--json]`` on known sends and opens."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

import pytest

from handlers.radar.cli import cmd_radar
from handlers.radar.links import LinkMaker, record_send
from handlers.radar.models import RadarClick
from scrm.adapters.db.engine import make_engine, make_sessionmaker
from scrm.cli import UserError, _register_extras, build_parser
from scrm.kernel.config import Settings
from tests.conftest import make_settings


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (material, customer, occurrence, sent at UTC). 2026-11-20T17:00Z is already the 21st in Shanghai.
SENDS = [
    ("m-fund", "wmA", "sop:onboard:day3@2026-11-20", "2026-11-20T01:00"),
    ("m-fund", "wmB", "sop:onboard:day3@2026-11-21", "2026-11-20T17:00"),
    ("m-fund", None, "group:payroll@2026-11-21", "2026-11-21T01:00"),
    ("m-loan", "wmD", "sop:loan:day1@2026-11-22", "2026-11-22T01:00"),
]
# (material, opener, occurrence, opened at UTC); m-old was never sent (a forwarded old link).
CLICKS = [
    ("m-fund", "wmA", "sop:onboard:day3@2026-11-20", "2026-11-20T03:00"),
    ("m-fund", "wmA", "sop:onboard:day3@2026-11-20", "2026-11-21T02:00"),
    ("m-fund", None, "group:payroll@2026-11-21", "2026-11-21T05:00"),
    ("m-old", "wmE", None, "2026-11-22T06:00"),
]


async def _seed(settings: Settings) -> None:
    links = LinkMaker(settings)
    engine = make_engine(settings.database.url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for material, customer, occurrence, at in SENDS:
                link = links.make_link(material, "zhangwei", customer=customer, occurrence=occurrence)
                assert await record_send(session, links, link, _at(at))
                assert await record_send(session, links, link, _at(at))  # the same send again counts once
            assert not await record_send(session, links, "https://example.com/r/forged.token", _at(SENDS[0][3]))
            for material, opener, occurrence, at in CLICKS:
                session.add(RadarClick(token_id="t", material_id=material, sender="zhangwei",
                                       external_userid=opener, occurrence=occurrence, at=_at(at)))
    finally:
        await engine.dispose()


def _args(*argv: str) -> argparse.Namespace:
    _register_extras()
    return build_parser().parse_args(list(argv))


async def _stats(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> list[list[str]]:
    capsys.readouterr()
    assert await cmd_radar(_args("radar", "stats", *argv), settings) == 0
    return [line.split() for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
async def settings(db_url: str) -> Settings:
    s = make_settings(db_url, radar={"signing_key": "test-radar-key"})
    await _seed(s)
    return s


HEAD = ["material", "sends", "opens", "unique", "open_rate"]


async def test_stats_per_material(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _stats(settings, capsys) == [
        HEAD,
        ["m-fund", "3", "3", "1", "33.3%"],
        ["m-loan", "1", "0", "0", "0.0%"],
        ["m-old", "0", "1", "1", "-"],  # opens without a send: no rate rather than a division by zero
    ]
    assert await _stats(settings, capsys, "--material", "m-fund") == [HEAD, ["m-fund", "3", "3", "1", "33.3%"]]
    assert await _stats(settings, capsys, "--material", "m-none") == [HEAD]


async def test_stats_since_a_local_date_or_datetime(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    # 2026-11-21 starts at 2026-11-20T16:00Z in Asia/Shanghai: wmB's send (17:00Z) counts, wmA's does not.
    assert await _stats(settings, capsys, "--since", "2026-11-21") == [
        HEAD,
        ["m-fund", "2", "2", "1", "50.0%"],
        ["m-loan", "1", "0", "0", "0.0%"],
        ["m-old", "0", "1", "1", "-"],
    ]
    # A datetime without offset is local too: 2026-11-21T10:00 local = 02:00Z.
    assert await _stats(settings, capsys, "--since", "2026-11-21T10:00", "--material", "m-fund") == [
        HEAD, ["m-fund", "0", "2", "1", "-"]]
    assert await _stats(settings, capsys, "--since", "2026-11-21T01:30+00:00", "--material", "m-fund") == [
        HEAD, ["m-fund", "0", "2", "1", "-"]]
    with pytest.raises(UserError, match="--since 'last week'"):
        await cmd_radar(_args("radar", "stats", "--since", "last week"), settings)


async def test_stats_by_step_and_json(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _stats(settings, capsys, "--by-step", "--material", "m-fund") == [
        ["material", "step", "sends", "opens", "unique", "open_rate"],
        ["m-fund", "group:payroll", "1", "1", "0", "0.0%"],
        ["m-fund", "sop:onboard:day3", "2", "2", "1", "50.0%"],
    ]
    capsys.readouterr()
    assert await cmd_radar(_args("radar", "stats", "--json", "--material", "m-loan"), settings) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"material": "m-loan", "step": "", "sends": 1, "opens": 0, "unique_openers": 0, "open_rate": 0.0}]
