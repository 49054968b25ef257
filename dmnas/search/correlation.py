"""Rank agreement between a proxy and full-data training: pure functions on two score arrays."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    # Boundaries of runs of equal values in sorted order.
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho (Pearson of average ranks) and its two-sided p-value (t approximation)."""
    n = len(x)
    rho = _pearson(average_ranks(x), average_ranks(y))
    if n < 3 or math.isnan(rho):
        return rho, float("nan")
    if abs(rho) >= 1.0:
        return rho, 0.0
    t = rho * math.sqrt((n - 2) / (1 - rho * rho))
    return rho, float(2 * stats.t.sf(abs(t), n - 2))


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b (tie-corrected), O(n^2) in vectorised numpy: fine for a few thousand nets."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), k=1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    concordant_minus_discordant = float((dx * dy).sum())
    n_x, n_y = float((dx != 0).sum()), float((dy != 0).sum())
    return concordant_minus_discordant / math.sqrt(n_x * n_y) if n_x and n_y else float("nan")


def bootstrap_spearman_ci(x: np.ndarray, y: np.ndarray, samples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of Spearman's rho over architectures."""
    rng = np.random.default_rng(seed)
    n = len(x)
    rhos = []
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        r = _pearson(average_ranks(x[idx]), average_ranks(y[idx]))
        if not math.isnan(r):
            rhos.append(r)
    if not rhos:
        return float("nan"), float("nan")
    lo, hi = np.quantile(rhos, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def top_k_overlap(proxy: np.ndarray, full: np.ndarray, k: int) -> float:
    """Share of the proxy's k best that are among full training's k best."""
    k = max(1, min(k, len(proxy)))
    top_p = set(np.argsort(-proxy, kind="mergesort")[:k].tolist())
    top_f = set(np.argsort(-full, kind="mergesort")[:k].tolist())
    return len(top_p & top_f) / k


@dataclass(frozen=True)
class Agreement:
    n: int
    spearman: float
    spearman_p: float
    spearman_ci95: tuple[float, float]
    kendall_tau: float
    top5_overlap: float
    top10_overlap: float
    top10pct_overlap: float
    spearman_top10pct: float  # within the best 10% by full-data accuracy
    proxy_pick: str
    proxy_pick_full_acc: float
    best_arch: str
    best_full_acc: float
    regret: float  # best full accuracy minus the proxy pick's full accuracy

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def agreement(names: list[str], proxy: np.ndarray, full: np.ndarray, seed: int = 0) -> Agreement:
    """All rank-agreement numbers of the report for architectures scored by both."""
    proxy, full = np.asarray(proxy, float), np.asarray(full, float)
    n = len(names)
    rho, p = spearman(proxy, full)
    k10 = max(1, int(round(0.1 * n)))
    top_full = np.argsort(-full, kind="mergesort")[: max(k10, 3)]
    rho_top = spearman(proxy[top_full], full[top_full])[0] if len(top_full) >= 3 else float("nan")
    pick, best = int(np.argmax(proxy)), int(np.argmax(full))
    return Agreement(
        n=n, spearman=rho, spearman_p=p, spearman_ci95=bootstrap_spearman_ci(proxy, full, seed=seed),
        kendall_tau=kendall_tau_b(proxy, full),
        top5_overlap=top_k_overlap(proxy, full, 5), top10_overlap=top_k_overlap(proxy, full, 10),
        top10pct_overlap=top_k_overlap(proxy, full, k10), spearman_top10pct=rho_top,
        proxy_pick=names[pick], proxy_pick_full_acc=float(full[pick]),
        best_arch=names[best], best_full_acc=float(full[best]), regret=float(full[best] - full[pick]),
    )
