"""Following a batch until every item is final.

1. Calls answered: the ``succession.call`` action's result holds WeCom's code per customer (or
   per group), committed with its ``sent`` mark; 0 starts the transfer (``waiting``), 40128 is
   WeCom's 2-in-90-days limit, others fail with their reason. A repeat after a crash answers
   40129 (customer) or 90500 (group) for what the first attempt did: read as started / done.
2. Transfers waiting: ``transfer_result`` per (handover, takeover): 1 done, 3 refused (the
   customer said no), 4 limit, 5 no record; still 2 after ``timeout_h`` is ``timeout``.
3. Final items apply their effects (:mod:`handlers.succession.effects`) in this transaction, and
   each new manager gets one card per batch once WeCom answered all of its calls for them.

WeCom reads happen before the first write (SQLite holds its write lock until commit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.succession import effects
from handlers.succession.models import SuccessionBatch, SuccessionItem
from handlers.succession.notice import tell_takeovers
from handlers.succession.plan import CUSTOMER, GROUP, schedule_follow
from handlers.succession.settings import succession_settings
from scrm.adapters.wecom.api import WeComClient
from scrm.kernel.config import Settings
from scrm.kernel.inbox import Inbox
from scrm.kernel.models import OutboxAction
from scrm.kernel.outbox import MAYBE_SENT, Outbox
from scrm.kernel.scheduler import Scheduler

TOO_OFTEN, IN_TRANSFER, NOT_CUSTOMER, UNKNOWN_CUSTOMER = 40128, 40129, 84061, 40096
OWNER_NOT_RESIGNED = 90500
# transfer_result status → (item status, reason)
RESULT = {1: ("done", "taken over"), 3: ("refused", "the customer refused the new manager"),
          4: ("limit", "WeCom: the customer reached the transfer limit"),
          5: ("failed", "WeCom has no record of this transfer")}
CODE_REASONS = {TOO_OFTEN: ("limit", "WeCom: a customer may be transferred at most twice in 90 days (40128)"),
                IN_TRANSFER: ("failed", "already being transferred in WeCom (40129)"),
                NOT_CUSTOMER: ("failed", "not this manager's customer in WeCom (84061)"),
                UNKNOWN_CUSTOMER: ("failed", "unknown customer (40096)"),
                OWNER_NOT_RESIGNED: ("failed", "the group's owner has not left (90500)")}
_UNFINISHED_CALL = ("pending", "sending", "unknown")


@dataclass(frozen=True)
class Applied:
    """What one follow-up changed; ``open`` items remain."""

    final: int
    started: int
    open: int


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def follow_batch(session: AsyncSession, wecom: WeComClient, outbox: Outbox, inbox: Inbox,
                       scheduler: Scheduler, settings: Settings, batch_id: str, *, now: datetime,
                       inbox_id: int) -> Applied | None:
    """One follow-up of ``batch_id``; re-arms itself while anything is open."""
    batch = await session.get(SuccessionBatch, batch_id)
    if batch is None:
        return None
    items = list((await session.scalars(select(SuccessionItem).where(SuccessionItem.batch_id == batch_id)
                                        .order_by(SuccessionItem.id))).all())
    keys = sorted({i.call_key for i in items if i.status == "planned" and i.call_key})
    calls = {r.idempotency_key: r for r in (await session.scalars(
        select(OutboxAction).where(OutboxAction.idempotency_key.in_(keys)))).all()} if keys else {}
    results = await _read_results(wecom, batch, [i for i in items if i.status == "waiting"])
    # -- writes ----------------------------------------------------------------------------
    conf = succession_settings(settings)
    final = started = 0
    for item in items:
        before = item.status
        if before == "planned":
            _apply_call(item, calls.get(item.call_key), now)
        elif before == "waiting" and item.target_type == CUSTOMER:
            _apply_result(item, results.get((item.handover_userid, item.takeover_userid, item.target)), now,
                          timedelta(hours=conf.timeout_h))
        if item.status == before:
            continue
        started += item.status == "waiting"
        if item.status != "waiting":
            final += 1
            await finish(session, outbox, inbox, settings, batch, item, inbox_id)
    await session.flush()
    await tell_takeovers(session, outbox, settings, batch, items, now)
    still = sum(1 for i in items if i.status in ("planned", "waiting"))
    if still:
        waiting_calls = any(i.status == "planned" for i in items)
        delay = conf.first_follow_s if waiting_calls else conf.follow_s
        await schedule_follow(session, scheduler, batch_id, now + timedelta(seconds=delay))
    else:
        batch.status = "finished"
    return Applied(final=final, started=started, open=still)


async def finish(session: AsyncSession, outbox: Outbox, inbox: Inbox, settings: Settings, batch: SuccessionBatch,
                 item: SuccessionItem, inbox_id: int) -> None:
    """Apply a final item's effects (once: callers pass only items that just became final)."""
    at = item.finished_at or outbox.clock.now()
    if item.target_type == GROUP:
        if item.status == "done":
            await effects.group_done(session, item, inbox_id, at)
        return
    if item.status == "done":
        await effects.customer_done(session, outbox, inbox, settings, batch, item, inbox_id, at)
    else:
        await effects.customer_failed(session, item, inbox_id, at)


