"""The registry of live instances: each beats, and the claims of a silent one are released at once.

Every row the inbox, the outbox or the scheduler claims carries its owner's instance id and a
lease. A killed process would hold its rows until the leases expire (a minute), longer than a
welcome code lives (20 s). So each running instance keeps a ``service_instance`` row and beats
every ``heartbeat_s``: the beat renews its own leases (long work never loses them while alive)
and **reaps** the dead — instances silent for ``dead_after_s``, and, on the same machine,
instances whose process is gone (a restart finds its killed predecessor at once, by pid and
process start tick in the same pid namespace). Reaping clears the dead owner's leases in one
statement per table, so the next claim takes the rows over.

Two live workers never hold one row: a claim is a fenced UPDATE (``scrm.kernel.leases``), a
completion applies only while the row is still leased to the same owner, and a reaped instance
that was merely slow finds its row gone at its next beat, registers again, and its late
completions are refused (its transactions roll back; an outbox call it made in between is
resolved by the action's ambiguity rules, as after a crash).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Select, Update, and_, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of
from scrm.adapters.db.types import UTCDateTime
from scrm.kernel.clock import Clock
from scrm.kernel.config import LivenessSettings
from scrm.kernel.leases import new_owner_id
from scrm.kernel.models import OUTBOX_UNFINISHED_SQL, DueJob, InboxEvent, OutboxAction, ServiceInstance

log = logging.getLogger("scrm.kernel.liveness")

# Every registered instance's id (and so its lease owner) starts with this.
OWNER_PREFIX = "svc"

# Which rows of a claimed table can hold a lease: the claim's partial indexes cover exactly these,
# so renewing and releasing never scan the done history.
_LEASABLE = {"inbox_event": text("status = 'pending'"), "outbox_action": text(OUTBOX_UNFINISHED_SQL)}


def _leased_rows(model: type[Any], owned: ColumnElement[bool]) -> Select[Any]:
    """The ids of ``model``'s rows with a lease matching ``owned``, skipping rows another
    transaction has locked (PostgreSQL; SQLite has one writer and ignores it)."""
    table = model.__table__
    where = and_(owned, model.locked_until.is_not(None))
    leasable = _LEASABLE.get(table.name)
    if leasable is not None:
        where = and_(leasable, where)
    return select(model.id).where(where).with_for_update(skip_locked=True)


def _renew(model: type[Any]) -> Update:
    """Renew the leases ``:me`` holds on ``model``'s rows until ``:until``."""
    mine = _leased_rows(model, model.lease_owner == bindparam("me"))
    return update(model).where(model.id.in_(mine)).values(locked_until=bindparam("until", type_=UTCDateTime()))


def _release(model: type[Any]) -> Update:
    """Release the leases on ``model``'s rows whose owner is no registered instance."""
    registered = select(ServiceInstance.id).scalar_subquery()
    # Instance ids only ("svc:…"): a command that claims without registering keeps its rows.
    orphaned = model.lease_owner.like(f"{OWNER_PREFIX}:%") & model.lease_owner.not_in(registered)
    return update(model).where(model.id.in_(_leased_rows(model, orphaned))).values(locked_until=None, lease_owner=None)


