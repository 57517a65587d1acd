"""The durable outbox: every side effect on WeCom (or the CRM) is a row, sent at most once.

Handlers add rows in the same transaction as the state change that caused them, each with an
idempotency key (``welcome:{code}``, ``sop:{sop}:{step}:{target}:{occurrence}``); a duplicate
key is silently ignored, so replays add nothing. Workers send due rows:

    pending → sending → sent | failed | unknown      (and cancelled, by an operator)
    pending → merged                                 (carried by an earlier notice to the same member)

A call that may have taken effect (timeout or connection dropped after the request went out)
is never blindly re-sent. What happens instead depends on the action (a table, see
``ACTION_SEMANTICS``): retried where WeCom itself deduplicates (welcome codes are single-use,
message/send has ``enable_duplicate_check``, tagging is idempotent), reconciled from WeCom where
it can be (mass-send tasks: get_groupmsg_list_v2 + get_groupmsg_task), and otherwise left
``unknown`` for an operator (``scrm outbox show/retry/cancel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import ColumnElement, and_, bindparam, func, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.wecom.errors import (
    AmbiguousCallError,
    ErrCode,
    LocalRateLimitError,
    WeComClientError,
    WeComError,
)
from scrm.kernel.clock import Clock
from scrm.kernel.config import OutboxSettings
from scrm.kernel.inbox import backoff_s, until_woken
from scrm.kernel.leases import NOW, Claim, new_owner_id, update_leased
from scrm.kernel.logs import log_context
from scrm.kernel.models import OUTBOX_UNFINISHED, OutboxAction

log = logging.getLogger("scrm.kernel.outbox")

PRIORITY_WELCOME = 0
PRIORITY_INTERACTIVE = 10  # manager-facing cards and alerts
PRIORITY_DEFAULT = 100
PRIORITY_BULK = 200  # tag sync, reconciliation work

# message/send deduplicates identical messages for up to 4 hours (WeCom maximum).
APP_MSG_DUPLICATE_WINDOW_S = 4 * 3600

Ambiguity = Literal["retry", "reconcile", "manual"]


class WeComCaller(Protocol):
    async def call(self, api: str, body: dict[str, Any] | None = None, *, method: str = "POST",
                   params: dict[str, Any] | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Semantics:
    """How one API behaves when a call may have taken effect, and which errcodes mean 'done'."""

    on_ambiguous: Ambiguity
    done_errcodes: frozenset[int] = frozenset()


# The unknown case is handled: an API not named here is "manual" (never re-sent blindly).
ACTION_SEMANTICS: Mapping[str, Semantics] = {
    # Single-use code: a repeat after success answers 41051 "already delivered".
    "externalcontact/send_welcome_msg": Semantics("retry", frozenset({ErrCode.WELCOME_CODE_USED})),
    "externalcontact/groupchat/send_welcome_msg": Semantics("retry", frozenset({ErrCode.WELCOME_CODE_USED})),
    # enable_duplicate_check makes WeCom drop a repeat within the interval (we set 4 h).
    "message/send": Semantics("retry"),
    "externalcontact/add_msg_template": Semantics("reconcile"),
    # No idempotency key, and nothing to find a lost job by: get_moment_list lists moments only
    # once published and matches them by text at best, so a second call would post a second
    # moment to every sender. A lost reply stays "unknown" for an operator (check 客户朋友圈).
    "externalcontact/add_moment_task": Semantics("manual"),
    # Idempotent by nature: setting the same state twice is the same state.
    # Idempotent, but a repeat is still a second call: read the follow's tags first.
    "externalcontact/mark_tag": Semantics("reconcile"),
    "externalcontact/remark": Semantics("retry"),
    "externalcontact/edit_corp_tag": Semantics("retry"),
    "externalcontact/del_corp_tag": Semantics("retry", frozenset({ErrCode.INVALID_TAG_ID})),
    "externalcontact/add_corp_tag": Semantics("retry"),  # same names are deduplicated by WeCom
    "externalcontact/update_contact_way": Semantics("retry"),
    "externalcontact/del_contact_way": Semantics("retry"),
    "externalcontact/groupchat/update_join_way": Semantics("retry"),
    "externalcontact/groupchat/del_join_way": Semantics("retry"),
    "externalcontact/cancel_groupmsg_send": Semantics("retry"),
    "externalcontact/remind_groupmsg_send": Semantics("retry"),
    "message/update_template_card": Semantics("retry"),
}
MANUAL = Semantics("manual")


def semantics_for(api: str) -> Semantics:
    return ACTION_SEMANTICS.get(api, MANUAL)


@dataclass(frozen=True)
class Outcome:
    status: Literal["sent", "failed", "pending", "unknown"]
    result: dict[str, Any] | None = None
    error: str | None = None
    delay_s: float = 0.0
    count_attempt: bool = True


# An executor performs one action kind; WeCom calls use the built-in "wecom" kind, other
# integrations (the CRM webhook) register their own.
Executor = Callable[["Outbox", Mapping[str, Any]], Awaitable[Outcome]]
Reconciler = Callable[["Outbox", Mapping[str, Any]], Awaitable[Outcome]]
# A preparer completes a body just before its call (per api): e.g. media ids, which live 3 days
# in WeCom and so cannot be fetched when a mass send is queued. Raises PrepareError.
Preparer = Callable[["Outbox", dict[str, Any]], Awaitable[dict[str, Any]]]
# A refresher repairs a body WeCom refused for a reason that a second try can fix at once (a
# cached media id WeCom no longer knows): given the queued body and the error, it returns the
# body to send once more, or None. The repeat happens inside the same attempt, so a welcome
# still makes its 20-second window.
Refresher = Callable[["Outbox", dict[str, Any], WeComError], Awaitable[dict[str, Any] | None]]


# A failure hook runs when an action of its api ends ``failed``, in the transaction that records
# the failure (so what it queues, e.g. "greet this customer yourself", exists exactly once).
FailureHook = Callable[["Outbox", AsyncSession, Mapping[str, Any], str], Awaitable[None]]
# Runs in the transaction that records actions ``sent`` (by WeCom's answer, or by an operator
# who checked WeCom): what must exist exactly when a message is known to have gone out (the
# compliance trail) is written with that fact, never before and never without it. It gets every
# action of its api recorded ``sent`` in that transaction, each with its ``sent_at``, in the
# order their outcomes arrived: a group commit of k welcomes costs the hook one batch, not k.
SentHook = Callable[[AsyncSession | AsyncConnection, Sequence[tuple[Mapping[str, Any], datetime]]], Awaitable[None]]

# result["maybe_sent"]: an earlier attempt of this action may have reached WeCom.
MAYBE_SENT = "maybe_sent"


def maybe_sent(row: Mapping[str, Any]) -> bool:
    """An earlier attempt of this action may have reached WeCom (a crash or a lost reply)."""
    return row["status"] in ("sending", "unknown") or bool((row["result"] or {}).get(MAYBE_SENT))


class PrepareError(Exception):
    """A body cannot be completed for sending; ``retry`` says whether trying later may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class QueuedCall:
    """One WeCom call for :meth:`Outbox.add_many`."""

    key: str
    api: str
    body: Mapping[str, Any]
    priority: int = PRIORITY_DEFAULT
    lane: str | None = None
    not_after: datetime | None = None
    about: Mapping[str, Any] | None = None  # as for :meth:`Outbox.add`


