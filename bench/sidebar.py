"""Sidebar bench: the chat toolbar's panels on the 1,000,000-customer data set (``bench._million``), on PostgreSQL.

    .venv/bin/python -m bench.sidebar                 # generate 1,000,000 customers, then measure
    .venv/bin/python -m bench.sidebar --reuse         # on the data set already there (e.g. after bench.console)

``--users`` client managers (20) are signed in to the sidebar at once (a ``console_session`` row
under the sidebar's cookie each, what the OAuth sign-in leaves) and each opens, ``--rounds``
times, a different one of their own customers — the 1:1 panel (``/sidebar/customer/{id}``, the
HTML the toolbar loads in one round trip) and its JSON (``/sidebar/data/customer/{id}``) — and
one of the groups they own (``/sidebar/group/{chat}``), in a shuffled order, beside the same
baseline route as ``bench.console`` (a bare handler running ``SELECT 1``). Goal: p95 < 300 ms
per panel. The service, the sessions, the load and the figures printed (RSS, CPU of the
service, this process, PostgreSQL and the rest of the machine, load average) are
``bench.console``'s.

Exit status 0 whatever the figures; non-zero only when a request failed or a process crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/sidebar.py`
    sys.path.insert(0, str(ROOT))

from bench import _million as million
from bench.console import (
    PAGE_HEAD,
    Machine,
    Person,
    Request,
    access_file,
    add_args,
    drive,
    page_rows,
    print_run_footer,
    serving,
    shuffled_rounds,
    sign_in,
    table,
)

ORDER = ("1:1 panel", "1:1 data", "group panel", "baseline")


def sidebar_people(shape: million.Shape, users: int) -> list[Person]:
    """The highest-numbered managers (the leads are the first of each team: these are mostly not)."""
    if users > shape.managers:
        raise SystemExit(f"--users at most {shape.managers} (the managers of {shape.customers:,} customers)")
    return [Person(million.manager_id(i), f"经理{i}", "") for i in range(shape.managers, shape.managers - users, -1)]


async def own_chats(db_url: str, people: Sequence[Person], rounds: int) -> dict[str, tuple[list[str], list[str]]]:
    """userid → (``rounds`` customers they follow, up to ``rounds`` groups they own)."""
    from sqlalchemy import text

    from scrm.adapters.db.engine import make_engine

    engine = make_engine(db_url)
    out = {}
    try:
        async with engine.connect() as conn:
            for p in people:
                customers = (await conn.scalars(text(
                    "SELECT external_userid FROM follow WHERE userid = :u AND status = 'active' "
                    "ORDER BY external_userid LIMIT :n"), {"u": p.userid, "n": rounds})).all()
                groups = (await conn.scalars(text(
                    "SELECT chat_id FROM group_chat WHERE owner = :u AND status = 'active' ORDER BY chat_id LIMIT :n"),
                    {"u": p.userid, "n": rounds})).all()
                out[p.userid] = (list(customers), list(groups))
    finally:
        await engine.dispose()
    return out


async def measure(db_url: str, customers: int, users: int, rounds: int) -> dict[str, Any]:
    people = sidebar_people(million.Shape(customers), users)
    chats = await own_chats(db_url, people, rounds)
    cookies = await sign_in(db_url, people, "sidebar")
    rng = random.Random(7)
    plans: dict[str, tuple[str, list[Request]]] = {}
    for p in people:
        mine, groups = chats[p.userid]
        requests: list[Request] = []
        for i, ext in enumerate(mine):
            one: list[Request] = [("1:1 panel", f"/sidebar/customer/{ext}"),
                                  ("1:1 data", f"/sidebar/data/customer/{ext}")]
            if i < len(groups):
                one.append(("group panel", f"/sidebar/group/{groups[i]}"))
            requests += shuffled_rounds(one, 1, rng)
        plans[p.userid] = (cookies[p.userid], requests)
    with serving(db_url, access_file([])) as svc, Machine(svc.pids) as machine:
        tally = await drive(svc.base, plans)
    return {"tally": tally, "machine": machine, "service": svc,
            "without_groups": sum(1 for _m, g in chats.values() if not g)}


def report(out: dict[str, Any], how: str, gen_s: float | None, customers: int, users: int, rounds: int) -> int:
    tally, svc = out["tally"], out["service"]
    print(f"sidebar bench: {customers:,} customers (data set {how}" + (f" in {gen_s:.0f} s" if gen_s is not None
                                                                         else "")
          + f"), {users} managers at once × {rounds} customers each, PostgreSQL")
    table(page_rows(tally, ORDER), PAGE_HEAD)
    if out["without_groups"]:
        print(f"  note: {out['without_groups']} of the managers own no group (a small data set): no group panel")
    return 1 if print_run_footer(svc, out["machine"], tally) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_args(parser)
    parser.add_argument("--users", type=int, default=20, help="managers signed in at once")
    a = parser.parse_args(argv)
    how, gen_s = asyncio.run(million.ready(a.db, a.customers, reuse=a.reuse))
    out = asyncio.run(measure(a.db, a.customers, a.users, a.rounds))
    return report(out, how, gen_s, a.customers, a.users, a.rounds)


if __name__ == "__main__":
    raise SystemExit(main())
