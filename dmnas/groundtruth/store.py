"""Full-data accuracies, keyed by dataset fingerprint, training recipe, architecture and seed.

One JSON file per result (``<root>/<fingerprint>/<recipe key>/<arch>__seed<k>.json``), written
atomically, so concurrent NNI trials can add results and every later search reuses them. Several
stores can be read together (the project's own and a shipped table, see :func:`merged`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dmnas.util.atomic import write_json_atomic
from dmnas.util.keys import content_key
from dmnas.train import TrainRecipe

log = logging.getLogger(__name__)

# Fields added to TrainRecipe after records were first stored, with the value that reproduces the
# old behaviour: left out of the key at that value, so older records keep their key.
LATER_FIELDS: dict[str, object] = {"schedule": "step"}
# Records of the first layout (``<arch>.json``, one seed) came from trials at the default seed.
LEGACY_SEED = 0
RECIPE_KEY_FORMAT = 1  # the version tag of recipe keys (its own, not the proxy-set cache's)

Records = dict[str, dict[int, dict[str, Any]]]  # arch -> seed -> record


def recipe_key(recipe: TrainRecipe) -> str:
    d = {k: v for k, v in recipe.to_dict().items() if not (k in LATER_FIELDS and v == LATER_FIELDS[k])}
    # Tagged "format": 1 since the first tables: the key is the ground truth's own, whatever format
    # the proxy-set cache moves to (test_store: the shipped tables keep their keys).
    return content_key({"format": RECIPE_KEY_FORMAT, "recipe": d})


def record_name(arch: str, seed: int) -> str:
    return f"{arch}__seed{seed}.json"


def parse_record_name(stem: str) -> tuple[str, int] | None:
    arch, sep, seed = stem.rpartition("__seed")
    return (arch, int(seed)) if sep and seed.isdigit() else None


@dataclass(frozen=True)
class GroundTruthStore:
    root: Path

    def folder(self, fingerprint: str, recipe: TrainRecipe) -> Path:
        return self.root / fingerprint / recipe_key(recipe)

    def path(self, fingerprint: str, arch: str, recipe: TrainRecipe, seed: int) -> Path:
        return self.folder(fingerprint, recipe) / record_name(arch, seed)

    def get(self, fingerprint: str, arch: str, recipe: TrainRecipe, seed: int) -> dict[str, Any] | None:
        """One record (reads its file only; a first-layout ``<arch>.json`` still answers for its seed)."""
        path = self.path(fingerprint, arch, recipe, seed)
        if not path.exists():
            legacy = path.with_name(f"{arch}.json")
            if not legacy.exists():
                return None
            return self.all(fingerprint, recipe).get(arch, {}).get(seed)  # migrates it on the way
        try:
            return {**json.loads(path.read_text()), "seed": seed}
        except (OSError, ValueError):
            return None  # a damaged record counts as missing and will be retrained

    def put(
        self, fingerprint: str, arch: str, recipe: TrainRecipe, seed: int, record: dict[str, Any]
    ) -> Path:
        folder = self.folder(fingerprint, recipe)
        folder.mkdir(parents=True, exist_ok=True)
        recipe_file = folder / "recipe.yaml"
        if not recipe_file.exists():
            recipe_file.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=True))
        return write_json_atomic(self.path(fingerprint, arch, recipe, seed), {**record, "seed": seed})

    def all(self, fingerprint: str, recipe: TrainRecipe) -> Records:
        """Every readable record of one recipe; first-layout files are renamed to the seeded
        layout on the way (said in the log), so they are read once more and then like any other."""
        folder = self.folder(fingerprint, recipe)
        out: Records = {}
        for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                record = json.loads(p.read_text())
            except (OSError, ValueError):
                continue  # a damaged record counts as missing and will be retrained
            parsed = parse_record_name(p.stem)
            if parsed is None:
                parsed = (p.stem, int(record.get("seed", LEGACY_SEED)))
                self._migrate(p, *parsed)
            arch, seed = parsed
            out.setdefault(arch, {})[seed] = {**record, "seed": seed}
        return out

    def _migrate(self, legacy: Path, arch: str, seed: int) -> None:
        target = legacy.with_name(record_name(arch, seed))
        try:
            if not target.exists():
                os.replace(legacy, target)
                log.warning(
                    "ground truth: migrated %s (one-seed layout) to %s as seed %d", legacy, target.name, seed
                )
        except OSError:
            pass  # a read-only store (e.g. a shipped table) is still read as it is


def merged(stores: list[GroundTruthStore], fingerprint: str, recipe: TrainRecipe) -> Records:
    """Records of several stores; where two hold the same (arch, seed), the first store wins."""
    out: Records = {}
    for store in reversed(stores):
        for arch, seeds in store.all(fingerprint, recipe).items():
            out.setdefault(arch, {}).update(seeds)
    return out
