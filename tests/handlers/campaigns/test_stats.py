"""The report's statistics against textbook values and formulas computed here, independently."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from handlers.campaigns.stats import sample_size, two_proportion_p, wilson_interval


def test_sample_size_matches_the_textbook() -> None:
    # Fleiss (Statistical Methods for Rates and Proportions): 10 % → 15 %, alpha 0.05 two-sided,
    # power 0.80, without continuity correction: 685.6 → 686 per group.
    assert sample_size(0.10, 0.05, alpha=0.05, power=0.8) == 686
    # A smaller effect needs more: 5 % → 7 %.
    assert sample_size(0.05, 0.02) > sample_size(0.05, 0.04)


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 40), (120, 1000), (40, 40)])
def test_wilson_interval_is_the_textbook_formula(k: int, n: int) -> None:
    z = norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(k, n) or (None, None)
    assert low == pytest.approx(max(0.0, centre - half), abs=1e-9)
    assert high == pytest.approx(min(1.0, centre + half), abs=1e-9)
    assert wilson_interval(0, 0) is None


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(30, 500, 50, 500), (5, 40, 6, 45), (200, 2000, 260, 2100)])
def test_two_proportion_p_is_the_pooled_z_test(k1: int, n1: int, k2: int, n2: int) -> None:
    pooled = (k1 + k2) / (n1 + n2)
    z = (k1 / n1 - k2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert two_proportion_p(k1, n1, k2, n2) == pytest.approx(2 * norm.sf(abs(z)), rel=1e-9)


def test_no_conversion_anywhere_is_no_evidence() -> None:
    assert two_proportion_p(0, 100, 0, 120) == 1.0
    assert two_proportion_p(3, 0, 1, 10) is None