async def _read_results(wecom: WeComClient, batch: SuccessionBatch, waiting: list[SuccessionItem],
                        ) -> dict[tuple[str, str, str], Mapping[str, Any]]:
    """transfer_result for every (handover, takeover) pair with a waiting customer."""
    pairs = sorted({(i.handover_userid, i.takeover_userid) for i in waiting if i.target_type == CUSTOMER})
    out: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for handover, takeover in pairs:
        async for r in wecom.iter_transfer_result(handover, takeover, resigned=batch.kind == "resigned"):
            out[(handover, takeover, r.external_userid)] = {"status": r.status, "takeover_time": r.takeover_time}
    return out


def _apply_call(item: SuccessionItem, call: OutboxAction | None, now: datetime) -> None:
    """The item's call was answered (or failed for good): started, or final with the reason."""
    if call is None or call.status in _UNFINISHED_CALL:
        return
    if call.status != "sent":
        _final(item, "failed", now, f"the call did not go out ({call.status}): {call.last_error or ''}")
        return
    result = call.result or {}
    repeat = bool(result.get(MAYBE_SENT))
    if item.target_type == GROUP:
        failed = {str(g.get("chat_id")): int(g.get("errcode", 0)) for g in result.get("failed_chat_list", [])}
        code = failed.get(item.target, 0)
        if code == 0 or (repeat and code == OWNER_NOT_RESIGNED):
            item.started_at = now
            _final(item, "done", now, "new owner")
        else:
            _coded(item, code, now)
        return
    codes = {str(c.get("external_userid")): int(c.get("errcode", 0)) for c in result.get("customer", [])}
    answered = codes.get(item.target)
    if answered is None:
        _final(item, "failed", now, "not in WeCom's answer")
    elif answered == 0 or (repeat and answered == IN_TRANSFER):
        item.status, item.started_at, item.errcode = "waiting", now, None
    else:
        _coded(item, answered, now)


def _apply_result(item: SuccessionItem, result: Mapping[str, Any] | None, now: datetime, timeout: timedelta) -> None:
    status = int(result["status"]) if result is not None else 2
    if status == 2 or result is None:
        if item.started_at is not None and now - item.started_at > timeout:
            _final(item, "timeout", now, f"WeCom still reports it waiting after {timeout.total_seconds() / 3600:g} h")
        return
    state, reason = RESULT.get(status, ("failed", f"unknown transfer status {status}"))
    when = _ts(int(result["takeover_time"])) if status == 1 and result.get("takeover_time") else now
    _final(item, state, when, reason)


def _coded(item: SuccessionItem, code: int, now: datetime) -> None:
    state, reason = CODE_REASONS.get(code, ("failed", f"WeCom refused it (errcode {code})"))
    item.errcode = int(code)
    _final(item, state, now, reason)


def _final(item: SuccessionItem, status: str, at: datetime, reason: str) -> None:
    item.status, item.finished_at, item.reason = status, at, reason[:256]


async def on_transfer_fail(session: AsyncSession, outbox: Outbox, inbox: Inbox, settings: Settings, *,
                           takeover: str, external_userid: str, reason: str, at: datetime, inbox_id: int) -> int:
    """WeCom's ``transfer_fail`` callback: the waiting transfer to ``takeover`` is final now."""
    items = (await session.scalars(select(SuccessionItem).where(
        SuccessionItem.target == external_userid, SuccessionItem.takeover_userid == takeover,
        SuccessionItem.status == "waiting"))).all()
    for item in items:
        if reason == "customer_limit_exceed":
            _final(item, "limit", at, "WeCom: the customer reached the transfer limit (customer_limit_exceed)")
        else:
            _final(item, "refused", at, "the customer refused the new manager (customer_refused)")
        batch = await session.get(SuccessionBatch, item.batch_id)
        if batch is not None:
            await finish(session, outbox, inbox, settings, batch, item, inbox_id)
    return len(items)
