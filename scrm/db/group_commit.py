"""Group-commit writer: many concurrent inserts, one transaction per batch.

Each caller awaits its own future, which resolves only after the batch holding its row has
committed, so an HTTP handler can acknowledge "durable" without paying one fsync per request.
Measured on SQLite (2 cores): one commit per request ≈ 970 req/s, p99 551 ms; group commit
≈ 9,000 req/s, p99 18 ms (ARCHITECTURE.md §3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from scrm.db.engine import insert_ignore_many

log = logging.getLogger("scrm.db.group_commit")

_Item = tuple[Mapping[str, Any], "asyncio.Future[bool]"]


class WriterClosed(RuntimeError):
    """The writer was stopped; the row was not stored."""


class GroupCommitWriter:
    """Batches ``INSERT ... ON CONFLICT DO NOTHING`` of rows into one table.

    ``put`` resolves to True when the row was new and False when its unique key already
    existed (a duplicate delivery). ``on_commit`` runs after every successful batch (the inbox
    uses it to wake its worker without polling).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        unique_column: str,
        *,
        max_batch: int = 512,
        max_delay_s: float = 0.002,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._table = table
        self._unique = unique_column
        self._max_batch = max_batch
        self._max_delay = max_delay_s
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._stmt: Insert | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"group-commit:{self._table.name}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def put(self, row: Mapping[str, Any]) -> bool:
        if self._closed:
            raise WriterClosed("writer is stopped")
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, fut))
        return await fut

    async def stop(self) -> None:
        """Flush what is queued, then stop."""
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch: list[_Item] = [first]
            # Let concurrent requests join this batch: everything already queued, and for a
            # short while more, but never beyond max_batch.
            deadline = asyncio.get_running_loop().time() + self._max_delay
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._flush(batch)
        # Fail whatever arrived after the stop sentinel rather than leave callers hanging.
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and not item[1].done():
                item[1].set_exception(WriterClosed("writer is stopped"))

    async def _flush(self, batch: Sequence[_Item]) -> None:
        rows = [row for row, _ in batch]
        try:
            inserted = await self._insert(rows)
        except Exception as exc:  # the database is down or the batch is bad: tell every caller
            log.error("group commit failed", extra={"table": self._table.name, "rows": len(rows), "error": str(exc)})
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        seen: set[Any] = set()
        for row, fut in batch:
            key = row[self._unique]
            # Within one batch only the first of several equal keys counts as new.
            is_new = key in inserted and key not in seen
            seen.add(key)
            if not fut.done():
                fut.set_result(is_new)
        if self._on_commit is not None:
            self._on_commit()

    async def _insert(self, rows: list[Mapping[str, Any]]) -> set[Any]:
        async with self._engine.begin() as conn:
            if self._stmt is None:
                self._stmt = insert_ignore_many(conn.dialect.name, self._table, [self._unique]).returning(
                    self._table.c[self._unique])
            result = await conn.execute(self._stmt, rows)
            return {r[0] for r in result}
