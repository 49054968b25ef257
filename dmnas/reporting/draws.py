"""A proxy *method* is a random variable: measures of the top, their ceilings, and intervals that
resample both the architectures and the method's own draws.

One draw of a method (one random subset, one condensed set, one training seed) answers "did these
two sets differ?", not "is method A better than method B?": on 24 architectures outside the
repository, three draws of the random subset gave top-12 Spearman 0.80 / 0.73 / 0.57
(``shared`` ranking notes). So every interval here is a two-level bootstrap: each resample draws
the architectures with replacement *and* each method's draws with replacement, and the statistic
is the mean over the resampled draws. Pure functions on arrays; ``scipy.stats.weightedtau`` for
the weighted Kendall tau.

Measures (higher is better unless said), each a function ``(proxy, truth) -> float``:

- ``spearman``: Spearman over all architectures given;
- ``weighted_tau``: Kendall tau with hyperbolic weights 1/(r+1) on the *truth's* rank r (Vigna
  2015), so a swap near the true top costs most;
- ``recall_top{k}_in{K}``: share of the true top k inside the proxy's top K;
- ``regret_at{K}``: accuracy points lost by confirming the proxy's top K on full data and keeping
  the best of them, against the best architecture given (lower is better);
- ``spearman_top{k}``: Spearman within the true top k (FTD's comparison; noisy at small k).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats

Measure = Callable[[np.ndarray, np.ndarray], float]
LOWER_IS_BETTER_PREFIX = "regret"


def ranks_desc(values: np.ndarray) -> np.ndarray:
    """0 for the best value, 1 for the next, ... (ties broken by position, stable)."""
    order = np.argsort(-np.asarray(values, float), kind="stable")
    ranks = np.empty(len(order), dtype=int)
    ranks[order] = np.arange(len(order))
    return ranks


def weighted_tau(proxy: np.ndarray, truth: np.ndarray) -> float:
    """Weighted Kendall tau, hyperbolic weights on the truth's rank (the truth's best weighs 1,
    its second 1/2, ...); NaN when either side is constant."""
    proxy, truth = np.asarray(proxy, float), np.asarray(truth, float)
    if len(truth) < 3 or np.ptp(proxy) == 0 or np.ptp(truth) == 0:
        return float("nan")
    return float(stats.weightedtau(truth, proxy, rank=ranks_desc(truth)).statistic)


def top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values (ties broken by position, stable)."""
    return np.argsort(-np.asarray(values, float), kind="stable")[:k]


def recall_top(proxy: np.ndarray, truth: np.ndarray, k: int, big_k: int) -> float:
    """Share of the true top ``k`` that the proxy puts into its top ``big_k``."""
    if k < 1 or big_k < 1 or len(truth) < max(k, big_k):
        return float("nan")
    return len(set(top_indices(truth, k).tolist()) & set(top_indices(proxy, big_k).tolist())) / k


def regret_at(proxy: np.ndarray, truth: np.ndarray, big_k: int) -> float:
    """Points (x100 of an accuracy in [0, 1]) between the best truth given and the best truth among
    the proxy's top ``big_k``: what a user loses after confirming those on full data."""
    truth = np.asarray(truth, float)
    if len(truth) < big_k or big_k < 1:
        return float("nan")
    return float(100 * (truth.max() - truth[top_indices(proxy, big_k)].max()))


def spearman_all(proxy: np.ndarray, truth: np.ndarray) -> float:
    if len(truth) < 3 or np.ptp(proxy) == 0 or np.ptp(truth) == 0:
        return float("nan")
    return float(stats.spearmanr(proxy, truth).statistic)


