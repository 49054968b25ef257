"""Rank agreement between a proxy and full-data training: pure functions on two score arrays.

Rank statistics come from ``scipy.stats``; what scipy lacks -- top-k overlap with explicit ties,
the small-sample rules, the bootstrap that tolerates degenerate resamples -- is here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

# Below these sizes a figure says more about chance than about the proxy: reported as n/a.
MIN_SPEARMAN = 3
MIN_TOP_RHO = 5  # "rho in top-10 %" needs at least this many architectures in the top 10 %


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho (ties share their average rank) and its two-sided p-value."""
    if len(x) < MIN_SPEARMAN or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    res = stats.spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < MIN_SPEARMAN:
        return float("nan")
    return float(stats.kendalltau(x, y, variant="b").statistic)


def bootstrap_spearman_ci(
    x: np.ndarray, y: np.ndarray, samples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of rho, resampling architectures (pairs) with replacement.

    scipy.stats.bootstrap would return NaN whenever one resample is constant, which happens
    often at the small n of a budgeted ground truth; such resamples are skipped here instead."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < MIN_SPEARMAN:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        xs, ys = x[idx], y[idx]
        if np.ptp(xs) > 0 and np.ptp(ys) > 0:
            rhos.append(stats.spearmanr(xs, ys).statistic)
    if not rhos:
        return float("nan"), float("nan")
    lo, hi = np.quantile(rhos, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def top_set(values: np.ndarray, k: int) -> set[int]:
    """Indices of the k best, ties included: every index scoring at least the k-th best value."""
    if k < 1 or len(values) == 0:
        return set()
    kth = np.sort(values)[::-1][min(k, len(values)) - 1]
    return set(np.flatnonzero(values >= kth).tolist())


def top_k_overlap(proxy: np.ndarray, full: np.ndarray, k: int) -> float:
    """Share of the proxy's k best that are among full training's k best, ties counted on both
    sides (so a tie at the boundary never decides the figure by index order), capped at 1.
    n/a unless there are at least 2k architectures: with fewer, most sets overlap by chance."""
    proxy, full = np.asarray(proxy, float), np.asarray(full, float)
    if k < 1 or len(proxy) < 2 * k:
        return float("nan")
    return min(1.0, len(top_set(proxy, k) & top_set(full, k)) / k)


def top10pct_k(n: int) -> int:
    return max(1, math.ceil(0.1 * n))


@dataclass(frozen=True)
class Agreement:
    """Estimates over an unbiased sample of architectures scored by both (n of them)."""

    n: int
    spearman: float
    spearman_p: float
    spearman_ci95: tuple[float, float]
    kendall_tau: float
    top5_overlap: float
    top10pct_k: int
    top10pct_overlap: float
    spearman_top10pct: float  # within the best 10 % by full-data accuracy; n/a below MIN_TOP_RHO

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def agreement(proxy: np.ndarray, full: np.ndarray, seed: int = 0) -> Agreement:
    proxy, full = np.asarray(proxy, float), np.asarray(full, float)
    n = len(proxy)
    rho, p = spearman(proxy, full)
    k10 = top10pct_k(n)
    top_full = sorted(top_set(full, k10))
    rho_top = spearman(proxy[top_full], full[top_full])[0] if len(top_full) >= MIN_TOP_RHO else float("nan")
    return Agreement(
        n=n,
        spearman=rho,
        spearman_p=p,
        spearman_ci95=bootstrap_spearman_ci(proxy, full, seed=seed),
        kendall_tau=kendall_tau_b(proxy, full),
        top5_overlap=top_k_overlap(proxy, full, 5),
        top10pct_k=k10,
        top10pct_overlap=top_k_overlap(proxy, full, k10) if n >= 10 else float("nan"),
        spearman_top10pct=rho_top,
    )


@dataclass(frozen=True)
class Ceiling:
    """Spearman between two seeds of the same full-data recipe over the same architectures."""

    n: int
    seeds: tuple[int, int]
    spearman: float
    spearman_ci95: tuple[float, float]
    seed_sd: float  # mean over architectures of the std of full-data accuracy across seeds

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def noise_ceiling(per_seed: dict[str, dict[int, float]], seed: int = 0) -> Ceiling | None:
    """From architectures with at least two seeds; the two seeds most of them share."""
    multi = {a: s for a, s in per_seed.items() if len(s) >= 2}
    if not multi:
        return None
    counts: dict[tuple[int, int], int] = {}
    for seeds in multi.values():
        ordered = sorted(seeds)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                counts[(a, b)] = counts.get((a, b), 0) + 1
    pair = max(counts, key=lambda k: (counts[k], -k[0], -k[1]))
    archs = sorted(a for a, s in multi.items() if pair[0] in s and pair[1] in s)
    x = np.array([multi[a][pair[0]] for a in archs])
    y = np.array([multi[a][pair[1]] for a in archs])
    sd = float(np.mean([np.std(list(s.values()), ddof=1) for s in multi.values()]))
    return Ceiling(len(archs), pair, spearman(x, y)[0], bootstrap_spearman_ci(x, y, seed=seed), sd)


@dataclass(frozen=True)
class Confirmation:
    """The proxy's top-k trained on full data: the search's winner and how far it is from the best."""

    k: int  # of the proxy's top-k, how many have full-data results
    winner: str | None
    winner_full_acc: float
    best_known: str | None
    best_known_full_acc: float
    n_known: int  # architectures of the space with full-data results (the best is among these)
    regret: float  # best known minus the winner: a lower bound on the true regret

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def confirmation(proxy_top: list[str], full: dict[str, float]) -> Confirmation:
    known_top = [a for a in proxy_top if a in full]
    best = max(full, key=lambda a: (full[a], a)) if full else None
    win = max(known_top, key=lambda a: (full[a], a)) if known_top else None
    nan = float("nan")
    return Confirmation(
        k=len(known_top),
        winner=win,
        winner_full_acc=full[win] if win else nan,
        best_known=best,
        best_known_full_acc=full[best] if best else nan,
        n_known=len(full),
        regret=(full[best] - full[win]) if (best and win) else nan,
    )


def spearman_brown(r: float, k: int) -> float:
    """Reliability of the mean of ``k`` replicates whose pairwise agreement is ``r``: the ceiling
    for a proxy scored against a ``k``-seed mean when seed-vs-seed agreement is ``r``."""
    if k < 1 or math.isnan(r):
        return float("nan")
    return k * r / (1 + (k - 1) * r)


def top_k_indices(full: np.ndarray, k: int) -> np.ndarray:
    """The k best by full-data accuracy (ties broken by index, so exactly k; all when k >= n)."""
    order = np.argsort(-np.asarray(full, float), kind="stable")
    return np.sort(order[: max(0, k)])


def spearman_top_k(proxy: np.ndarray, full: np.ndarray, k: int) -> float:
    """Spearman within the true top ``k`` (FTD's Table 5 measure); n/a below MIN_TOP_RHO or k > n."""
    proxy, full = np.asarray(proxy, float), np.asarray(full, float)
    if k < MIN_TOP_RHO or k > len(full):
        return float("nan")
    idx = top_k_indices(full, k)
    return spearman(proxy[idx], full[idx])[0]


def top_k_sizes(n: int) -> dict[str, int]:
    """The top-k sizes a report gives: 10 and 20 architectures, and 10 % / 20 % of n."""
    return {"top10": 10, "top20": 20, "top10pct": math.ceil(0.1 * n), "top20pct": math.ceil(0.2 * n)}


@dataclass(frozen=True)
class SeedCeilings:
    """Ceilings on the footing of each way a proxy is scored, whole table and within the top k.

    ``single``: seed-vs-seed Spearman (read a proxy scored against one seed at a time against it);
    ``mean``: its Spearman–Brown value for the K-seed mean (read a proxy scored against the mean
    against it). Top-k sets are chosen by the seed mean, as the proxies' top-k figures are."""

    n: int
    k_seeds: int
    single: float
    mean: float
    single_top: dict[str, float]
    mean_top: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _pairwise_seed_rho(per_seed: np.ndarray, idx: np.ndarray) -> float:
    """Mean Spearman over every pair of seed columns, on the rows ``idx``."""
    k = per_seed.shape[1]
    rhos = [spearman(per_seed[idx, i], per_seed[idx, j])[0] for i in range(k) for j in range(i + 1, k)]
    rhos = [r for r in rhos if not math.isnan(r)]
    return float(np.mean(rhos)) if rhos else float("nan")


def seed_ceilings(per_seed: np.ndarray) -> SeedCeilings | None:
    """``per_seed``: (n architectures, K seeds) of full-data accuracy, every seed present."""
    per_seed = np.asarray(per_seed, float)
    if per_seed.ndim != 2 or per_seed.shape[1] < 2 or per_seed.shape[0] < MIN_SPEARMAN:
        return None
    n, k = per_seed.shape
    mean = per_seed.mean(axis=1)
    single = _pairwise_seed_rho(per_seed, np.arange(n))
    single_top, mean_top = {}, {}
    for name, size in top_k_sizes(n).items():
        r = _pairwise_seed_rho(per_seed, top_k_indices(mean, size)) if MIN_TOP_RHO <= size <= n else float("nan")
        single_top[name], mean_top[name] = r, spearman_brown(r, k)
    return SeedCeilings(n, k, single, spearman_brown(single, k), single_top, mean_top)


def per_seed_spearman(proxy: np.ndarray, per_seed: np.ndarray) -> float:
    """Mean over seeds of Spearman(proxy, that seed): the figure to read against the single-seed ceiling."""
    rhos = [spearman(np.asarray(proxy, float), col)[0] for col in np.asarray(per_seed, float).T]
    rhos = [r for r in rhos if not math.isnan(r)]
    return float(np.mean(rhos)) if rhos else float("nan")


@dataclass(frozen=True)
class PairedDelta:
    """rho(A) - rho(B) on the same architectures, with a paired bootstrap over architectures."""

    a: str
    b: str
    measure: str  # "spearman" (whole table) or a top-k name ("top10", "top20pct", ...)
    n: int
    delta: float
    ci95: tuple[float, float]
    p_a_beats_b: float  # share of resamples in which A's rho exceeds B's

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def paired_delta(
    a: np.ndarray,
    b: np.ndarray,
    full: np.ndarray,
    names: tuple[str, str] = ("a", "b"),
    k: int | None = None,
    measure: str = "spearman",
    samples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDelta:
    """Both proxies are scored on every resample of architectures, so what they share cancels.

    With ``k``, the statistic is Spearman within the true top k and the resampling is over those k
    architectures (conditional on the top set: resampling the whole table would change which
    architectures are at the top from one resample to the next)."""
    a, b, full = (np.asarray(v, float) for v in (a, b, full))
    if k is not None:
        if k < MIN_TOP_RHO or k > len(full):
            nan = float("nan")
            return PairedDelta(names[0], names[1], measure, 0, nan, (nan, nan), nan)
        idx = top_k_indices(full, k)
        a, b, full = a[idx], b[idx], full[idx]
    n = len(full)
    if n < 3:  # no ground truth in common (e.g. two searches without a table): nothing to compare
        nan = float("nan")
        return PairedDelta(names[0], names[1], measure, n, nan, (nan, nan), nan)
    delta = spearman(a, full)[0] - spearman(b, full)[0]
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(samples):
        i = rng.integers(0, n, n)
        if np.ptp(full[i]) == 0 or np.ptp(a[i]) == 0 or np.ptp(b[i]) == 0:
            continue  # a degenerate resample has no rank order to compare
        deltas.append(stats.spearmanr(a[i], full[i]).statistic - stats.spearmanr(b[i], full[i]).statistic)
    if not deltas:
        nan = float("nan")
        return PairedDelta(names[0], names[1], measure, n, delta, (nan, nan), nan)
    d = np.asarray(deltas)
    lo, hi = np.quantile(d, [(1 - level) / 2, 1 - (1 - level) / 2])
    return PairedDelta(names[0], names[1], measure, n, float(delta), (float(lo), float(hi)), float(np.mean(d > 0)))
