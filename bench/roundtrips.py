"""Round trips to PostgreSQL a request: ``bench.pageprofile`` with every socket write to the
database counted (asyncpg writes once a round trip: a query, a BEGIN, a ROLLBACK, a pre-ping).

    .venv/bin/python -m bench.roundtrips /sidebar/customer/wm00000300 --as m00300 [--times 20]

Takes ``bench.pageprofile``'s arguments and prints its report, then the round trips of each
measured request (the warm-up request left out), most frequent first. Counts writes of the
asyncio selector transport to port 5432, so it needs the default event loop (pageprofile's).
"""

from __future__ import annotations

import sys
from asyncio import selector_events
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # also runnable as `python bench/roundtrips.py`
    sys.path.insert(0, str(ROOT))

from bench import pageprofile

PG_PORT = 5432


def main(argv: Sequence[str] | None = None) -> int:
    from aiohttp.test_utils import TestClient

    writes = [0]
    per_request: list[tuple[str, int]] = []
    write = selector_events._SelectorSocketTransport.write
    get = TestClient.get

    def counted_write(self: Any, data: Any) -> None:
        peer = self.get_extra_info("peername")
        if peer and peer[1] == PG_PORT:
            writes[0] += 1
        write(self, data)

    async def counted_get(self: TestClient, path: str, *a: Any, **k: Any) -> Any:  # type: ignore[type-arg]
        before = writes[0]
        resp = await get(self, path, *a, **k)
        await resp.read()
        per_request.append((path, writes[0] - before))
        return resp

    selector_events._SelectorSocketTransport.write = counted_write  # type: ignore[method-assign]
    TestClient.get = counted_get  # type: ignore[method-assign]
    try:
        pageprofile.main(argv)
    finally:
        selector_events._SelectorSocketTransport.write = write  # type: ignore[method-assign]
        TestClient.get = get  # type: ignore[method-assign]
    for (path, trips), n in Counter(per_request[1:]).most_common():
        print(f"  {n:4d} requests of {path}: {trips} round trips each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