def spearman_top(proxy: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Spearman within the true top ``k`` (NaN below 5 architectures or when one side is constant)."""
    if k < 5 or len(truth) < k:
        return float("nan")
    idx = top_indices(truth, k)
    return spearman_all(np.asarray(proxy, float)[idx], np.asarray(truth, float)[idx])


def top_measures(n: int, ks: Sequence[int] = (5, 10)) -> dict[str, Measure]:
    """The measures of the top for a table of ``n`` architectures (k and K that fit in n)."""
    out: dict[str, Measure] = {"spearman": spearman_all, "weighted_tau": weighted_tau}
    for k in ks:
        for big_k in (k, 2 * k):
            if big_k <= n:
                out[f"recall_top{k}_in{big_k}"] = lambda p, t, k=k, K=big_k: recall_top(p, t, k, K)
    for big_k in (1, 3, 5):
        if big_k <= n:
            out[f"regret_at{big_k}"] = lambda p, t, K=big_k: regret_at(p, t, K)
    for k in ks:
        if 5 <= k <= n:
            out[f"spearman_top{k}"] = lambda p, t, k=k: spearman_top(p, t, k)
    return out


def lower_is_better(measure: str) -> bool:
    return measure.startswith(LOWER_IS_BETTER_PREFIX)


@dataclass(frozen=True)
class DrawSummary:
    """One measure of one method over its draws: per-draw values, their mean and sd, and the
    two-level (architectures x draws) percentile interval of the mean."""

    measure: str
    draws: list[float]
    mean: float
    sd: float
    ci95: tuple[float, float]
    n_archs: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PairedDraws:
    """Method A minus method B on one measure, paired on architectures, draws resampled within each
    method; ``p_a_beats_b`` counts "better" in the measure's direction (lower regret is better)."""

    a: str
    b: str
    measure: str
    delta: float
    ci95: tuple[float, float]
    p_a_beats_b: float
    levels: str = "archs x draws"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _mean_over(draws: np.ndarray, truth: np.ndarray, measure: Measure, arch_idx: np.ndarray, draw_idx: np.ndarray) -> float:
    vals = [measure(draws[d][arch_idx], truth[arch_idx]) for d in draw_idx]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _interval(values: list[float], level: float) -> tuple[float, float]:
    vals = np.asarray([v for v in values if not math.isnan(v)])
    if len(vals) == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(vals, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def summarise_draws(
    draws: np.ndarray,
    truth: np.ndarray,
    measure: Measure,
    name: str,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> DrawSummary:
    """``draws``: (D, n) scores of one method's D draws on n architectures; ``truth``: (n,)."""
    draws, truth = np.atleast_2d(np.asarray(draws, float)), np.asarray(truth, float)
    d, n = draws.shape
    per_draw = [measure(row, truth) for row in draws]
    finite = [v for v in per_draw if not math.isnan(v)]
    mean = float(np.mean(finite)) if finite else float("nan")
    sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
    rng = np.random.default_rng(seed)
    boots = [_mean_over(draws, truth, measure, rng.integers(0, n, n), rng.integers(0, d, d)) for _ in range(samples)]
    return DrawSummary(name, [round(v, 6) for v in per_draw], mean, sd, _interval(boots, level), n)


def paired_draws(
    a: np.ndarray,
    b: np.ndarray,
    truth: np.ndarray,
    measure: Measure,
    names: tuple[str, str, str],
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDraws:
    """Mean-over-draws of A minus that of B, with the two-level bootstrap: the same resample of
    architectures for both, each method's draws resampled on their own."""
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    truth = np.asarray(truth, float)
    n = len(truth)
    all_a, all_b = np.arange(len(a)), np.arange(len(b))
    every = np.arange(n)
    delta = _mean_over(a, truth, measure, every, all_a) - _mean_over(b, truth, measure, every, all_b)
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        deltas.append(
            _mean_over(a, truth, measure, idx, rng.integers(0, len(a), len(a)))
            - _mean_over(b, truth, measure, idx, rng.integers(0, len(b), len(b)))
        )
    finite = np.asarray([x for x in deltas if not math.isnan(x)])
    better = (finite < 0) if lower_is_better(names[2]) else (finite > 0)
    p = float(np.mean(better)) if len(finite) else float("nan")
    return PairedDraws(names[0], names[1], names[2], float(delta), _interval(deltas, level), p)


def seed_ceiling(per_seed: np.ndarray, measure: Measure) -> float:
    """A measure's ceiling, measured the same way between ground-truth seeds: the mean over ordered
    pairs of seeds (i, j) of ``measure(seed i as the proxy, seed j as the truth)``. ``per_seed``:
    (S, n) accuracies, S >= 2. It is the ceiling of a proxy read against *one* seed; against the
    mean of S seeds the truth is steadier and a proxy can exceed it."""
    per_seed = np.asarray(per_seed, float)
    vals = [
        measure(per_seed[i], per_seed[j]) for i in range(len(per_seed)) for j in range(len(per_seed)) if i != j
    ]
    vals = [v for v in vals if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")
