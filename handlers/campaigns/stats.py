"""The statistics of an experiment report, from scipy (no hand-rolled distributions).

* A conversion rate's interval: Wilson's score interval (``scipy.stats.binomtest(...).
  proportion_ci(method="wilson")``), sound at small counts and rates near 0 where the normal
  approximation is not.
* A variant against the control: the two-proportion z-test with the pooled rate, computed as
  Pearson's chi-square on the 2×2 table without continuity correction
  (``scipy.stats.chi2_contingency(correction=False)``; the same p-value, z² = χ²).
* The planned sample per arm for a baseline rate, an absolute minimum detectable effect, alpha
  (two-sided) and power: the normal-approximation formula for two proportions (Fleiss), with the
  quantiles from ``scipy.stats.norm``.
"""

from __future__ import annotations

import math
from types import ModuleType


def _scipy_stats() -> ModuleType:
    # Imported on first use, not with the service: scipy.stats is a fifth of the service's import
    # time, and a restart after a crash must be quick (welcome codes live 20 s); only reports and
    # the sample-size check of an experiment need it.
    import scipy.stats

    return scipy.stats

CONFIDENCE = 0.95


def wilson_interval(converted: int, exposed: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of ``converted / exposed``; None with nobody exposed."""
    if exposed <= 0:
        return None
    ci = _scipy_stats().binomtest(converted, exposed).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def two_proportion_p(converted_a: int, exposed_a: int, converted_b: int, exposed_b: int) -> float | None:
    """Two-sided p-value that both arms convert at the same rate; None when an arm is empty.

    With no conversion at all (or everyone converted) the table has an empty column and there is
    no evidence of any difference: 1.0.
    """
    if exposed_a <= 0 or exposed_b <= 0:
        return None
    converted = converted_a + converted_b
    if converted == 0 or converted == exposed_a + exposed_b:
        return 1.0
    table = [[converted_a, exposed_a - converted_a], [converted_b, exposed_b - converted_b]]
    return float(_scipy_stats().chi2_contingency(table, correction=False).pvalue)


def sample_size(baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Customers per arm to detect ``baseline`` → ``baseline + mde`` (two-sided ``alpha``, ``power``)."""
    p1, p2 = baseline, baseline + mde
    mean = (p1 + p2) / 2
    norm = _scipy_stats().norm
    z_alpha = float(norm.ppf(1 - alpha / 2))
    z_beta = float(norm.ppf(power))
    n = (z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / mde**2
    return math.ceil(n)