# ------------------------------------------------------------------------------ this process
def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def pid_space() -> str:
    """This machine's boot and this process's pid namespace ("" where /proc cannot tell): two
    processes with the same pid_space see the same process table."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""
    return f"{boot}/{namespace}" if boot else ""


def process_start(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot; None when there is no such process
    or it has exited (a zombie its parent has not reaped yet is gone too)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    try:
        fields = stat.rsplit(")", 1)[1].split()
    except IndexError:
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


@dataclass(frozen=True)
class Identity:
    """Who this instance is, in the registry and on every lease it takes."""

    id: str
    host: str
    pid: int
    pid_space: str
    process_start: str

    @classmethod
    def of_this_process(cls) -> Identity:
        pid = os.getpid()
        return cls(new_owner_id(OWNER_PREFIX), socket.gethostname()[:64], pid, pid_space(), process_start(pid) or "")


def gone(row: Any, me: Identity, process_start_of: Callable[[int], str | None] = process_start) -> bool:
    """True when ``row``'s process is known to be gone: same process table, and no process with
    its pid and start tick (a pid reused since then has another start tick)."""
    if not me.pid_space or row.pid_space != me.pid_space or not row.process_start:
        return False
    return bool(process_start_of(row.pid) != row.process_start)


# ------------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class Beat:
    """What one beat did."""

    reaped: tuple[str, ...] = ()  # instance ids found dead and released
    released: int = 0  # claims they held, now claimable
    rejoined: bool = False  # our own row was gone: a peer had reaped us
    live: int = 1  # instances alive now, this one included


# The claimed tables, with how long a renewed lease lasts (read from the settings per table).
LeasedTable = tuple[type[Any], float]


class Liveness:
    """Register, beat, reap, leave."""

    def __init__(self, engine: AsyncEngine, clock: Clock, settings: LivenessSettings, identity: Identity,
                 leased: Sequence[LeasedTable], *, on_release: Callable[[], None] | None = None,
                 on_live: Callable[[int], None] | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.me = identity
        self.leased = tuple(leased)
        # A beat's statements, built once: building them cost most of a beat (8 ms of CPU each
        # second with a 500-event backlog on SQLite); the values are bound at each execution.
        self._renew = [(_renew(model), lease_s) for model, lease_s in self.leased]
        self._release = [_release(model) for model, _ in self.leased]
        self.on_release = on_release
        self.on_live = on_live  # told how many instances are alive, after every beat
        self.process_start_of: Callable[[int], str | None] = process_start

    @staticmethod
    def tables(inbox_lease_s: float, outbox_lease_s: float, scheduler_lease_s: float) -> list[LeasedTable]:
        return [(InboxEvent, inbox_lease_s), (OutboxAction, outbox_lease_s), (DueJob, scheduler_lease_s)]

    async def register(self) -> Beat:
        """Join the registry and release what dead instances hold (a restart's first act)."""
        async with self.engine.begin() as conn:
            await self._insert_self(conn, self.clock.now())
        return await self.beat()

    async def beat(self) -> Beat:
        """Say we are alive, renew our leases, release the claims of the dead.

        Three short transactions, in that order: a renewal or a release that meets a lock (a
        peer's group commit, a reaped instance's last write) can never cost the heartbeat, and
        rows locked by others are skipped (``SKIP LOCKED``), never waited for, so a beat takes
        no part in a deadlock. Whatever a step misses, the next beat does."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            mine = await conn.execute(update(ServiceInstance).where(ServiceInstance.id == self.me.id)
                                      .values(heartbeat_at=now))
            rejoined = mine.rowcount != 1
            if rejoined:
                log.warning("this instance had been declared dead (no heartbeat for %.0f s); its claims "
                            "were released to others; registering again", self.settings.dead_after_s)
                await self._insert_self(conn, now)
        async with self.engine.begin() as conn:
            for renew, lease_s in self._renew:
                await conn.execute(renew, {"me": self.me.id, "until": now + timedelta(seconds=lease_s)})
        reaped, released, live = await self._reap(now)
        if self.on_live is not None:
            self.on_live(live)
        if released:
            log.warning("released the claims of dead instances", extra={"instances": list(reaped),
                                                                        "claims": released})
            if self.on_release is not None:
                self.on_release()
        return Beat(tuple(reaped), released, rejoined, live)

    async def _insert_self(self, conn: AsyncConnection, now: datetime) -> None:
        row = {"id": self.me.id, "host": self.me.host, "pid": self.me.pid, "pid_space": self.me.pid_space,
               "process_start": self.me.process_start, "started_at": now, "heartbeat_at": now}
        await conn.execute(insert_ignore(dialect_of(conn), table_of(ServiceInstance), ["id"]), row)

    async def _reap(self, now: datetime) -> tuple[list[str], int, int]:
        """Release the claims of dead instances, and of owners no longer registered (an instance
        reaped while alive that claimed before it rejoined, then died); returns (dead ids,
        claims released, instances alive)."""
        silent_since = now - timedelta(seconds=self.settings.dead_after_s)
        async with self.engine.begin() as conn:
            others = (await conn.execute(select(ServiceInstance).where(ServiceInstance.id != self.me.id))).all()
            gone_ids = [r.id for r in others if gone(r, self.me, self.process_start_of)]
            dead = [r.id for r in others if r.heartbeat_at < silent_since or r.id in gone_ids]
            if dead:
                # Only rows still as we saw them: an instance that beat meanwhile stays.
                await conn.execute(delete(ServiceInstance).where(
                    ServiceInstance.id.in_(dead),
                    (ServiceInstance.heartbeat_at < silent_since) | ServiceInstance.id.in_(gone_ids)))
        live = 1 + len(others) - len(dead)
        released = 0
        async with self.engine.begin() as conn:
            for release in self._release:
                res = await conn.execute(release)
                released += int(res.rowcount)
        return dead, released, live

    async def leave(self) -> None:
        """A clean stop: give back what this instance still holds and leave the registry."""
        async with self.engine.begin() as conn:
            for model, _ in self.leased:
                await conn.execute(update(model).where(model.lease_owner == self.me.id)
                                   .values(locked_until=None, lease_owner=None))
            await conn.execute(delete(ServiceInstance).where(ServiceInstance.id == self.me.id))

    async def run(self) -> None:
        """Beat every ``heartbeat_s`` until cancelled; a failed beat is logged and retried."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                await self.beat()
            except Exception:
                log.exception("heartbeat failed; retrying")

    async def live(self) -> list[ServiceInstance]:
        """The registry as it stands (``scrm instances``, metrics)."""
        async with self.engine.connect() as conn:
            return list((await conn.execute(select(ServiceInstance).order_by(ServiceInstance.started_at))).all())  # type: ignore[arg-type]
