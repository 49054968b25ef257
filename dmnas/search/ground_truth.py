"""Full-data accuracies, keyed by dataset fingerprint, architecture and training recipe.

One JSON file per result (``<root>/<fingerprint>/<recipe key>/<arch>.json``), written
atomically, so concurrent NNI trials can add results and every later search reuses them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..atomic import write_json_atomic
from ..cache import cache_key
from ..train import TrainRecipe


def recipe_key(recipe: TrainRecipe) -> str:
    return cache_key({"recipe": recipe.to_dict()})


@dataclass(frozen=True)
class GroundTruthStore:
    root: Path

    def folder(self, fingerprint: str, recipe: TrainRecipe) -> Path:
        return self.root / fingerprint / recipe_key(recipe)

    def path(self, fingerprint: str, arch: str, recipe: TrainRecipe) -> Path:
        return self.folder(fingerprint, recipe) / f"{arch}.json"

    def get(self, fingerprint: str, arch: str, recipe: TrainRecipe) -> dict[str, Any] | None:
        p = self.path(fingerprint, arch, recipe)
        try:
            return json.loads(p.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a damaged record counts as missing and will be retrained

    def put(self, fingerprint: str, arch: str, recipe: TrainRecipe, record: dict[str, Any]) -> Path:
        folder = self.folder(fingerprint, recipe)
        folder.mkdir(parents=True, exist_ok=True)
        recipe_file = folder / "recipe.yaml"
        if not recipe_file.exists():
            recipe_file.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=True))
        return write_json_atomic(self.path(fingerprint, arch, recipe), record)

    def all(self, fingerprint: str, recipe: TrainRecipe) -> dict[str, dict[str, Any]]:
        folder = self.folder(fingerprint, recipe)
        out: dict[str, dict[str, Any]] = {}
        for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                out[p.stem] = json.loads(p.read_text())
            except ValueError:
                continue
        return out


def budgeted_sample(scores: dict[str, float], n: int, seed: int = 0) -> list[str]:
    """The proxy's top ``ceil(n/2)`` picks plus one random architecture from each of
    ``floor(n/2)`` equal strata of the remaining proxy ranking, so the check covers the whole range."""
    import numpy as np

    ranked = sorted(scores, key=lambda a: (-scores[a], a))
    n = max(0, min(n, len(ranked)))
    n_top = (n + 1) // 2
    chosen = ranked[:n_top]
    rest, k = ranked[n_top:], n - n_top
    if k > 0 and rest:
        rng = np.random.default_rng(seed)
        for stratum in np.array_split(np.array(rest, dtype=object), k):
            if len(stratum):
                chosen.append(str(stratum[int(rng.integers(len(stratum)))]))
    return chosen
