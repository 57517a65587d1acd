"""Which arm of an experiment a customer is in: a pure function of (experiment, customer).

SHA-256 of both names gives a number uniform in [0, 1): the first ``holdout`` percent is the
holdout, the rest is cut in the variants' weights, in file order. No state, no randomness: every
instance, every restart and every preview (``scrm sop plan``, the console's calendar) puts a
customer in the same arm, and renaming the experiment reshuffles everyone (a new experiment).
Changing weights mid-way moves some customers: their first exposure (``experiment_exposure``)
keeps the arm they were measured in.
"""

from __future__ import annotations

import hashlib

from .experiments import HOLDOUT, Experiment


def unit(experiment: str, customer: str) -> float:
    """A number in [0, 1) fixed by the two names (64 bits of SHA-256)."""
    digest = hashlib.sha256(f"{experiment}\x1f{customer}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment, customer: str) -> str:
    """The variant's name for ``customer``, or :data:`HOLDOUT`."""
    u = unit(experiment.name, customer)
    held = experiment.holdout / 100
    if u < held:
        return HOLDOUT
    share = (u - held) / (1 - held) * sum(v.weight for v in experiment.variants)
    upto = 0.0
    for v in experiment.variants:
        upto += v.weight
        if share < upto:
            return v.name
    return experiment.variants[-1].name  # float rounding at the very top