def _wecom_payload(api: str, body: Mapping[str, Any], about: Mapping[str, Any] | None, *,
                   method: str = "POST") -> dict[str, Any]:
    payload: dict[str, Any] = {"api": api, "body": dict(body), "method": method}
    if about:
        payload["about"] = dict(about)
    return payload


def _due(max_priority: int | None) -> ColumnElement[bool]:
    oa = OutboxAction
    head = aliased(OutboxAction)
    # Within a lane only the oldest unfinished action may go: per-customer order.
    lane_head = select(func.min(head.id)).where(
        head.lane == oa.lane, head.status.in_(("pending", "sending", "unknown"))
    ).scalar_subquery()
    due = and_(
        # Implied by what follows, but spelled out, its values written into the SQL, not bound,
        # so the databases may use ix_outbox_claim (a partial index is used only when the
        # query names its condition); SQLite is told to (Claim's sqlite_index).
        oa.status.in_([literal_column(f"'{status}'") for status in OUTBOX_UNFINISHED]),
        or_(
            and_(oa.status == "pending", oa.next_attempt_at <= NOW),
            oa.status == "sending",  # a worker died mid-call: claimable once its lease expired
            and_(oa.status == "unknown", oa.next_attempt_at <= NOW),
        ),
        or_(oa.lane.is_(None), oa.id == lane_head),
    )
    if max_priority is not None:
        due = and_(due, oa.priority <= max_priority)
    return due


# Marks claimed actions ``sending`` (one more attempt), fenced by the lease; built once.
_MARK_SENDING = (update(OutboxAction)
                 .where(OutboxAction.id.in_(bindparam("ids", expanding=True)),
                        OutboxAction.lease_owner == bindparam("_owner"))
                 .values(status="sending", attempts=OutboxAction.attempts + 1)
                 .returning(OutboxAction.id))


# The rows of a group still leased to us, locked until the group's commit (PostgreSQL; see
# ``Outbox._record_hooked``); built once.
_STILL_OURS = (select(OutboxAction.id)
               .where(OutboxAction.id.in_(bindparam("ids", expanding=True)),
                      OutboxAction.lease_owner == bindparam("_owner"))
               .with_for_update())


class LeaseLostInGroup(Exception):
    """A batch of fenced UPDATEs matched fewer rows than it had: some lease went to another
    worker. The group is rolled back and recorded one outcome at a time."""


