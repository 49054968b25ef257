"""Rank statistics against scipy and hand-made orderings."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import stats

from dmnas.reporting.stats import kendall_tau_b, spearman, top_k_overlap



# ---------------------------------------------------------------- correlation

RNG = np.random.default_rng(0)
CASES = [RNG.normal(size=30), np.array([1, 2, 2, 3, 3, 3, 4, 5.0]), RNG.integers(0, 4, 25).astype(float)]


@pytest.mark.parametrize("x", CASES)
def test_spearman_and_kendall_are_scipys(x: np.ndarray) -> None:
    y = np.round(x + RNG.normal(scale=1.0, size=len(x)), 1)  # ties on both sides
    rho, p = spearman(x, y)
    ref = stats.spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-6)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_perfect_reversed_and_tied_orderings() -> None:
    x = np.arange(10.0)
    assert spearman(x, x)[0] == pytest.approx(1.0) and kendall_tau_b(x, x) == pytest.approx(1.0)
    assert spearman(x, -x)[0] == pytest.approx(-1.0) and kendall_tau_b(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(10))[0])
    assert top_k_overlap(x, x, 3) == 1.0 and top_k_overlap(x, -x, 3) == 0.0
