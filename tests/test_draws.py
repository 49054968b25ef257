"""Draw-aware statistics: measures of the top against hand computations, and the two-level bootstrap
(architectures x draws) on cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dmnas.reporting.draws import (
    paired_draws,
    recall_top,
    regret_at,
    seed_ceiling,
    spearman_all,
    spearman_top,
    summarise_draws,
    top_measures,
    weighted_tau,
)


def test_weighted_tau_by_hand() -> None:
    # Truth ranks 0, 1, 2 weigh 1, 1/2, 1/3; a pair weighs the sum of its two weights; no ties, so
    # tau = sum(w * concordance) / sum(w).
    truth = np.array([3.0, 2.0, 1.0])
    w01, w02, w12 = 1 + 1 / 2, 1 + 1 / 3, 1 / 2 + 1 / 3
    low_swap = np.array([3.0, 1.0, 2.0])  # the 2nd and 3rd swapped
    top_swap = np.array([2.0, 3.0, 1.0])  # the 1st and 2nd swapped
    assert weighted_tau(low_swap, truth) == pytest.approx((w01 + w02 - w12) / (w01 + w02 + w12))
    assert weighted_tau(top_swap, truth) == pytest.approx((-w01 + w02 + w12) / (w01 + w02 + w12))
    assert weighted_tau(top_swap, truth) < weighted_tau(low_swap, truth)  # a swap at the top costs more
    assert weighted_tau(truth, truth) == pytest.approx(1.0)
    assert math.isnan(weighted_tau(np.ones(3), truth))


def test_recall_by_hand() -> None:
    truth = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    proxy = np.array([1.0, 5.0, 4.0, 2.0, 3.0])
    assert recall_top(proxy, truth, 2, 2) == 0.5  # true top {0, 1}, proxy's {1, 2}
    assert recall_top(proxy, truth, 2, 4) == 0.5  # proxy's top 4 leaves out 0, its worst
    assert recall_top(truth, truth, 2, 2) == 1.0
    assert math.isnan(recall_top(proxy, truth, 2, 6))


def test_regret_by_hand() -> None:
    truth = np.array([0.9, 0.8, 0.7])
    proxy = np.array([0.1, 0.5, 0.9])
    assert regret_at(proxy, truth, 1) == pytest.approx(20.0)
    assert regret_at(proxy, truth, 2) == pytest.approx(10.0)
    assert regret_at(proxy, truth, 3) == pytest.approx(0.0)


def test_spearman_top_uses_the_true_top_only() -> None:
    truth = np.arange(10.0)
    proxy = np.concatenate([np.arange(5.0)[::-1], np.arange(5.0, 10.0)])  # bottom half reversed
    assert spearman_top(proxy, truth, 5) == pytest.approx(1.0)
    assert spearman_all(proxy, truth) < 1.0


def noisy_draws(truth: np.ndarray, seeds: list[int], noise: float) -> np.ndarray:
    return np.stack([truth + np.random.default_rng(s).normal(0, noise, len(truth)) for s in seeds])


@pytest.mark.parametrize("measure", ["spearman", "weighted_tau", "recall_top5_in10", "regret_at3"])
def test_two_draws_of_one_method_overlap_zero(measure: str) -> None:
    truth = np.random.default_rng(0).normal(size=40)
    fn = top_measures(40)[measure]
    a, b = noisy_draws(truth, [1, 2, 3], 1.0), noisy_draws(truth, [4, 5, 6], 1.0)
    d = paired_draws(a, b, truth, fn, ("a", "b", measure), samples=400)
    assert d.ci95[0] <= 0 <= d.ci95[1], d


@pytest.mark.parametrize("measure", ["spearman", "weighted_tau", "recall_top5_in10", "regret_at3"])
def test_a_method_beats_its_negation(measure: str) -> None:
    truth = np.random.default_rng(0).normal(size=40)
    fn = top_measures(40)[measure]
    a = noisy_draws(truth, [1, 2, 3], 0.5)
    d = paired_draws(a, -a, truth, fn, ("a", "-a", measure), samples=400)
    lo, hi = d.ci95
    assert (hi < 0) if measure.startswith("regret") else (lo > 0), d
    assert d.p_a_beats_b > 0.97


def test_draw_summary_interval_contains_every_draw_mean_and_sees_draw_noise() -> None:
    truth = np.random.default_rng(0).normal(size=30)
    draws = noisy_draws(truth, [1, 2, 3], 1.0)
    s = summarise_draws(draws, truth, spearman_all, "spearman", samples=400)
    assert len(s.draws) == 3 and s.mean == pytest.approx(np.mean(s.draws))
    assert s.ci95[0] <= s.mean <= s.ci95[1]
    # the two-level interval is wider than one that ignores the draws (one draw, archs resampled)
    one = summarise_draws(draws[:1], truth, spearman_all, "spearman", samples=400)
    assert (s.ci95[1] - s.ci95[0]) > 0 and one.sd != one.sd  # sd of one draw is undefined (NaN)


def test_seed_ceiling_is_one_for_identical_seeds_and_lower_for_noise() -> None:
    truth = np.arange(20.0)
    assert seed_ceiling(np.stack([truth, truth]), spearman_all) == pytest.approx(1.0)
    noisy = noisy_draws(truth, [1, 2], 5.0)
    assert seed_ceiling(noisy, spearman_all) < 0.95
