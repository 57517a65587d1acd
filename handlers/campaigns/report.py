"""The report of one experiment: per arm exposed, converted, rate with its interval, lift and
p-value against the control, and — only once every variant reached the planned sample — a winner.

**Converted**: an exposed customer for whom the CRM reported an event of the goal's kind
(``crm_event`` of a ``crm_id`` bound to them, ``binding``) after their first exposure and at
most ``within_days`` after it — the rule of the console's SOP effect page. ``window_open``
counts exposed customers whose window has not closed yet (they may still convert).

**No peeking**: looking at p-values as data trickles in and stopping at the first small one
finds "winners" that are noise. Until every compared arm has the planned number of exposed
customers the report names no winner, whatever the figures say. The compared arms are the
variants; with a single variant, the variant and the holdout (does the step beat sending
nothing?). After that, an arm wins when it beats the control with p below alpha divided by the
number of comparisons (Bonferroni, several arms against one control); the control wins when
every other arm is significantly worse; otherwise there is no significant difference. The
holdout of a several-variant experiment is shown, not tested.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.crm.api import Binding, CrmEvent

from .experiments import HOLDOUT, Experiment, from_spec
from .models import Experiment as ExperimentRow
from .models import ExperimentExposure
from .stats import CONFIDENCE, two_proportion_p, wilson_interval

_CHUNK = 500
T = TypeVar("T")


@dataclass(frozen=True)
class ArmFigures:
    variant: str
    material: str | None
    exposed: int
    converted: int
    window_open: int

    def as_json(self, control: ArmFigures | None) -> dict[str, Any]:
        rate = self.converted / self.exposed if self.exposed else None
        ci = wilson_interval(self.converted, self.exposed)
        out: dict[str, Any] = {"variant": self.variant, "material": self.material, "exposed": self.exposed,
                               "converted": self.converted, "window_open": self.window_open, "rate": rate,
                               "ci": list(ci) if ci else None, "difference": None, "lift": None, "p_value": None}
        if control is not None and control is not self and control.exposed and self.exposed:
            base = control.converted / control.exposed
            assert rate is not None
            out["difference"] = rate - base
            out["lift"] = (rate - base) / base if base else None
            out["p_value"] = two_proportion_p(self.converted, self.exposed, control.converted, control.exposed)
        return out


class UnknownExperiment(LookupError):
    pass


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


async def known(session: AsyncSession) -> list[str]:
    return list(await session.scalars(select(ExperimentRow.name).order_by(ExperimentRow.name)))


async def experiment_named(session: AsyncSession, name: str) -> Experiment:
    row = await session.get(ExperimentRow, name)
    if row is None:
        names = ", ".join(await known(session)) or "none yet (the service stores them from sop/experiments/)"
        raise UnknownExperiment(f"no experiment {name!r}; known: {names}")
    return from_spec(row.name, row.source, row.step, row.spec, row.origin)


async def arm_figures(session: AsyncSession, e: Experiment, now: datetime) -> list[ArmFigures]:
    """Exposed and converted per arm: the variants in file order, then the holdout (if any)."""
    exposures = (await session.execute(select(ExperimentExposure.customer, ExperimentExposure.variant,
                                              ExperimentExposure.at)
                                       .where(ExperimentExposure.experiment == e.name))).all()
    customers = sorted({c for c, _, _ in exposures})
    crm_ids: dict[str, list[str]] = defaultdict(list)
    for chunk in _chunks(customers):
        for crm_id, ext in (await session.execute(select(Binding.crm_id, Binding.external_userid)
                                                  .where(Binding.external_userid.in_(chunk)))).all():
            crm_ids[ext].append(crm_id)
    events: dict[str, list[datetime]] = defaultdict(list)
    all_ids = sorted({c for ids in crm_ids.values() for c in ids})
    first = min((at for _, _, at in exposures), default=now)
    for chunk in _chunks(all_ids):
        for crm_id, at in (await session.execute(
                select(CrmEvent.crm_id, CrmEvent.at)
                .where(CrmEvent.crm_id.in_(chunk), CrmEvent.kind == e.goal.event, CrmEvent.at > first))).all():
            events[crm_id].append(at)
    window = timedelta(days=e.goal.within_days)
    exposed: dict[str, int] = defaultdict(int)
    converted: dict[str, int] = defaultdict(int)
    still_open: dict[str, int] = defaultdict(int)
    for customer, variant, at in exposures:
        exposed[variant] += 1
        until = at + window
        if any(at < t <= until for c in crm_ids.get(customer, ()) for t in events.get(c, ())):
            converted[variant] += 1
        elif until > now:
            still_open[variant] += 1
    arms = [ArmFigures(v.name, v.material, exposed[v.name], converted[v.name], still_open[v.name])
            for v in e.variants]
    if e.holdout or exposed[HOLDOUT]:
        arms.append(ArmFigures(HOLDOUT, None, exposed[HOLDOUT], converted[HOLDOUT], still_open[HOLDOUT]))
    return arms


async def experiment_report(session: AsyncSession, name: str, now: datetime) -> dict[str, Any]:
    """The report as plain JSON data (``scrm experiments report NAME --json``)."""
    e = await experiment_named(session, name)
    arms = await arm_figures(session, e, now)
    control = next(a for a in arms if a.variant == e.control)
    rows = [a.as_json(control) for a in arms]
    compared = {e.control, *_comparisons(e)}
    reached = all(a.exposed >= e.planned_sample for a in arms if a.variant in compared)
    winner, verdict = _verdict(e, rows, reached)
    return {"experiment": e.name, "label": e.label, "step": f"{e.source}/{e.step}",
            "goal": e.goal.model_dump(), "control": e.control, "holdout_percent": e.holdout,
            "planned_sample": e.planned_sample, "alpha": e.alpha, "confidence": CONFIDENCE,
            "sample_reached": reached, "arms": rows, "winner": winner, "verdict": verdict}


def _comparisons(e: Experiment) -> list[str]:
    """The arms tested against the control: the other variants; with a single variant, the
    holdout (does the step do better than nothing?)."""
    others = [v.name for v in e.variants if v.name != e.control]
    return others or [HOLDOUT]


def _verdict(e: Experiment, rows: list[dict[str, Any]], reached: bool) -> tuple[str | None, str]:
    compared = {e.control, *_comparisons(e)}
    if not reached:
        short = [f"{r['variant']} {r['exposed']}/{e.planned_sample}" for r in rows
                 if r["variant"] in compared and r["exposed"] < e.planned_sample]
        return None, f"no winner yet: the planned sample is not reached ({', '.join(short)}); no peeking"
    tested = [r for r in rows if r["variant"] in _comparisons(e)]
    threshold = e.alpha / len(tested)
    better = [r for r in tested if r["p_value"] is not None and r["p_value"] < threshold and r["difference"] > 0]
    if better:
        best = max(better, key=lambda r: r["rate"])
        return best["variant"], (f"{best['variant']} beats the control {e.control} "
                                 f"(p = {best['p_value']:.4g} < {threshold:.4g})")
    if all(r["p_value"] is not None and r["p_value"] < threshold and r["difference"] < 0 for r in tested):
        return e.control, f"the control {e.control} beats {' and '.join(r['variant'] for r in tested)} " \
                          f"(p < {threshold:.4g})"
    return None, f"no significant difference at alpha {e.alpha:g} (Bonferroni: {threshold:.4g} per comparison)"


def render(report: dict[str, Any]) -> list[str]:
    """The report as lines for a terminal."""
    goal = report["goal"]
    lines = [f"experiment {report['experiment']} on {report['step']}: goal {goal['event']} within "
             f"{goal['within_days']} days; control {report['control']}; planned {report['planned_sample']} "
             f"per variant; {'reached' if report['sample_reached'] else 'not reached'}",
             f"{'arm':<12}{'exposed':>9}{'converted':>11}{'rate':>9}  {int(report['confidence'] * 100)}% CI (Wilson)"
             f"{'lift':>12}{'p':>10}"]
    for r in report["arms"]:
        rate = f"{r['rate']:.2%}" if r["rate"] is not None else "-"
        ci = f"{r['ci'][0]:.2%}–{r['ci'][1]:.2%}" if r["ci"] else "-"
        lift = f"{r['lift']:+.1%}" if r["lift"] is not None else "-"
        p = f"{r['p_value']:.4g}" if r["p_value"] is not None else "-"
        lines.append(f"{r['variant']:<12}{r['exposed']:>9}{r['converted']:>11}{rate:>9}  {ci:<19}{lift:>12}{p:>10}")
    lines.append(("winner: " + report["winner"] + " — " if report["winner"] else "") + report["verdict"])
    return lines
