"""The report's values: what a proxy scored, the ground truth, one row per proxy.

Plain data (no matplotlib, no NNI): :mod:`dmnas.reporting.build` computes these and
:mod:`dmnas.reporting.figures` draws them; :mod:`dmnas.reporting.report` holds the whole report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


from dmnas.reporting.draws import DrawSummary
from dmnas.reporting.stats import Agreement, Confirmation


@dataclass(frozen=True)
class ProxyScores:
    """One search's results: architecture -> proxy score (higher is better), plus costs."""

    label: str  # e.g. "dm ipc10 200ep (abc123)"
    experiment: str
    proxy: str
    scores: dict[str, float]
    seconds: dict[str, float]
    images: int
    failed: int
    repeats: int = 0  # architectures a tuner scored more than once (their scores are averaged)
    # Every architecture of the searched space. A tuner that visits only part of it (hyperband,
    # bohb, tpe, ...) is charged its regret against the best known anywhere in the space, not
    # only among what it visited. Empty: only the scored architectures are known to be in it.
    space: frozenset[str] = frozenset()
    # Per architecture, what its trial recorded besides the score (params, seed_scores, ...).
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    passes_per_arch: int = 0  # image passes of one trial (0: a zero-cost score)
    tuner: str = "grid"
    concurrency: int = 1
    space_name: str = ""

    @property
    def space_size(self) -> int:
        return len(self.space)


@dataclass(frozen=True)
class Row:
    scores: ProxyScores
    estimate: Agreement | None
    confirm: Confirmation
    seconds_per_arch: float
    total_seconds: float
    # Against each seed separately (mean over seeds): read against the single-seed ceiling.
    per_seed_spearman: float = float("nan")
    # Spearman within the true top k (FTD's measure), by top-k name (top10, top20, top10pct, top20pct).
    top_spearman: dict[str, float] = field(default_factory=dict)
    top_n: int = 0  # architectures the top-k figures are drawn from
    # Regret after confirming the proxy's top 1, 3 and 5 on full data (points of accuracy).
    regret_at: dict[int, float] = field(default_factory=dict)
    # With --proxy-draws D > 1: each measure of the top over the D draws (dmnas.reporting.draws).
    draws: tuple[DrawSummary, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.scores.label,
            "experiment": self.scores.experiment,
            "proxy": self.scores.proxy,
            "images": self.scores.images,
            "failed_trials": self.scores.failed,
            "repeats": self.scores.repeats,
            "estimate": self.estimate.to_dict() if self.estimate else None,
            "per_seed_spearman": self.per_seed_spearman,
            "top_spearman": self.top_spearman,
            "top_n": self.top_n,
            "regret_at": {str(k): v for k, v in self.regret_at.items()},
            "confirmation": self.confirm.to_dict(),
            "seconds_per_arch": self.seconds_per_arch,
            "total_seconds": self.total_seconds,
            "draws": [d.to_dict() for d in self.draws],
        }
