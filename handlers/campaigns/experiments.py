"""``sop/experiments/*.yaml``: A/B experiments on the material of a path SOP step (or on the whole
step: its message and its task card), one experiment per file.

Read with the playbook's YAML reader (YAML 1.2, every key's line), so every problem is one
``file:line: key.path: message`` like the rest of ``sop/``; checked against the playbook it will
run with (the step exists, the materials exist, the goal is a CRM event kind). Pure: the caller
decides when to read. A missing folder means no experiment.

```yaml
experiment: payroll-wealth-copy
step: path:payroll-wealth/wealth-plan      # path:<path>/<step key or id>
variants:                                  # weights are relative; the first is the control
  a: {weight: 50}                          # the step as written
  b: {material: wealth-plan-short, weight: 50}
holdout: 10                                # percent of customers who receive nothing
goal: {event: purchase.wealth, within_days: 14}   # default: the step's own goal
planned_sample: 2000                       # per variant; or power: {baseline, mde, alpha, power}
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scrm.playbook import Goal, Playbook
from scrm.playbook.flows import PathStep
from scrm.playbook.issues import PlaybookError, PlaybookIssue
from scrm.playbook.yamlsrc import SourceFile, read_yaml

from .stats import sample_size

FOLDER = "experiments"
#: The arm of customers who receive nothing (a reserved name: no variant may take it).
HOLDOUT = "holdout"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
VARIANT = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_HOLDOUT = 50
DEFAULT_ALPHA = 0.05
KEYS = ("experiment", "name", "step", "control", "variants", "holdout", "goal", "planned_sample", "power", "alpha",
        "active")


@dataclass(frozen=True)
class Variant:
    """One arm that receives something: ``material`` replaces the step's message, ``task`` its
    task card; neither is the step as written."""

    name: str
    weight: float
    material: str | None = None
    task: str | None = None


@dataclass(frozen=True)
class Experiment:
    name: str
    source: str  # "path:payroll-wealth", as the SOP engine names a path
    step: str  # the step's key
    variants: tuple[Variant, ...]
    control: str
    holdout: float  # percent, 0..50
    goal: Goal
    planned_sample: int  # exposed customers per variant before the report may call a winner
    alpha: float = DEFAULT_ALPHA
    label: str = ""
    origin: str = ""  # "sop/experiments/x.yaml:1"

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


def to_spec(e: Experiment) -> dict[str, Any]:
    """The JSON the ``experiment`` table keeps (what :func:`from_spec` reads back)."""
    return {"label": e.label, "control": e.control, "holdout": e.holdout, "planned_sample": e.planned_sample,
            "alpha": e.alpha, "goal": e.goal.model_dump(),
            "variants": [{"name": v.name, "weight": v.weight, "material": v.material, "task": v.task}
                         for v in e.variants]}


def from_spec(name: str, source: str, step: str, spec: dict[str, Any], origin: str = "") -> Experiment:
    return Experiment(name=name, source=source, step=step, control=spec["control"], holdout=float(spec["holdout"]),
                      goal=Goal.model_validate(spec["goal"]), planned_sample=int(spec["planned_sample"]),
                      alpha=float(spec["alpha"]), label=spec.get("label", ""), origin=origin,
                      variants=tuple(Variant(v["name"], float(v["weight"]), v.get("material"), v.get("task"))
                                     for v in spec["variants"]))


def load_experiments(sop_dir: Path, pb: Playbook) -> tuple[Experiment, ...]:
    """Every ``sop_dir/experiments/*.yaml`` (none when the folder is absent), checked against
    ``pb``; raises :class:`PlaybookError` listing every problem of every file."""
    folder = sop_dir / FOLDER
    if not folder.is_dir():
        return ()
    out: list[Experiment] = []
    problems: list[PlaybookIssue] = []
    steps: dict[tuple[str, str], str] = {}
    for path in sorted(folder.glob("*.yaml")):
        source, issues = read_yaml(path, f"{sop_dir.name}/{FOLDER}/{path.name}")
        problems += issues
        if source is None or issues:
            continue
        reader = _Reader(source, pb)
        experiment = reader.experiment()
        problems += reader.problems
        if experiment is None or reader.problems:
            continue
        if any(e.name == experiment.name for e in out):
            problems.append(source.issue(("experiment",), f"{experiment.name!r} is declared in another file too"))
        elif (experiment.source, experiment.step) in steps:
            problems.append(source.issue(("step",), f"the step already runs experiment "
                                                    f"{steps[(experiment.source, experiment.step)]!r}"))
        else:
            steps[(experiment.source, experiment.step)] = experiment.name
            out.append(experiment)
    if problems:
        raise PlaybookError(problems)
    return tuple(out)


def check(sop_dir: Path, pb: Playbook) -> list[PlaybookIssue]:
    """Every problem of the experiment files (``scrm experiments validate``)."""
    try:
        load_experiments(sop_dir, pb)
    except PlaybookError as exc:
        return exc.errors
    return []


class _Reader:
    """Walks one file, collecting every problem instead of stopping at the first."""

    def __init__(self, src: SourceFile, pb: Playbook) -> None:
        self.src = src
        self.pb = pb
        self.problems: list[PlaybookIssue] = []

    def bad(self, at: tuple[Any, ...], message: str) -> None:
        self.problems.append(self.src.issue(at, message))

    def number(self, value: Any, at: tuple[Any, ...], low: float, high: float, *, above_low: bool = False) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or value < low or value > high or (above_low and value == low):
            span = f"{'above ' if above_low else ''}{low:g}..{high:g}"
            self.bad(at, f"must be a number {span}, got {value!r}")
            return high if above_low else low
        return float(value)

    def experiment(self) -> Experiment | None:
        data = self.src.data
        if not isinstance(data, dict):
            self.bad((), "must be a mapping: experiment, step, variants, goal, planned_sample or power")
            return None
        for k in data:
            if k not in KEYS:
                self.bad((k,), f"unknown key; expected one of {', '.join(KEYS)}")
        for k in ("experiment", "step", "variants"):
            if k not in data:
                self.bad((), f"needs {k}:")
        name = data.get("experiment")
        if "experiment" in data and (not isinstance(name, str) or not NAME.match(name)):
            self.bad(("experiment",), f"must be a name (a-z, 0-9, - and _, up to 64), got {name!r}")
        step = self.step(data.get("step")) if "step" in data else None
        variants = self.variants(data.get("variants"), step) if "variants" in data else ()
        control = data.get("control", variants[0].name if variants else "")
        if "control" in data and not any(v.name == control for v in variants):
            self.bad(("control",), f"must name one of the variants ({', '.join(v.name for v in variants)})")
        holdout = self.number(data.get("holdout", 0), ("holdout",), 0, MAX_HOLDOUT)
        if len(variants) == 1 and not holdout:
            self.bad(("variants",), "one variant needs a holdout: to compare with (or give two or more variants)")
        goal = self.goal(data.get("goal"), step)
        alpha = self.number(data.get("alpha", DEFAULT_ALPHA), ("alpha",), 0, 0.5, above_low=True)
        planned, alpha = self.sample(data, alpha)
        active = data.get("active", True)
        if not isinstance(active, bool):
            self.bad(("active",), "must be true or false")
        label = data.get("name", "")
        if not isinstance(label, str):
            self.bad(("name",), "must be a text")
        if self.problems or step is None or goal is None or not isinstance(name, str) or active is not True:
            return None
        source, key = step
        return Experiment(name=name, source=source, step=key, variants=variants, control=str(control),
                          holdout=holdout, goal=goal, planned_sample=planned, alpha=alpha, label=str(label),
                          origin=f"{self.src.display}:{self.src.line_of(())}")

    def step(self, raw: Any) -> tuple[str, str] | None:
        """``path:<path>/<step key>`` → ("path:<path>", key), checked against the playbook."""
        if not isinstance(raw, str) or not raw.startswith("path:") or "/" not in raw:
            self.bad(("step",), f"must be path:<path>/<step key> (only 1:1 path steps can be split per customer), "
                                f"got {raw!r}")
            return None
        path_name, _, key = raw.removeprefix("path:").partition("/")
        path = self.pb.paths.get(path_name)
        if path is None:
            self.bad(("step",), f"unknown path {path_name!r}; known: {', '.join(sorted(self.pb.paths)) or 'none'}")
            return None
        if not any(s.key == key for s in path.steps):
            keys = ", ".join(s.key for s in path.steps)
            self.bad(("step",), f"path {path_name!r} has no step {key!r}; its steps: {keys}")
            return None
        return f"path:{path_name}", key

    def _step(self, step: tuple[str, str] | None) -> PathStep | None:
        if step is None:
            return None
        path = self.pb.paths[step[0].removeprefix("path:")]
        return next(s for s in path.steps if s.key == step[1])

    def variants(self, raw: Any, step: tuple[str, str] | None) -> tuple[Variant, ...]:
        if not isinstance(raw, dict) or not raw:
            self.bad(("variants",), "must be a mapping of variants: name: {weight, material, task}")
            return ()
        spec = self._step(step)
        actions = [spec, *spec.branches] if spec is not None else []
        out: list[Variant] = []
        for name, item in raw.items():
            here = ("variants", name)
            if not isinstance(name, str) or not VARIANT.match(name) or name == HOLDOUT:
                self.bad(here, f"must be a lower-case name (a-z, 0-9, - and _), not {HOLDOUT!r}, got {name!r}")
                continue
            if not isinstance(item, dict):
                self.bad(here, "must be a mapping: {weight, material, task}")
                continue
            for k in item:
                if k not in ("weight", "material", "task"):
                    self.bad((*here, k), "unknown key; expected one of weight, material, task")
            if "weight" not in item:
                self.bad(here, "needs weight:")
            weight = self.number(item.get("weight", 1), (*here, "weight"), 0, 10_000, above_low=True)
            parts: dict[str, str | None] = {}
            for part, what in (("material", "send"), ("task", "task")):
                mid = item.get(part)
                if mid is None:
                    parts[part] = None
                    continue
                if not isinstance(mid, str) or mid not in self.pb.materials:
                    self.bad((*here, part), f"unknown material {mid!r}")
                elif actions and not any(getattr(a, what) for a in actions):
                    self.bad((*here, part), f"the step has no {what}: to replace")
                parts[part] = mid if isinstance(mid, str) else None
            out.append(Variant(name, weight, parts["material"], parts["task"]))
        return tuple(out)

    def goal(self, raw: Any, step: tuple[str, str] | None) -> Goal | None:
        if raw is None:
            spec = self._step(step)
            if spec is not None and spec.goal is None:
                self.bad((), "needs goal: {event, within_days} (the step has no goal of its own)")
            return spec.goal if spec is not None else None
        try:
            return Goal.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                self.bad(("goal", *err["loc"]), err["msg"])
            return None

    def sample(self, data: dict[str, Any], alpha: float) -> tuple[int, float]:
        """The planned sample per variant: given, or computed from ``power:``; and the test's alpha."""
        if ("planned_sample" in data) == ("power" in data):
            self.bad((), "needs planned_sample: (customers per variant) or power: {baseline, mde, alpha, power}, "
                         "not both")
            return 0, alpha
        if "planned_sample" in data:
            n = data["planned_sample"]
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100_000_000:
                self.bad(("planned_sample",), f"must be a whole number of customers per variant, got {n!r}")
                return 0, alpha
            return n, alpha
        raw = data["power"]
        at: tuple[Any, ...] = ("power",)
        if not isinstance(raw, dict):
            self.bad(at, "must be a mapping: {baseline, mde, alpha, power}")
            return 0, alpha
        for k in raw:
            if k not in ("baseline", "mde", "alpha", "power"):
                self.bad((*at, k), "unknown key; expected one of baseline, mde, alpha, power")
        for k in ("baseline", "mde"):
            if k not in raw:
                self.bad(at, f"needs {k}:")
        baseline = self.number(raw.get("baseline", 0.5), (*at, "baseline"), 0, 1, above_low=True)
        mde = self.number(raw.get("mde", 0.5), (*at, "mde"), 0, 1, above_low=True)
        if "alpha" in data and "alpha" in raw:
            self.bad((*at, "alpha"), "give alpha once (here or at the top)")
        alpha = self.number(raw.get("alpha", alpha), (*at, "alpha"), 0, 0.5, above_low=True)
        power = self.number(raw.get("power", 0.8), (*at, "power"), 0.5, 1)
        if power >= 1:
            self.bad((*at, "power"), "must be below 1")
        if baseline + mde >= 1:
            self.bad((*at, "mde"), f"baseline + mde must stay below 1 (a rate), got {baseline + mde:g}")
        if self.problems:
            return 0, alpha
        return sample_size(baseline, mde, alpha=alpha, power=power), alpha
