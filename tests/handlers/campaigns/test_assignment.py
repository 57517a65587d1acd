"""Assignment is a pure function of (experiment, customer): the same arm on every call, in every
process, and the arms' shares follow the weights and the holdout."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from scipy.stats import chisquare

from handlers.campaigns.assignment import assign
from handlers.campaigns.experiments import HOLDOUT, Variant
from tests.handlers.campaigns.support import experiment

IDS = [f"wm{i:06d}" for i in range(10_000)]  # a fixed set: the test's outcome never changes
THREE = (Variant("a", 50), Variant("b", 30, "x"), Variant("c", 20, "y"))


def test_the_same_customer_gets_the_same_arm_every_time() -> None:
    e = experiment(holdout=10, variants=THREE)
    first = [assign(e, c) for c in IDS[:500]]
    again = [assign(experiment(holdout=10, variants=THREE), c) for c in IDS[:500]]  # a fresh definition
    assert first == again
    # Another experiment is another, independent draw.
    other = [assign(experiment("another", holdout=10, variants=THREE), c) for c in IDS[:500]]
    assert other != first


def test_shares_follow_weights_and_holdout_over_10000_customers() -> None:
    e = experiment(holdout=10, variants=THREE)
    counts = Counter(assign(e, c) for c in IDS)
    arms = [HOLDOUT, "a", "b", "c"]
    # holdout 10 %; the remaining 90 % split 50:30:20.
    shares = [0.10, 0.90 * 0.5, 0.90 * 0.3, 0.90 * 0.2]
    observed = [counts[a] for a in arms]
    assert sum(observed) == len(IDS)
    result = chisquare(observed, [s * len(IDS) for s in shares])
    assert result.pvalue > 0.01, (observed, result)
    # And a visibly wrong split is rejected by the same test (the check has teeth).
    assert chisquare(observed, [0.25 * len(IDS)] * 4).pvalue < 1e-6


def test_no_holdout_means_everyone_gets_a_variant() -> None:
    e = experiment(holdout=0)
    assert HOLDOUT not in {assign(e, c) for c in IDS[:2000]}


def test_another_process_assigns_the_same_arms() -> None:
    """A restart or a second instance: Python's per-process hash seed plays no part."""
    e = experiment(holdout=10, variants=THREE)
    code = (
        "from handlers.campaigns.assignment import assign\n"
        "from handlers.campaigns.experiments import Variant\n"
        "from tests.handlers.campaigns.support import experiment\n"
        "e = experiment(holdout=10, variants=(Variant('a', 50), Variant('b', 30, 'x'), Variant('c', 20, 'y')))\n"
        "print(','.join(assign(e, f'wm{i:06d}') for i in range(300)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}, cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip().split(",") == [assign(e, c) for c in IDS[:300]]
