"""Comparing like with like: Spearman–Brown ceilings, paired bootstrap of two proxies, top-k Spearman."""

from __future__ import annotations

import numpy as np
import pytest

from dmnas.reporting.stats import (
    paired_delta,
    per_seed_spearman,
    seed_ceilings,
    spearman,
    spearman_brown,
    spearman_top_k,
    top_k_indices,
    top_k_sizes,
)


def test_spearman_brown_against_a_hand_computation() -> None:
    # K r / (1 + (K - 1) r): two seeds agreeing at 0.909 -> 1.818 / 1.909
    assert spearman_brown(0.909, 2) == pytest.approx(1.818 / 1.909)
    assert spearman_brown(0.5, 3) == pytest.approx(1.5 / 2.0)
    assert spearman_brown(0.8, 1) == pytest.approx(0.8)
    assert spearman_brown(1.0, 5) == pytest.approx(1.0)


def test_paired_bootstrap_identical_proxies_cover_zero() -> None:
    rng = np.random.default_rng(0)
    full = rng.normal(size=40)
    proxy = full + rng.normal(scale=0.7, size=40)
    d = paired_delta(proxy, proxy.copy(), full, ("a", "b"), samples=500)
    assert d.delta == 0 and d.ci95[0] <= 0 <= d.ci95[1] and d.p_a_beats_b == 0.0


def test_paired_bootstrap_excludes_zero_for_a_proxy_and_its_negation() -> None:
    rng = np.random.default_rng(1)
    full = rng.normal(size=30)
    proxy = full + rng.normal(scale=0.5, size=30)
    d = paired_delta(proxy, -proxy, full, ("proxy", "negated"), samples=500)
    assert d.delta > 1 and d.ci95[0] > 0 and d.p_a_beats_b == 1.0
    assert paired_delta(-proxy, proxy, full, samples=500).ci95[1] < 0


def test_paired_bootstrap_is_sharper_than_two_intervals() -> None:
    """Two correlated proxies a little apart: their paired interval is narrower than either
    proxy's own interval would suggest (what they share cancels)."""
    from dmnas.reporting.stats import bootstrap_spearman_ci

    rng = np.random.default_rng(2)
    full = rng.normal(size=40)
    common = full + rng.normal(scale=0.6, size=40)
    a, b = common + rng.normal(scale=0.1, size=40), common + rng.normal(scale=0.3, size=40)
    d = paired_delta(a, b, full, samples=500)
    lo, hi = bootstrap_spearman_ci(a, full, samples=500)
    assert d.ci95[1] - d.ci95[0] < (hi - lo)


# A hand-made table: 8 architectures, two seeds; the top 5 by the seed mean are a0..a4.
SEED0 = np.array([0.95, 0.94, 0.93, 0.92, 0.91, 0.60, 0.50, 0.40])
SEED1 = np.array([0.94, 0.95, 0.92, 0.93, 0.91, 0.55, 0.52, 0.41])


def test_top_k_spearman_on_a_hand_made_table() -> None:
    full = (SEED0 + SEED1) / 2
    assert list(top_k_indices(full, 5)) == [0, 1, 2, 3, 4]
    proxy = np.array([5, 4, 3, 2, 1, 100, 99, 98.0])  # right order within the top, wrong elsewhere
    assert spearman_top_k(proxy, full, 5) == pytest.approx(spearman(proxy[:5], full[:5])[0])
    # full = [0.945, 0.945, 0.925, 0.925, 0.91]: ranks 1.5, 1.5, 3.5, 3.5, 5 against the proxy's 1..5
    assert spearman_top_k(proxy, full, 5) == pytest.approx(0.9486832980505138)
    assert np.isnan(spearman_top_k(proxy, full, 4))  # below 5 architectures: n/a
    assert spearman(proxy, full)[0] < 0  # the whole table disagrees


def test_seed_ceilings_on_a_hand_made_table() -> None:
    per_seed = np.stack([SEED0, SEED1], axis=1)
    c = seed_ceilings(per_seed)
    assert c.n == 8 and c.k_seeds == 2
    assert c.single == pytest.approx(spearman(SEED0, SEED1)[0])
    assert c.mean == pytest.approx(spearman_brown(c.single, 2))
    assert np.isnan(c.single_top["top10pct"])  # k = 1 < 5: n/a
    assert top_k_sizes(8) == {"top10": 10, "top20": 20, "top10pct": 1, "top20pct": 2}
    # 50 architectures: the top 10 % are a0..a4 (by the seed mean). Seed 0 ranks them 1 2 3 4 5,
    # seed 1 ranks them 2 1 4 3 5: sum d^2 = 4, rho = 1 - 6 * 4 / (5 * 24) = 0.8.
    low = np.linspace(0.3, 0.5, 45)
    big = np.stack([np.concatenate([SEED0[:5], low]), np.concatenate([SEED1[:5], low[::-1]])], axis=1)
    cb = seed_ceilings(big)
    assert cb.single_top["top10pct"] == pytest.approx(0.8)
    assert cb.mean_top["top10pct"] == pytest.approx(spearman_brown(0.8, 2))


def test_per_seed_spearman_is_the_mean_over_seeds() -> None:
    proxy = np.arange(8)[::-1].astype(float)
    per_seed = np.stack([SEED0, SEED1], axis=1)
    want = (spearman(proxy, SEED0)[0] + spearman(proxy, SEED1)[0]) / 2
    assert per_seed_spearman(proxy, per_seed) == pytest.approx(want)
