"""The experiments in force, as the SOP engine sees them: synced from ``sop/experiments/*.yaml``
into the ``experiment`` table at start and after every playbook reload, read back by each slot's
planner and executor (so every instance splits with the same definition).

:class:`ExperimentBook` answers the SOP engine's one question — what does this step do for this
customer — and :class:`Exposures` records the answer when the step takes effect.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from scrm.adapters.db.engine import dialect_of, insert_ignore, table_of, upsert
from scrm.playbook.flows import PathActions

from .assignment import assign
from .campaign import ALL_CHANNELS
from .experiments import HOLDOUT, Experiment, from_spec, to_spec
from .models import Experiment as ExperimentRow
from .models import ExperimentExposure

#: The reason recorded for a holdout customer's step (``occurrence.reason``).
HOLDOUT_REASON = "experiment: holdout"


@dataclass(frozen=True)
class Arm:
    """A customer's arm of the experiment on a step."""

    experiment: str
    variant: str  # a variant's name, or "holdout"
    material: str | None = None  # replaces the step's send
    task: str | None = None  # replaces the step's task card

    @property
    def holdout(self) -> bool:
        return self.variant == HOLDOUT

    def applied_to(self, action: PathActions) -> PathActions:
        """The step's (or branch's) actions with this arm's material and task."""
        changes = {k: v for k, v in (("send", self.material), ("task", self.task)) if v is not None and
                   getattr(action, k) is not None}
        return action.model_copy(update=changes) if changes else action


class ExperimentBook:
    """Experiments by the step they split: ``(source, step key)``."""

    def __init__(self, experiments: Iterable[Experiment] = ()) -> None:
        self.by_step = {(e.source, e.step): e for e in experiments}

    def arm(self, source: str, step: str, customer: str) -> Arm | None:
        """The arm of ``customer`` on the step, or None when no experiment splits it."""
        # A campaign's experiment covers every channel of the campaign (its step is "*").
        e = self.by_step.get((source, step)) or self.by_step.get((source, ALL_CHANNELS))
        if e is None:
            return None
        name = assign(e, customer)
        v = e.variant(name)
        return Arm(e.name, name, v.material if v else None, v.task if v else None)


async def in_force(session: AsyncSession) -> ExperimentBook:
    """The active experiments as last synced."""
    rows = (await session.scalars(select(ExperimentRow).where(ExperimentRow.active.is_(True)))).all()
    return ExperimentBook(from_spec(r.name, r.source, r.step, r.spec, r.origin) for r in rows)


async def sync(session: AsyncSession, experiments: Iterable[Experiment], now: datetime) -> list[str]:
    """Store the experiments read from the files; an experiment whose file is gone (or says
    ``active: false``) stays for the report, inactive. Returns the active names."""
    experiments = list(experiments)
    rows = [{"name": e.name, "source": e.source, "step": e.step[:256], "spec": to_spec(e), "origin": e.origin[:256],
             "active": True, "updated_at": now} for e in experiments]
    names = [e.name for e in experiments]
    dialect = dialect_of(session)
    if rows:
        stmt = upsert(dialect, table_of(ExperimentRow), ["name"], ["source", "step", "spec", "origin", "active",
                                                                   "updated_at"])
        await session.execute(stmt, rows)
    await session.execute(update(ExperimentRow).where(ExperimentRow.name.not_in(names), ExperimentRow.active.is_(True))
                          .values(active=False, updated_at=now))
    return names


class Exposures:
    """Records first exposures in the caller's transaction (the experiments read once, lazily).

    Rows are written in batches (a campaign's slot exposes tens of thousands): call :meth:`flush`
    before the transaction commits (the SOP executor's ``run`` does).
    """

    BATCH = 1000

    def __init__(self, session: AsyncSession, now: datetime) -> None:
        self.session = session
        self.now = now
        self._book: ExperimentBook | None = None
        self._pending: dict[tuple[str, str], dict[str, object]] = {}

    async def record(self, source: str, step: str, customer: str) -> Arm | None:
        """``customer`` met the step: their arm, recorded once per experiment (None: no experiment)."""
        if self._book is None:
            self._book = await in_force(self.session)
        arm = self._book.arm(source, step, customer)
        if arm is not None:
            self._pending.setdefault((arm.experiment, customer), {
                "experiment": arm.experiment, "customer": customer, "variant": arm.variant, "at": self.now})
            if len(self._pending) >= self.BATCH:
                await self.flush()
        return arm

    async def flush(self) -> None:
        rows, self._pending = list(self._pending.values()), {}
        if rows:
            await self.session.execute(insert_ignore(dialect_of(self.session), table_of(ExperimentExposure),
                                                     ["experiment", "customer"]), rows)
