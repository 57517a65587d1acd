"""Experiments for the campaigns tests, built directly (the loader is tested on its own)."""

from __future__ import annotations

from handlers.campaigns.experiments import Experiment, Variant
from scrm.playbook import Goal


def experiment(name: str = "copy-test", *, holdout: float = 0, planned: int = 100,
               variants: tuple[Variant, ...] = (Variant("a", 50), Variant("b", 50, "ab-warm")),
               goal: Goal | None = None, alpha: float = 0.05) -> Experiment:
    return Experiment(name=name, source="path:wealth-ab", step="offer", variants=variants,
                      control=variants[0].name, holdout=holdout,
                      goal=goal or Goal(event="purchase.wealth", within_days=14), planned_sample=planned,
                      alpha=alpha)