class Outbox:
    """Add, send, reconcile and administer outbound actions."""

    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession],
                 settings: OutboxSettings, clock: Clock, wecom: WeComCaller | None, *,
                 owner: str | None = None) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.wecom = wecom
        self.owner = owner or new_owner_id("outbox")  # the instance id (scrm.kernel.liveness)
        self._wake = asyncio.Event()
        self.executors: dict[str, Executor] = {"wecom": _execute_wecom}
        self.reconcilers: dict[str, Reconciler] = {
            "externalcontact/add_msg_template": _reconcile_msg_template,
            "externalcontact/mark_tag": _reconcile_mark_tag,
        }
        self.preparers: dict[str, Preparer] = {}
        self.refreshers: dict[str, Refresher] = {}
        self.failure_hooks: dict[str, FailureHook] = {}
        self.sent_hooks: dict[str, list[SentHook]] = {}
        # Outcomes waiting for their group commit, and the task recording them.
        self._finishing: list[tuple[Mapping[str, Any], Outcome, asyncio.Future[None]]] = []
        self._recorder: asyncio.Task[None] | None = None
        # Actions being attempted (their outcomes are still to come), and the recorder's signal
        # that waiting for more would gain nothing (none left in flight, or a full group).
        self._in_flight = 0
        self._group_full = asyncio.Event()
        self._claims: dict[int | None, Claim] = {}

    # ------------------------------------------------------------------ adding
    async def add(self, session: AsyncSession, key: str, api: str, body: Mapping[str, Any], *,
                  priority: int = PRIORITY_DEFAULT, lane: str | None = None,
                  not_after: datetime | None = None, delay_s: float = 0.0, method: str = "POST",
                  about: Mapping[str, Any] | None = None) -> None:
        """Queue a WeCom call inside the caller's transaction; a repeated key adds nothing.

        ``about``: what the call concerns beyond its body (who, for whom), for failure hooks."""
        payload = _wecom_payload(api, body, about, method=method)
        await self.add_action(session, key, "wecom", payload, priority=priority, lane=lane,
                              not_after=not_after, delay_s=delay_s)

    async def add_action(self, session: AsyncSession, key: str, kind: str, payload: Mapping[str, Any], *,
                         priority: int = PRIORITY_DEFAULT, lane: str | None = None,
                         not_after: datetime | None = None, delay_s: float = 0.0) -> None:
        row = self._row(key, kind, payload, priority=priority, lane=lane, not_after=not_after, delay_s=delay_s,
                        now=self.clock.now())
        await session.execute(insert_ignore(dialect_of(session), table_of(OutboxAction),
                                            ["idempotency_key"]), row)

    async def add_many(self, session: AsyncSession, calls: Sequence[QueuedCall]) -> None:
        """Queue many WeCom calls in the caller's transaction with one cached ``executemany``;
        a repeated key adds nothing. For bulk producers (the CRM tag sync): one statement per
        call cost 5× the planning time on the tag-sync bench; and for a handler that queues
        several (a welcome and the channel's tags: one statement, not two per added customer)."""
        if not calls:
            return
        now = self.clock.now()
        rows = [self._row(c.key, "wecom", _wecom_payload(c.api, c.body, c.about), priority=c.priority, lane=c.lane,
                          not_after=c.not_after, delay_s=0.0, now=now) for c in calls]
        await session.execute(insert_ignore(dialect_of(session), table_of(OutboxAction), ["idempotency_key"]),
                              rows)

    def _row(self, key: str, kind: str, payload: Mapping[str, Any], *, priority: int, lane: str | None,
             not_after: datetime | None, delay_s: float, now: datetime) -> dict[str, Any]:
        if kind not in self.executors:
            raise ValueError(f"unknown outbox action kind {kind!r}")
        return {
            "idempotency_key": key[:512], "kind": kind, "payload": dict(payload), "priority": priority,
            "status": "pending", "attempts": 0, "next_attempt_at": now + timedelta(seconds=delay_s),
            "lane": lane, "not_after": not_after, "created_at": now,
        }

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ sending
    def _claim_for(self, max_priority: int | None) -> Claim:
        claim = self._claims.get(max_priority)
        if claim is None:
            claim = self._claims[max_priority] = Claim(OutboxAction, _due(max_priority),
                                                       ["priority", "next_attempt_at", "id"],
                                                       sqlite_index="ix_outbox_claim")
        return claim

    async def process_due(self, *, max_priority: int | None = None) -> int:
        """Claim one batch of due actions and run them concurrently; returns how many.

        Transactions per batch, not per action: one claims and marks every action about to be
        called ``sending`` (before any call: a crash after it leaves them ambiguous, never
        blindly re-sent), and outcomes are recorded in group commits as the calls return."""
        claimed = await self._claim_batch(self.settings.batch_size, max_priority)
        if not claimed:
            return 0
        sem = asyncio.Semaphore(self.settings.concurrency)

        async def one(row: dict[str, Any], decided: Outcome | None) -> None:
            async with sem:
                recorded = await self._process(row, decided)
            await asyncio.shield(recorded)  # a cancelled caller does not cancel the others' commit

        await asyncio.gather(*(one(row, decided) for row, decided in claimed))
        return len(claimed)

    async def _claim_batch(self, limit: int, max_priority: int | None) -> list[tuple[dict[str, Any], Outcome | None]]:
        """Claim up to ``limit`` due actions and mark those to be called ``sending``, in one
        transaction; each with its outcome when it is decided without a call (None: call it, or
        resolve it). One transaction, not a claim and then a mark: at WeCom's 10,000 calls a
        minute the second commit was a tenth of the outbox's CPU, and the mark needs nothing the
        claim's transaction does not already hold (the plan is decided without the database)."""
        now = self.clock.now()
        decided: dict[int, Outcome] = {}
        async with self.engine.begin() as conn:
            claimed = await self._claim_for(max_priority)(conn, now=now, lease_s=self.settings.lease_s,
                                                          owner=self.owner, limit=limit)
            rows = [dict(r) for r in claimed]  # an attempt may merge later notices into a row
            to_call: list[dict[str, Any]] = []
            for row in rows:
                plan = self._plan(row)
                if isinstance(plan, Outcome):
                    decided[row["id"]] = plan
                elif plan == "call":
                    to_call.append(row)
            if to_call:
                marked = await self._mark_sending(conn, to_call, now)
                for row in to_call:
                    if row["id"] not in marked:
                        decided[row["id"]] = Outcome("pending", error="lease lost", count_attempt=False)
        return [(row, decided.get(row["id"])) for row in rows]

    def _plan(self, row: dict[str, Any]) -> Outcome | Literal["call", "resolve"]:
        """What to do with a claimed action, decided without WeCom or the database."""
        api = str(row["payload"].get("api", ""))
        if self._unresolved(row, api) is not None:
            return "resolve"
        if row["not_after"] is not None and self.clock.now() > row["not_after"] and not self._may_verify(row, api):
            return Outcome("failed", error="window missed: not sent before its deadline")
        if row["attempts"] >= self.settings.max_attempts:
            return Outcome("failed", error=f"gave up after {row['attempts']} attempts: {row['last_error']}")
        return "call"

    async def _mark_sending(self, conn: AsyncConnection, rows: list[dict[str, Any]], now: datetime) -> set[int]:
        """Mark ``rows`` ``sending`` (one more attempt) in the claim's transaction, folding waiting
        notices into theirs; returns the ids still leased to us."""
        res = await conn.execute(_MARK_SENDING, {"ids": [r["id"] for r in rows], "_owner": self.owner})
        marked = set(res.scalars().all())
        for row in rows:
            if (row["id"] in marked and row["payload"].get(MERGE) and row["lane"] and row["status"] == "pending"
                    and row["attempts"] == 0):
                await merge_notices(conn, row, now)
        return marked

    async def _process(self, row: dict[str, Any], decided: Outcome | None) -> asyncio.Future[None]:
        """Attempt the action and hand its outcome in for recording; returns once the call has
        returned (its slot is free), with the future of the outcome's commit."""
        with log_context(outbox_id=row["id"], key=row["idempotency_key"], kind=row["kind"]):
            self._in_flight += 1
            try:
                outcome = decided if decided is not None else await self._attempt(row)
            except Exception as exc:
                # An executor or reconciler bug after the call may have gone out: never resend
                # on a guess, park it for an operator.
                log.exception("outbox executor crashed")
                outcome = Outcome("unknown", error=f"{type(exc).__name__}: {exc}", delay_s=self._backoff(
                    row["attempts"] + 1), count_attempt=False)
            finally:
                self._in_flight -= 1  # and, in the same step, handed in below
            return self._hand_in(row, outcome)

    async def _attempt(self, row: dict[str, Any]) -> Outcome:
        """Resolve an ambiguous action, or call one already marked ``sending``."""
        api = str(row["payload"].get("api", ""))
        unresolved = self._unresolved(row, api)
        if unresolved is not None:
            return await self._resolve_ambiguous(row, api, *unresolved)
        return await self.executors[row["kind"]](self, row)

    def _unresolved(self, row: Mapping[str, Any], api: str) -> tuple[Semantics, bool] | None:
        """For an action that may have taken effect and must not simply be sent again: its
        semantics and whether it is too old for WeCom's duplicate check; None otherwise."""
        if row["status"] not in ("unknown", "sending"):
            return None
        # "sending" here means a worker died after (maybe) sending: same as a dropped reply.
        sem = semantics_for(api) if row["kind"] == "wecom" else Semantics("retry")
        too_old = api == "message/send" and self._age_s(row) > APP_MSG_DUPLICATE_WINDOW_S - 600
        return (sem, too_old) if sem.on_ambiguous != "retry" or too_old else None

    def _may_verify(self, row: Mapping[str, Any], api: str) -> bool:
        """Past its deadline, an action that may already have gone out is sent once more when
        WeCom's answer tells which: a welcome code that was used answers 41051 even after it
        expired (so it went out: sent), an unused expired one another error (so it did not)."""
        return maybe_sent(row) and row["kind"] == "wecom" and bool(semantics_for(api).done_errcodes)

    async def _resolve_ambiguous(self, row: Mapping[str, Any], api: str, sem: Semantics,
                                 too_old: bool) -> Outcome:
        reconciler = self.reconcilers.get(api)
        if sem.on_ambiguous == "reconcile" and reconciler is not None:
            try:
                return await reconciler(self, row)
            except WeComClientError as exc:  # ask again later; still not safe to resend
                return Outcome("unknown", error=f"reconcile failed: {exc}",
                               delay_s=self.settings.reconcile_after_s, count_attempt=False)
        reason = "outside WeCom's duplicate-check window" if too_old else "may have taken effect"
        return Outcome("unknown", error=f"{reason}; check in WeCom, then `scrm outbox retry|cancel`",
                       delay_s=10 * 365 * 86400, count_attempt=False)

    def _age_s(self, row: Mapping[str, Any]) -> float:
        return float((self.clock.now() - row["created_at"]).total_seconds())

    def _backoff(self, attempts: int) -> float:
        return backoff_s(attempts, self.settings.backoff_base_s, self.settings.backoff_max_s)

    def _hand_in(self, row: Mapping[str, Any], outcome: Outcome) -> asyncio.Future[None]:
        """Queue the outcome for recording (fenced by the lease); the future resolves once it
        has committed.

        Outcomes share one transaction (a group commit), so calls cost a commit per group, not
        per action: the first waits for the others still in flight, up to ``record_linger_s`` or
        until ``batch_size`` outcomes wait, and not at all when no other call is in flight."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finishing.append((row, outcome, done))
        if not self._in_flight or len(self._finishing) >= self.settings.batch_size:
            self._group_full.set()
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_finishes())
        return done

    async def _record_finishes(self) -> None:
        await asyncio.sleep(0)  # let the outcomes of this loop turn join
        while self._finishing:
            await self._linger_for_outcomes()
            group, self._finishing = self._finishing, []
            try:
                await self._record_group(group)
            except Exception:
                # One outcome broke the group (a failure hook's bug, a constraint): record each
                # on its own, so only that one is left unrecorded (its lease runs out, and the
                # action is resolved like any other interrupted one).
                for item in group:
                    try:
                        await self._record_group([item])
                    except Exception as exc:
                        log.exception("recording an outbox outcome failed", extra={"outbox_id": item[0]["id"]})
                        item[2].set_exception(exc)
                        item[2].exception()  # retrieved: the caller may be gone
            if any(row["lane"] is not None for row, _, _ in group):
                self.wake()  # the next action of a lane may go now (see ``run``)
            for row, outcome, done in group:
                if not done.done():
                    done.set_result(None)
                level = logging.INFO if outcome.status in ("sent", "pending") else logging.WARNING
                with log_context(outbox_id=row["id"], key=row["idempotency_key"], kind=row["kind"]):
                    log.log(level, "outbox action %s", outcome.status, extra={"error": outcome.error})

    async def _linger_for_outcomes(self) -> None:
        """Wait for the outcomes of the calls still in flight to join the group (see ``_hand_in``)."""
        if not self._in_flight or len(self._finishing) >= self.settings.batch_size:
            return
        self._group_full.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.record_linger_s):  # wait_for could swallow a cancel
                await self._group_full.wait()

    async def _record_group(self, group: list[tuple[Mapping[str, Any], Outcome, asyncio.Future[None]]]) -> None:
        async with self.sessions() as session, session.begin():
            # Plain sends (nothing merged into them) as one executemany per shape: a lost lease
            # needs nothing more than the UPDATE matching no row, as in ``_record``. Sends with a
            # sent hook likewise, per api, when there are several (``_record_hooked``): their hook
            # then runs once for the batch, only for rows whose UPDATE matched.
            plain: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            hooked: dict[str, list[tuple[Mapping[str, Any], Outcome]]] = {}
            for row, outcome, _ in group:
                api = str(row["payload"].get("api", ""))
                if outcome.status != "sent" or (row["result"] or {}).get(MERGED):
                    await self._record(session, row, outcome)
                elif api in self.sent_hooks:
                    hooked.setdefault(api, []).append((row, outcome))
                else:
                    params = {"_id": row["id"], "_owner": self.owner, **self._values(row, outcome)}
                    plain.setdefault(tuple(params), []).append(params)
            for batch in plain.values():
                await session.execute(update_leased(table_of(OutboxAction)), batch)
            for api, sends in hooked.items():
                await self._record_hooked(session, api, sends)

    async def _record_hooked(self, session: AsyncSession, api: str,
                             sends: list[tuple[Mapping[str, Any], Outcome]]) -> None:
        """Record sends of one api that has sent hooks, fenced by the lease, and run the hooks
        once for those whose UPDATE matched.

        A lone send is an UPDATE whose rowcount says whether it matched (``_record``). Several
        go as one executemany; which of them matched must still be known exactly. SQLite counts
        an executemany's rows (``supports_sane_multi_rowcount``): all matched, or the group is
        refused (:class:`LeaseLostInGroup`) and recorded one by one by ``_record_finishes``.
        PostgreSQL's asyncpg does not count them, so the rows still ours are first locked ``FOR
        UPDATE`` (no other worker can take their lease until commit) and only those recorded."""
        if len(sends) == 1:
            await self._record(session, *sends[0])
            return
        table = table_of(OutboxAction)
        ids = [row["id"] for row, _ in sends]
        sane = bool(session.get_bind().dialect.supports_sane_multi_rowcount)
        if not sane:
            owned = set((await session.execute(_STILL_OURS, {"ids": ids, "_owner": self.owner})).scalars().all())
            sends = [(row, outcome) for row, outcome in sends if row["id"] in owned]
            if not sends:
                return
        batches: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        done: list[tuple[Mapping[str, Any], datetime]] = []
        for row, outcome in sends:
            params = {"_id": row["id"], "_owner": self.owner, **self._values(row, outcome)}
            batches.setdefault(tuple(params), []).append(params)
            done.append((row, params["sent_at"]))
        for batch in batches.values():
            res = await session.execute(update_leased(table), batch)
            if sane and res.rowcount != len(batch):  # type: ignore[attr-defined]
                raise LeaseLostInGroup(f"{len(batch) - res.rowcount} of {len(batch)} leases lost")  # type: ignore[attr-defined]
        for sent_hook in self.sent_hooks[api]:
            await sent_hook(session, done)

    async def flush(self) -> None:
        """Wait until every outcome handed in has been recorded (a stop calls this)."""
        while self._recorder is not None and not self._recorder.done():
            await asyncio.wait([self._recorder])

    async def _record(self, session: AsyncSession, row: Mapping[str, Any], outcome: Outcome) -> None:
        """One outcome, in the group's transaction; a failure also fails what was merged into the
        row and runs the api's failure hook, in that same transaction."""
        values = self._values(row, outcome)
        merged = list((row["result"] or {}).get(MERGED, []))
        api = str(row["payload"].get("api", ""))
        hook = self.failure_hooks.get(api) if outcome.status == "failed" else None
        res = await session.execute(update_leased(table_of(OutboxAction)),
                                    {"_id": row["id"], "_owner": self.owner, **values})
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return  # the lease went to another worker: what it records counts
        if outcome.status == "sent":
            for sent_hook in self.sent_hooks.get(api, ()):
                await sent_hook(session, [(row, values["sent_at"])])
        if outcome.status == "failed" and merged:
            # The notices merged into this one did not go out either.
            await session.execute(update(OutboxAction).where(OutboxAction.id.in_(merged),
                                                             OutboxAction.status == MERGED_STATUS)
                                  .values(status="failed", last_error=f"merged into #{row['id']}, which failed")
                                  .execution_options(synchronize_session=False))
        if hook is not None:
            await hook(self, session, row, outcome.error or "")

    def _values(self, row: Mapping[str, Any], outcome: Outcome) -> dict[str, Any]:
        """The columns an outcome sets on its row."""
        now = self.clock.now()
        values: dict[str, Any] = {"status": outcome.status, "locked_until": None, "lease_owner": None}
        merged = list((row["result"] or {}).get(MERGED, []))
        if outcome.status == "sent":
            result = {**(outcome.result or {}), MERGED: merged} if merged else outcome.result
            values.update(sent_at=now, result=result, last_error=None)
            msgid = (outcome.result or {}).get("msgid")
            if msgid:
                values["wecom_msgid"] = str(msgid)
        else:
            values["last_error"] = (outcome.error or "")[:2000]
            values["next_attempt_at"] = now + timedelta(seconds=outcome.delay_s)
            if not outcome.count_attempt:
                values["attempts"] = row["attempts"]  # as claimed, before this attempt's increment
            if outcome.result is not None:
                values["result"] = {**outcome.result, MERGED: merged} if merged else outcome.result
        return values

    async def run(self, *, max_priority: int | None = None, idle_s: float = 1.0) -> None:
        """Worker loop: keep up to ``concurrency`` actions in flight, claiming more as calls
        return (a slow WeCom answer holds one slot, not a batch). Run one with
        ``max_priority=PRIORITY_WELCOME`` so welcomes never queue behind bulk sends.

        A slot is free once its call has returned: the outcome's commit (which may wait for
        others, ``record_linger_s``) is the recorder's; its row stays ``sending`` and leased to
        us until then, so nothing claims it again, and a stop records what was handed in."""
        limit = self.settings.concurrency
        running: set[asyncio.Task[asyncio.Future[None]]] = set()
        # The last claim found fewer due actions than it asked for: a call returning frees a
        # slot but makes nothing claimable (its outcome, which may let its lane's next action
        # go, is committed later by the recorder, which wakes us), so only a wake-up (actions
        # added or recorded here, claims released) or ``idle_s`` (actions coming due, added by
        # another instance) is worth a claim. Half the claims of a welcome burst found nothing.
        drained = False
        try:
            while True:
                self._wake.clear()
                claimed: list[tuple[dict[str, Any], Outcome | None]] = []
                # Claim when a quarter of the slots are free (or none is busy): one claim and one
                # mark per several actions, not per returning call.
                if limit - len(running) >= max(1, limit // 4) or not running:
                    wanted = min(self.settings.batch_size, limit - len(running))
                    try:
                        claimed = await self._claim_batch(wanted, max_priority)
                        drained = len(claimed) < wanted
                    except Exception:
                        log.exception("outbox worker iteration failed; continuing")
                        await asyncio.sleep(idle_s)
                for row, decided in claimed:
                    task = asyncio.create_task(self._process(row, decided))
                    running.add(task)
                    task.add_done_callback(running.discard)
                if claimed and not drained and limit - len(running) >= max(1, limit // 4):
                    continue
                await until_woken(self._wake, () if drained else running, idle_s)
        finally:
            for task in running:
                task.cancel()

    # ------------------------------------------------------------------ operators
    async def retry(self, ids: list[int]) -> int:
        """Send failed/unknown actions again (an operator checked WeCom and says it is safe)."""
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(OutboxAction).where(OutboxAction.id.in_(ids),
                                           OutboxAction.status.in_(("failed", "unknown")))
                .values(status="pending", attempts=0, next_attempt_at=self.clock.now(), locked_until=None,
                        lease_owner=None))
        self.wake()
        return int(res.rowcount)

    async def cancel(self, ids: list[int]) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(
                update(OutboxAction).where(OutboxAction.id.in_(ids),
                                           OutboxAction.status.in_(("pending", "failed", "unknown")))
                .values(status="cancelled", locked_until=None, lease_owner=None))
        return int(res.rowcount)

    async def mark_sent(self, ids: list[int], by: str) -> int:
        """Record ``unknown`` actions as sent: an operator checked WeCom and found them delivered,
        so sending again would send twice."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            rows = (await conn.execute(
                update(OutboxAction).where(OutboxAction.id.in_(ids), OutboxAction.status == "unknown")
                .values(status="sent", sent_at=now, locked_until=None, lease_owner=None,
                        result={"resolved": "sent", "by": by})
                .returning(OutboxAction.id, OutboxAction.idempotency_key, OutboxAction.kind, OutboxAction.payload,
                           OutboxAction.wecom_msgid))).mappings().all()
            by_api: dict[str, list[tuple[Mapping[str, Any], datetime]]] = {}
            for row in sorted(rows, key=lambda r: int(r["id"])):
                by_api.setdefault(str(row["payload"].get("api", "")), []).append((dict(row), now))
            for api, sent in by_api.items():
                for sent_hook in self.sent_hooks.get(api, ()):
                    await sent_hook(conn, sent)
        return len(rows)

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as s:
            res = await s.execute(select(OutboxAction.status, func.count()).group_by(OutboxAction.status))
            return {status: n for status, n in res.all()}


# ---------------------------------------------------------------------- merged notices
# payload["merge"]: a text app message to one member that may carry later ones of its lane.
MERGE = "merge"
# result["merged"]: the ids of the notices a row carried; those rows end in MERGED_STATUS.
MERGED = "merged"
MERGED_STATUS = "merged"
# message/send text content is at most 2048 bytes; keep a margin for the header.
MERGED_MAX_BYTES = 2000
MERGE_AT_MOST = 50


async def merge_notices(conn: AsyncConnection, row: dict[str, Any], now: datetime) -> None:
    """Fold the member's other due notices into ``row`` (the head of their lane, so nobody else
    may claim them): one message "【3条提醒】…" instead of three, so a burst never meets WeCom's
    30-a-minute limit per member. The merged body is stored before the call, so a retry sends
    the same text (WeCom's duplicate check then drops a repeat); the merged rows end ``merged``."""
    body = row["payload"]["body"]
    later = (await conn.execute(
        select(OutboxAction.id, OutboxAction.payload)
        .where(OutboxAction.lane == row["lane"], OutboxAction.id > row["id"], OutboxAction.status == "pending",
               OutboxAction.next_attempt_at <= now)
        .order_by(OutboxAction.id).limit(MERGE_AT_MOST))).all()
    texts = [str(body.get("text", {}).get("content", ""))]
    taken: list[int] = []
    for other_id, payload in later:
        other = payload.get("body") or {}
        if not payload.get(MERGE) or other.get("touser") != body.get("touser") or other.get("msgtype") != "text":
            break  # keep the lane's order: merge only a run of notices
        text = str(other.get("text", {}).get("content", ""))
        if len(_merged_text([*texts, text]).encode()) > MERGED_MAX_BYTES:
            break
        texts.append(text)
        taken.append(int(other_id))
    if not taken:
        return
    merged_body = {**body, "text": {"content": _merged_text(texts)}}
    row["payload"] = {**row["payload"], "body": merged_body}
    row["result"] = {**(row["result"] or {}), MERGED: taken}
    await conn.execute(update(OutboxAction).where(OutboxAction.id == row["id"])
                       .values(payload=row["payload"], result=row["result"]))
    await conn.execute(update(OutboxAction).where(OutboxAction.id.in_(taken), OutboxAction.status == "pending")
                       .values(status=MERGED_STATUS, result={"merged_into": row["id"]}, locked_until=None,
                               lease_owner=None))


def _merged_text(texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    return f"【{len(texts)}条提醒】\n" + "\n\n".join(f"{i}. {t}" for i, t in enumerate(texts, 1))


# ---------------------------------------------------------------------- the "wecom" kind
async def _execute_wecom(outbox: Outbox, row: Mapping[str, Any]) -> Outcome:
    if outbox.wecom is None:
        return Outcome("pending", error="no WeCom client configured", delay_s=60, count_attempt=False)
    api = str(row["payload"]["api"])
    queued = dict(row["payload"].get("body") or {})
    if api == "message/send":
        queued.setdefault("enable_duplicate_check", 1)
        queued.setdefault("duplicate_check_interval", APP_MSG_DUPLICATE_WINDOW_S)
    body = await _prepared(outbox, row, api, queued)
    if isinstance(body, Outcome):
        return body
    try:
        return await _call_wecom(outbox, row, api, body)
    except WeComError as exc:
        refused = exc
    fresh = await _refreshed(outbox, row, api, queued, refused)
    if fresh is None:
        return _refused(outbox, row, api, refused)
    try:
        return await _call_wecom(outbox, row, api, fresh)
    except WeComError as exc:
        return _refused(outbox, row, api, exc)


async def _prepared(outbox: Outbox, row: Mapping[str, Any], api: str,
                    queued: dict[str, Any]) -> dict[str, Any] | Outcome:
    """The body completed by the api's preparer, or the outcome when it cannot be."""
    prepare = outbox.preparers.get(api)
    if prepare is None:
        return queued
    try:
        return await prepare(outbox, queued)
    except PrepareError as exc:  # nothing went to WeCom yet
        if exc.retry:
            return Outcome("pending", error=str(exc), delay_s=outbox._backoff(row["attempts"] + 1))
        return Outcome("failed", error=str(exc))


async def _refreshed(outbox: Outbox, row: Mapping[str, Any], api: str, queued: dict[str, Any],
                     exc: WeComError) -> dict[str, Any] | None:
    """The body to send once more after WeCom refused ``queued`` with ``exc``, or None."""
    refresh = outbox.refreshers.get(api)
    if refresh is None:
        return None
    fresh = await refresh(outbox, queued, exc)
    if fresh is not None and row["not_after"] is not None and outbox.clock.now() > row["not_after"]:
        return None  # repairing took too long: the window (a welcome code's 20 s) has closed
    return fresh


async def _call_wecom(outbox: Outbox, row: Mapping[str, Any], api: str, body: dict[str, Any]) -> Outcome:
    """One call; every failure but WeCom's refusal (raised for a refresher) becomes its outcome."""
    assert outbox.wecom is not None
    sem = semantics_for(api)
    try:
        result = await outbox.wecom.call(api, body, method=str(row["payload"].get("method", "POST")))
    except LocalRateLimitError as exc:
        return Outcome("pending", error=str(exc), delay_s=exc.retry_after_s, count_attempt=False)
    except AmbiguousCallError as exc:
        if sem.on_ambiguous == "retry":
            return Outcome("pending", error=f"may have taken effect, retrying safely: {exc}", delay_s=0.5,
                           result={MAYBE_SENT: True})
        return Outcome("unknown", error=str(exc), delay_s=outbox.settings.reconcile_after_s,
                       result={"first_attempt_at": row["created_at"].isoformat()})
    except WeComError:
        raise
    except WeComClientError as exc:  # nothing was sent (connection refused...): safe
        return Outcome("pending", error=str(exc), delay_s=outbox._backoff(row["attempts"] + 1))
    return Outcome("sent", result=_compact(result))


def _refused(outbox: Outbox, row: Mapping[str, Any], api: str, exc: WeComError) -> Outcome:
    """The outcome of a call WeCom answered with an errcode."""
    if exc.errcode in semantics_for(api).done_errcodes:
        return Outcome("sent", result={"errcode": exc.errcode,
                                       "note": "went out on an earlier attempt" if maybe_sent(row) else "already done"})
    late = row["not_after"] is not None and outbox.clock.now() > row["not_after"]
    if late:  # only an action that may have gone out is tried past its deadline: now we know it did not
        return Outcome("failed", error=f"window missed: not sent before its deadline ({exc})")
    if exc.retry_safe:
        return Outcome("pending", error=str(exc), delay_s=outbox._backoff(row["attempts"] + 1))
    return Outcome("failed", error=str(exc))


def _compact(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("errcode", "errmsg")}


async def _reconcile_msg_template(outbox: Outbox, row: Mapping[str, Any]) -> Outcome:
    """Find the mass-send task our lost call created, by content, time window and sender.

    API-created tasks have no creator, so the sender comes from get_groupmsg_task. A task
    already linked to another outbox row is not ours. Not found means the call never took
    effect, which makes a fresh attempt safe.
    """
    assert outbox.wecom is not None
    body = row["payload"]["body"]
    start = int(row["created_at"].timestamp()) - 120
    end = int(outbox.clock.now().timestamp()) + 120
    cursor = ""
    while True:
        page = await outbox.wecom.call("externalcontact/get_groupmsg_list_v2", {
            "chat_type": body.get("chat_type", "single"), "start_time": start, "end_time": end,
            "filter_type": 0, "limit": 100, "cursor": cursor})
        for msg in page.get("group_msg_list", []):
            if msg.get("text", {}).get("content", "") != body.get("text", {}).get("content", ""):
                continue
            if _comparable(msg.get("attachments")) != _comparable(body.get("attachments")):
                continue
            if await _linked_elsewhere(outbox, row, str(msg["msgid"])):
                continue
            if body.get("sender"):
                tasks = await outbox.wecom.call("externalcontact/get_groupmsg_task",
                                                {"msgid": msg["msgid"], "limit": 1000})
                if body["sender"] not in {t.get("userid") for t in tasks.get("task_list", [])}:
                    continue
            return Outcome("sent", result={"msgid": msg["msgid"], "reconciled": True})
        cursor = page.get("next_cursor", "")
        if not cursor:
            break
    return Outcome("pending", error="reconciled: the lost call had not taken effect; sending again",
                   count_attempt=False)


def _comparable(attachments: Any) -> list[Any]:
    """Attachments without media ids: a queued body holds placeholders filled at send time
    (and a re-upload changes the id), so a lost call is matched on everything else."""
    out: list[Any] = []
    for item in attachments or []:
        kind = item.get("msgtype") if isinstance(item, dict) else None
        inner = item.get(kind) if isinstance(kind, str) else None
        if not isinstance(inner, dict):
            out.append(item)
            continue
        out.append({"msgtype": kind, kind: {k: v for k, v in inner.items() if k not in ("media_id", "pic_media_id")}})
    return out


async def _reconcile_mark_tag(outbox: Outbox, row: Mapping[str, Any]) -> Outcome:
    """Did the lost mark_tag land? Compare the follow's current tags with what we asked for."""
    assert outbox.wecom is not None
    body = row["payload"]["body"]
    try:
        contact = await outbox.wecom.call("externalcontact/get", None, method="GET",
                                          params={"external_userid": body["external_userid"]})
    except WeComError as exc:
        if exc.errcode in (ErrCode.INVALID_EXTERNAL_USERID, ErrCode.NOT_EXTERNAL_CONTACT):
            return Outcome("failed", error=f"customer gone: {exc}")
        raise
    follows = [f for f in contact.get("follow_user", []) if f.get("userid") == body["userid"]]
    if not follows:
        return Outcome("failed", error="the manager no longer follows this customer")
    current = {t.get("tag_id") for t in follows[0].get("tags", []) if t.get("type", 1) == 1}
    if set(body.get("add_tag", [])) <= current and not (set(body.get("remove_tag", [])) & current):
        return Outcome("sent", result={"reconciled": True})
    return Outcome("pending", error="reconciled: tags not applied yet; sending again", count_attempt=False)


async def _linked_elsewhere(outbox: Outbox, row: Mapping[str, Any], msgid: str) -> bool:
    async with outbox.sessions() as s:
        other = await s.scalar(select(OutboxAction.id).where(OutboxAction.wecom_msgid == msgid,
                                                             OutboxAction.id != row["id"]))
    return other is not None


def summarize(row: OutboxAction) -> dict[str, Any]:
    return {
        "id": row.id, "key": row.idempotency_key, "kind": row.kind, "api": row.payload.get("api"),
        "status": row.status, "priority": row.priority, "attempts": row.attempts,
        "created_at": row.created_at.isoformat(), "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "next_attempt_at": row.next_attempt_at.isoformat(), "last_error": row.last_error,
        "wecom_msgid": row.wecom_msgid,
    }
