"""The durable inbox: every inbound event is stored (deduplicated) before it is acknowledged,
then claimed by a worker, parsed into a typed event and fed to the dispatcher.

Internal events are stored as ``InternalEvent`` JSON and dispatched as the typed class of their
kind (``kinds``, filled from the composed features' ``events``); a kind nobody declares stays
an ``InternalEvent``. A row that is no event at all is dead-lettered at once; a payload that
does not fit its kind's class is that row's handler error (retried, then dead-lettered).

A handler's database writes, the outbox rows it adds and the row's ``done`` mark commit in one
transaction, so an event's effects happen exactly once even across crashes and replays. A
failing handler retries with exponential backoff; after ``max_attempts`` the row is dead-lettered
and waits for ``scrm inbox replay``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, and_, exists, func, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.events import EventHeader, XmlError, parse_event
from scrm.kernel.clock import Clock
from scrm.kernel.config import InboxSettings
from scrm.kernel.dispatch import Dispatcher
from scrm.kernel.events import AnyInternal, EventKinds, InternalEvent, stored_form
from scrm.kernel.group_commit import GroupCommitWriter
from scrm.kernel.leases import NOW, Claim, new_owner_id, update_leased
from scrm.kernel.logs import log_context
from scrm.kernel.models import INBOX_NORMAL, INBOX_URGENT, InboxEvent

log = logging.getLogger("scrm.kernel.inbox")

WECOM = "wecom"
# Internal events (scheduler steps, CRM changes, radar opens) are handled one after another, as
# before events ran concurrently: their handlers count against shared limits (cards per manager
# per day) that concurrent handling would overrun. WeCom events run concurrently beside them.
INTERNAL_ORDER = "internal"
# Order keys of group chat events (scrm.adapters.wecom.events): they wait for all earlier events.
CHAT_ORDER_PREFIX = "chat:"

# A stored row's times: when it arrived, and when it is first due (at once). The group-commit
# writer sets them to its batch's time; the rows handed to it leave them out.
_STAMPED = ("received_at", "next_attempt_at")

# Handler dependencies: a mapping, or a function building it per event (for hot-reloaded parts).
Context = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


class LeaseLost(Exception):
    """Another worker took the row over (our lease expired); our transaction is rolled back."""


async def until_woken(wake: asyncio.Event, running: Collection[asyncio.Task[Any]], idle_s: float) -> None:
    """A worker loop's wait: until ``wake`` is set, one of ``running`` ends, or ``idle_s``."""
    waker = asyncio.create_task(wake.wait())
    try:
        # asyncio.wait, not wait_for: on 3.11 wait_for returns normally when the cancellation of
        # a stop coincides with a wake-up, and the loop would go on.
        await asyncio.wait([waker, *running], timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waker.cancel()


def backoff_s(attempts: int, base: float, cap: float) -> float:
    return float(min(cap, base * (2 ** max(0, attempts - 1))))


@dataclass(frozen=True)
class ProcessOutcome:
    done: int = 0
    retried: int = 0
    dead: int = 0

    @property
    def total(self) -> int:
        return self.done + self.retried + self.dead


# ``'pending'`` written into the SQL, not bound: a partial index (``WHERE status = 'pending'``)
# is usable only when the query names its condition, and the claim walks ix_inbox_claim.
PENDING: ColumnClause[str] = literal_column("'pending'")


def _due() -> ColumnElement[bool]:
    earlier = aliased(InboxEvent)
    # A customer's or a chat's event is claimable only as the oldest pending one of its key,
    # on every instance at once: events of one key never run side by side anywhere, and an
    # urgent one (a welcome code) overtakes the backlog but never its customer's earlier event
    # (a re-add must not be handled before the delete that preceded it).
    blocked = exists().where(earlier.order_key == InboxEvent.order_key, earlier.status == PENDING,
                             earlier.id < InboxEvent.id)
    return and_(InboxEvent.status == PENDING, InboxEvent.next_attempt_at <= NOW,
                or_(InboxEvent.order_key.in_(("", INTERNAL_ORDER)), ~blocked))


class Inbox:
    """Store, claim and process inbound events."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        settings: InboxSettings,
        clock: Clock,
        *,
        kinds: EventKinds | None = None,
        owner: str | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        # Kind → typed class of the internal events this service's features declare.
        self.kinds = kinds if kinds is not None else EventKinds()
        self.owner = owner or new_owner_id("inbox")  # the instance id (scrm.kernel.liveness)
        self._wake = asyncio.Event()
        self._claim_due = Claim(InboxEvent, _due(), ["priority", "id"], sqlite_index="ix_inbox_claim")
        self.after_commit: list[Callable[[], None]] = []
        self.writer = GroupCommitWriter(
            engine,
            table_of(InboxEvent),
            "dedup_key",
            max_batch=settings.writer_max_batch,
            max_delay_s=settings.writer_max_delay_s,
            on_commit=self.wake,
            stamp=clock.now,
            stamped=_STAMPED,
        )

    # ---------------------------------------------------------------- storing
    def wake(self) -> None:
        self._wake.set()

    @staticmethod
    def _row(source: str, dedup_key: str, raw: str, msg_type: str, event: str,
             change_type: str, *, order_key: str = "", urgent: bool = False) -> dict[str, Any]:
        """A row for the writer, which sets its ``_STAMPED`` times once a batch."""
        return {
            "dedup_key": dedup_key,
            "source": source,
            "raw": raw,
            "msg_type": msg_type[:64],
            "event": event[:64],
            "change_type": change_type[:64],
            "status": "pending",
            "attempts": 0,
            "priority": INBOX_URGENT if urgent else INBOX_NORMAL,
            "order_key": order_key,
        }

    def _stamped(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with its times, for an insert that does not go through the writer."""
        now = self.clock.now()
        return {**row, **dict.fromkeys(_STAMPED, now)}

    def put_wecom(self, raw_xml: str, header: EventHeader) -> asyncio.Future[bool]:
        """Store a verified, decrypted callback; awaited, True when new, False for a duplicate delivery.

        Resolves only after the row has committed (group commit), so acknowledging is safe. A
        future, not a coroutine: the callback awaits the writer's future itself.
        """
        row = self._row(WECOM, header.dedup_key, raw_xml, header.msg_type, header.event, header.change_type,
                        order_key=header.order_key, urgent=header.urgent)
        return self.writer.submit(row)

    @classmethod
    def _internal_row(cls, event: AnyInternal, dedup_key: str) -> dict[str, Any]:
        stored = stored_form(event)
        return cls._row(stored.source, f"{stored.source}:{dedup_key}", stored.model_dump_json(), "internal",
                        stored.kind, "", order_key=INTERNAL_ORDER)

    async def add_internal(self, session: AsyncSession, event: AnyInternal, dedup_key: str) -> None:
        """Add an internal event (typed, or untyped) inside the caller's transaction (scheduler, CRM, radar)."""
        row = self._stamped(self._internal_row(event, dedup_key))
        await session.execute(insert_ignore(dialect_of(session), table_of(InboxEvent), ["dedup_key"]), row)

    async def add_internals(self, session: AsyncSession, events: Sequence[tuple[AnyInternal, str]]) -> None:
        """:meth:`add_internal` for many events in one statement (a nightly chunk's thousands)."""
        if events:
            times = dict.fromkeys(_STAMPED, self.clock.now())
            await session.execute(insert_ignore(dialect_of(session), table_of(InboxEvent), ["dedup_key"]),
                                  [{**self._internal_row(event, key), **times} for event, key in events])

    async def put_internal(self, event: AnyInternal, dedup_key: str) -> bool:
        """Store an internal event on its own through the group-commit writer."""
        return await self.writer.put(self._internal_row(event, dedup_key))

    def offer_internal_json(self, source: str, kind: str, dedup_key: str, raw_json: str, *, limit: int) -> bool:
        """Queue an internal event, already serialised as ``InternalEvent`` JSON, without waiting
        for its commit (see ``GroupCommitWriter.offer``); False when the writer refused it."""
        row = self._row(source, f"{source}:{dedup_key}", raw_json, "internal", kind, "", order_key=INTERNAL_ORDER)
        return self.writer.offer(row, limit=limit)

    # ---------------------------------------------------------------- processing
    def parse(self, row: Mapping[str, Any]) -> Any:
        """The stored event: a WeCom event, or an internal one as stored (untyped)."""
        if row["source"] == WECOM:
            return parse_event(row["raw"])
        return InternalEvent.model_validate_json(row["raw"])

    def typed(self, event: Any) -> Any:
        """An internal event as the class of its kind (``EventPayloadError`` when it does not fit)."""
        return self.kinds.typed(event) if isinstance(event, InternalEvent) else event

    async def _claim(self, limit: int) -> list[Mapping[str, Any]]:
        now = self.clock.now()
        async with self.engine.begin() as conn:
            return await self._claim_due(conn, now=now, lease_s=self.settings.lease_s, owner=self.owner, limit=limit)

    def _launch(self, rows: list[Mapping[str, Any]], dispatcher: Dispatcher, context: Context,
                tails: dict[str, asyncio.Task[str]], slots: asyncio.Semaphore,
                running: set[asyncio.Task[str]]) -> list[asyncio.Task[str]]:
        """One task per row. A row waits for the previous row of its order key (``tails``); a
        group chat's event waits for every earlier one (``running``), because it may name
        customers whose own events (their add) came just before it."""
        tasks: list[asyncio.Task[str]] = []
        for row in rows:
            key = row["order_key"]
            if key.startswith(CHAT_ORDER_PREFIX):
                before = [*running, *tasks]
            else:
                tail = tails.get(key) if key else None
                before = [tail] if tail is not None else []
            task = asyncio.create_task(self._after(before, row, dispatcher, context, slots))
            if key:
                tails[key] = task
                task.add_done_callback(functools.partial(_forget_tail, tails, key))
            tasks.append(task)
        return tasks

    async def _after(self, before: list[asyncio.Task[str]], row: Mapping[str, Any], dispatcher: Dispatcher,
                     context: Context, slots: asyncio.Semaphore) -> str:
        if before:
            await asyncio.wait(before)  # their outcomes are their own; only their end matters here
        async with slots:
            outcome = await self._process_row(row, dispatcher, context)
        if outcome == "done":
            # Per event, not per batch: a welcome queued by this event (its code lives 20 s)
            # must not wait for other events before the outbox wakes.
            for hook in self.after_commit:
                hook()
        return outcome

    async def process_due(self, dispatcher: Dispatcher, context: Context) -> ProcessOutcome:
        """Claim one batch of due rows and process them: concurrently (``concurrency`` at a time),
        in arrival order within one order key (a customer, a group chat)."""
        rows = await self._claim(self.settings.batch_size)
        if not rows:
            return ProcessOutcome()
        outcomes = await asyncio.gather(*self._launch(rows, dispatcher, context, {},
                                                      asyncio.Semaphore(self.settings.concurrency), set()))
        return ProcessOutcome(outcomes.count("done"), outcomes.count("retry"), outcomes.count("dead"))

    async def _process_row(self, row: Mapping[str, Any], dispatcher: Dispatcher, context: Context) -> str:
        with log_context(inbox_id=row["id"], dedup_key=row["dedup_key"], event=row["event"],
                         change_type=row["change_type"]):
            try:
                event = self.parse(row)
            except (XmlError, ValueError) as exc:
                # A stored event that no longer parses will not parse on retry either.
                log.error("inbox event unparseable, dead-lettered", extra={"error": str(exc)})
                await self._fail(row, f"unparseable: {exc}", dead=True)
                return "dead"
            try:
                event = self.typed(event)
                async with self.sessions() as session, session.begin():
                    ctx = dict(context() if callable(context) else context)
                    ctx.update(session=session, inbox_id=row["id"], received_at=row["received_at"])
                    ran = await dispatcher.feed(event, ctx)
                    result = await session.execute(update_leased(table_of(InboxEvent)), {
                        "_id": row["id"], "_owner": self.owner, "status": "done", "done_at": self.clock.now(),
                        "attempts": row["attempts"] + 1, "locked_until": None, "lease_owner": None,
                        "last_error": None})
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        raise LeaseLost(f"lease on inbox row {row['id']} lost")
            except LeaseLost:
                log.warning("inbox lease lost; another worker owns the row now")
                return "lost"
            except Exception as exc:
                attempts = row["attempts"] + 1
                is_dead = attempts >= self.settings.max_attempts
                log.exception("handler failed" + (", dead-lettered" if is_dead else ", will retry"),
                              extra={"attempts": attempts})
                await self._fail(row, f"{type(exc).__name__}: {exc}", dead=is_dead)
                return "dead" if is_dead else "retry"
            log.info("event processed", extra={"kind": getattr(event, "kind", "?"), "handlers": ran})
            return "done"

    async def _fail(self, row: Mapping[str, Any], error: str, *, dead: bool) -> None:
        attempts = row["attempts"] + 1
        delay = backoff_s(attempts, self.settings.backoff_base_s, self.settings.backoff_max_s)
        async with self.engine.begin() as conn:
            await conn.execute(update_leased(table_of(InboxEvent)), {
                "_id": row["id"], "_owner": self.owner, "status": "dead" if dead else "pending",
                "attempts": attempts, "next_attempt_at": self.clock.now() + timedelta(seconds=delay),
                "locked_until": None, "lease_owner": None, "last_error": error[:2000]})

    async def run(self, dispatcher: Dispatcher, context: Context, *, idle_s: float = 1.0) -> None:
        """Worker loop: keep up to ``concurrency`` events in flight, claiming more as slots free
        (a slow WeCom call holds one slot, not the batch); wait for a wake-up or ``idle_s``."""
        limit = self.settings.concurrency
        slots = asyncio.Semaphore(limit)
        tails: dict[str, asyncio.Task[str]] = {}
        running: set[asyncio.Task[str]] = set()
        try:
            while True:
                self._wake.clear()
                rows: list[Mapping[str, Any]] = []
                if len(running) < limit:
                    try:
                        rows = await self._claim(min(self.settings.batch_size, limit - len(running)))
                    except Exception:
                        log.exception("inbox worker iteration failed; continuing")
                        await asyncio.sleep(idle_s)
                for task in self._launch(rows, dispatcher, context, tails, slots, running):
                    running.add(task)
                    task.add_done_callback(running.discard)
                if rows and len(running) < limit:
                    continue
                await until_woken(self._wake, running, idle_s)
        finally:
            for task in running:
                task.cancel()

    # ---------------------------------------------------------------- operators
    async def counts(self) -> dict[str, int]:
        async with self.sessions() as s:
            res = await s.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status))
            return {status: n for status, n in res.all()}

    async def replay(self, ids: list[int] | None = None, *, dead_only: bool = True) -> int:
        """Put dead (or, with ``dead_only=False``, any) rows back to pending; returns how many."""
        stmt = update(InboxEvent).values(status="pending", attempts=0, next_attempt_at=self.clock.now(),
                                         locked_until=None, lease_owner=None)
        if ids:
            stmt = stmt.where(InboxEvent.id.in_(ids))
        if dead_only:
            stmt = stmt.where(InboxEvent.status == "dead")
        async with self.engine.begin() as conn:
            res = await conn.execute(stmt)
        self.wake()
        return int(res.rowcount)


def _forget_tail(tails: dict[str, asyncio.Task[str]], key: str, task: asyncio.Task[str]) -> None:
    if tails.get(key) is task:
        del tails[key]


def summarize(row: InboxEvent) -> dict[str, Any]:
    """An inbox row for people (CLI output), without the raw payload."""
    return {
        "id": row.id,
        "status": row.status,
        "source": row.source,
        "type": "/".join(x for x in (row.msg_type, row.event, row.change_type) if x),
        "received_at": _iso(row.received_at),
        "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at),
        "last_error": row.last_error,
        "dedup_key": row.dedup_key,
    }


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d else None


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)
