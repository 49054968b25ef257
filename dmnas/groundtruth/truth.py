"""The ground truth a report is read against, as a value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroundTruth:
    """Full-data validation accuracy per architecture and seed, and which architectures form the
    unbiased sample (the rest is known only from confirmation or other searches)."""

    per_seed: dict[str, dict[int, float]]
    unbiased: frozenset[str]
    recipe: str  # one line, TrainRecipe.describe()
    recipe_key: str
    images: int
    sources: dict[str, int]  # where the unbiased sample came from -> architectures
    # Architectures a table trained because a screen ranked them high (not a uniform draw): they
    # join the unbiased sample only for figures within the top of the ranking, where the screen's
    # purpose was to make the top complete (see dmnas/groundtruth/tables/README.md).
    screened: frozenset[str] = frozenset()

    @property
    def mean(self) -> dict[str, float]:
        return {a: float(np.mean(list(s.values()))) for a, s in self.per_seed.items() if s}

    @property
    def seeds(self) -> list[int]:
        return sorted({s for v in self.per_seed.values() for s in v})
