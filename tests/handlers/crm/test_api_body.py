"""The push API reads the whole body, however the client sends it, up to its limit.

Real HTTP: the test client streams the body as a chunked async generator of small pieces, so
the server sees it arrive in many reads (a body of a few hundred KB already does).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from handlers.crm import auth
from handlers.crm.http import MAX_BODY
from handlers.crm.models import CrmCustomer
from tests.handlers.crm.receiver import SECRET, CrmStack, crm_stack

PIECE = 4096


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(body), PIECE):
        yield body[i:i + PIECE]


async def _post_chunked(c: CrmStack, path: str, body: bytes) -> tuple[int, str]:
    stamp = int(c.s.clock.now().timestamp())
    headers = auth.headers(SECRET, stamp, body)
    resp = await c.s.client.post(path, data=_pieces(body), headers=headers)
    return resp.status, await resp.text()


def _customers(n: int, note_len: int) -> dict[str, Any]:
    return {"customers": [{"crm_id": f"C{i:05d}", "attributes": {"tier": "V1", "note": "备" * note_len}}
                          for i in range(n)]}


async def _stored(c: CrmStack) -> int:
    async with c.s.runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CrmCustomer)) or 0)


async def test_multi_megabyte_batch_sent_in_small_chunks_is_read_whole(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        body = json.dumps(_customers(2000, 500), ensure_ascii=False).encode()
        assert 2 * 2**20 < len(body) < MAX_BODY
        status, text = await _post_chunked(c, "/crm/v1/customers:batchUpsert", body)
        assert status == 200, text
        assert json.loads(text)["accepted"] == 2000
        assert await _stored(c) == 2000


async def test_a_body_past_the_limit_is_413_and_nothing_is_stored(db_url: str, tmp_path: Path) -> None:
    async with crm_stack(db_url, tmp_path) as c:
        data = _customers(2, 10)
        data["customers"][0]["attributes"]["note"] = "x" * MAX_BODY  # correctly signed, just too big
        body = json.dumps(data).encode()
        # Chunked: no Content-Length, the server finds out while reading.
        status, text = await _post_chunked(c, "/crm/v1/customers:batchUpsert", body)
        assert status == 413 and text.count("\n") == 0
        assert json.loads(text) == {"error": f"body larger than {MAX_BODY} bytes; send smaller batches"}
        # With a Content-Length, the server refuses before reading a byte.
        stamp = int(c.s.clock.now().timestamp())
        resp = await c.s.client.post("/crm/v1/customers:batchUpsert", data=body,
                                     headers=auth.headers(SECRET, stamp, body))
        assert resp.status == 413 and "send smaller batches" in (await resp.json())["error"]
        assert await _stored(c) == 0
        # Exactly at the limit is still read (and judged on its content).
        at_limit = body[:MAX_BODY]
        status, text = await _post_chunked(c, "/crm/v1/customers:batchUpsert", at_limit)
        assert status == 400 and "not JSON" in json.loads(text)["error"]
