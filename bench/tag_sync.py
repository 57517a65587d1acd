"""Tag sync bench: N customers, ~3 CRM tag changes each, against the sandbox on loopback.

    .venv/bin/python -m bench.tag_sync --customers 2000 --limit 60000

Seeds the sandbox and the database directly (bulk inserts), plans the sync (scrm.crm.runner)
and sends the outbox with the real rate-limited WeComClient until every mark_tag is sent.
Prints wall time, the ratio to the limit-bound minimum (calls / limit-per-second; goal <= 1.1),
how many calls the sandbox refused with 45009 (goal 0) and the peak RSS (goal < 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp.test_utils import TestServer

from scrm.clock import SystemClock
from scrm.config import OutboxSettings, WeComSettings
from scrm.crm.runner import run_sync
from scrm.db import migrate
from scrm.db.engine import make_engine, make_sessionmaker
from scrm.db.models import Binding, CrmCustomer, Follow, FollowTag
from scrm.outbox import Outbox
from scrm.sandbox import SANDBOX_AGENT_ID, SANDBOX_CORP_ID, SANDBOX_SECRET
from scrm.sandbox.server import SandboxServer
from scrm.sandbox.state import SandboxState
from scrm.sop.models import TagsFile
from scrm.wecom.api import WeComClient
from scrm.wecom.token import MemoryTokenStore

TAGS = TagsFile.model_validate({"groups": {
    "客户等级": {"owner": "crm", "from": "crm.tier", "map": {"V1": "V1", "V2": "V2", "V3": "V3"}},
    "产品持有": {"owner": "crm", "from": "crm.products", "map": {"payroll": "代发", "wealth": "理财"}},
    "兴趣": {"owner": "manager", "tags": ["理财"]},
}}).groups
CHUNK = 2000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _unfinished(outbox: Outbox) -> int:
    counts = await outbox.counts()
    return counts.get("pending", 0) + counts.get("sending", 0)


async def main(n: int, limit: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    clock = SystemClock()
    state = SandboxState()
    state.add_member("m1", "经理")
    ids: dict[str, str] = {}
    for gname, tags in (("客户等级", ["V1", "V2", "V3"]), ("产品持有", ["代发", "理财"]), ("兴趣", ["理财"])):
        g = state.new_tag_group(gname, 0)
        for t in tags:
            ids[f"{gname}/{t}"] = state.new_tag(g, t, 0).id
    refused = [0]
    server = SandboxServer(state, clock, per_api_per_minute=limit)
    allow = server.limiter.allow

    def counting(path: str, now: float) -> bool:
        ok = allow(path, now)
        refused[0] += not ok
        return ok

    server.limiter.allow = counting  # type: ignore[method-assign]
    http = TestServer(server.app)
    await http.start_server()
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(UTC)
    start_tags = [ids["客户等级/V1"], ids["兴趣/理财"]]
    for lo in range(0, n, CHUNK):  # seed in chunks: memory stays flat
        follows, tags, crm, binds = [], [], [], []
        for i in range(lo, min(n, lo + CHUNK)):
            ext = f"wmbench{i:07d}"
            state.add_customer(f"c{i}", external_userid=ext)
            state.add_follow("m1", ext, 0, tag_ids=start_tags)
            follows.append({"userid": "m1", "external_userid": ext, "created_at": now, "status": "active"})
            tags += [{"userid": "m1", "external_userid": ext, "tag_id": t, "added_at": now} for t in start_tags]
            # V1 → V2 (remove + add) and one product: three tag changes in one mark_tag.
            crm.append({"crm_id": f"B{i}", "attributes": {"tier": "V2", "products": ["payroll"]}, "updated_at": now})
            binds.append({"crm_id": f"B{i}", "external_userid": ext, "source": "direct", "bound_at": now})
        async with sessions() as s, s.begin():
            for model, rows in ((Follow, follows), (FollowTag, tags), (CrmCustomer, crm), (Binding, binds)):
                await s.execute(model.__table__.insert(), rows)  # type: ignore[attr-defined]
    settings = WeComSettings(corp_id=SANDBOX_CORP_ID, secret=SANDBOX_SECRET,  # type: ignore[arg-type]
                             agent_id=SANDBOX_AGENT_ID, api_base=str(http.make_url("")).rstrip("/"),
                             per_api_per_minute=limit)
    wecom = WeComClient(settings, token_store=MemoryTokenStore(clock), clock=clock)
    outbox = Outbox(engine, sessions, OutboxSettings(batch_size=200, concurrency=32), clock, wecom)
    # Prime the catalog mirror from the sandbox (the service keeps it in step in production).
    from scrm import tagcatalog

    async with sessions() as s, s.begin():
        await tagcatalog.refresh(s, wecom)
    print(f"seeded {n:,} customers; rss {_rss_mb():.0f} MB", file=sys.stderr)
    t0 = time.monotonic()
    report, _ = await run_sync(sessions, outbox, wecom, TAGS, clock, "bench", chunk=CHUNK)
    planned = time.monotonic() - t0
    workers = [asyncio.create_task(outbox.run(idle_s=0.05)) for _ in range(2)]
    while True:  # the state lives in the database: poll it
        if not await _unfinished(outbox):
            break
        await asyncio.sleep(0.2)
    wall = time.monotonic() - t0
    for w in workers:
        w.cancel()
    calls = len(state.received_calls("externalcontact/mark_tag"))
    minimum = calls / (limit / 60)
    print(f"customers {n:,}  mark_tag calls {calls:,} (planned {report.calls:,}, plan {planned:.1f} s)")
    print(f"wall {wall:.1f} s  limit-bound minimum {minimum:.1f} s  ratio {wall / minimum:.2f}  "
          f"45009 {refused[0]}  peak RSS {_rss_mb():.0f} MB  outbox {await outbox.counts()}")
    await wecom.close()
    await http.close()
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--limit", type=int, default=60000, help="mark_tag calls per minute (sandbox and client)")
    args = parser.parse_args()
    asyncio.run(main(args.customers, args.limit))
