"""Which architectures get full-data training: an unbiased sample to estimate rank agreement,
and the proxy's top picks to confirm the winner, kept apart.

Training the proxy's own favourites and then computing Spearman over them measures the proxy on
the part of the space it already likes. Estimates come only from :func:`systematic_sample`, in
which every architecture has the same inclusion probability whatever the proxy scored it;
:func:`top_k` picks are *confirmation* (did the search find a good one, and how far from the best).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


def proxy_order(scores: dict[str, float]) -> list[str]:
    """Architectures best-first; ties broken by name, so the order is reproducible."""
    return sorted(scores, key=lambda a: (-scores[a], a))


def systematic_sample(order: list[str], n: int, seed: int) -> list[str]:
    """``n`` of ``order``, one from each of ``n`` equal stretches of it, with a single random
    offset: every element is included with probability exactly ``n / len(order)`` (the points
    ``u + i * N/n`` are ``N/n >= 1`` apart, so element ``j`` is hit iff one lands in ``[j, j+1)``,
    which happens with probability ``1 / (N/n)``). Stratified along ``order`` -- pass the proxy
    ranking to spread the sample over good and bad -- yet unweighted estimates stay unbiased."""
    total = len(order)
    n = max(0, min(n, total))
    if n == 0:
        return []
    step = total / n
    offset = float(np.random.default_rng(seed).uniform(0.0, step))
    return [order[min(total - 1, math.floor(offset + i * step))] for i in range(n)]


def top_k(scores: dict[str, float], k: int) -> list[str]:
    return proxy_order(scores)[: max(0, k)]


@dataclass(frozen=True)
class GroundTruthPlan:
    """What a search trains on full data, and why."""

    sample: list[str]  # unbiased: the only source of rho, tau and their intervals
    confirm: list[str]  # the proxy's top-k: confirmation of the pick and its regret
    space_size: int
    seeds: list[int]
    method: str = "systematic over the proxy ranking, random offset"

    @property
    def inclusion_probability(self) -> float:
        return len(self.sample) / self.space_size if self.space_size else float("nan")

    def jobs(self) -> list[tuple[str, int]]:
        """Every (architecture, seed) to know, each once, sample first."""
        seen: dict[tuple[str, int], None] = {}
        for arch in [*self.sample, *self.confirm]:
            for s in self.seeds:
                seen[(arch, s)] = None
        return list(seen)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "inclusion_probability": self.inclusion_probability}


def plan_ground_truth(
    scores: dict[str, float], space_size: int, n_sample: int, n_confirm: int, seeds: list[int], seed: int
) -> GroundTruthPlan:
    order = proxy_order(scores)
    return GroundTruthPlan(
        systematic_sample(order, n_sample, seed), top_k(scores, n_confirm), len(order) or space_size, seeds
    )
