"""The shipped ground-truth table and the resumable builder behind it."""

from __future__ import annotations

import json
from pathlib import Path

from dmnas.groundtruth.store import GroundTruthStore, merged, recipe_key
from dmnas.train import TrainRecipe

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "dmnas" / "groundtruth" / "tables" / "shipped"

from benchmarks.full_training import Job, missing_jobs, sample_archs  # noqa: E402


def test_table_manifest_matches_its_records_and_the_default_recipe() -> None:
    from dmnas.nas.config import FULL_RECIPE

    manifest = json.loads((TABLE / "table.json").read_text())
    recipe = TrainRecipe(**manifest["recipe"])
    assert recipe == FULL_RECIPE and manifest["recipe_key"] == recipe_key(recipe)  # the pipeline reuses it
    assert manifest["sample"] == sample_archs(
        manifest["space"], len(manifest["sample"]), manifest["sample_seed"]
    )
    records = merged([GroundTruthStore(TABLE)], manifest["fingerprint"], recipe)
    done = [(a, s) for a in manifest["sample"] for s in manifest["seeds"] if s in records.get(a, {})]
    assert len(done) >= manifest["records"] >= 1
    for arch, seed in done:
        r = records[arch][seed]
        assert 0.1 <= r["val_acc"] <= 1 and r["train_seconds"] > 0 and r["machine"] and r["date"]
        assert r["arch"] == arch and r["seed"] == seed and r["images"] == 54000


def test_builder_resumes_only_what_is_missing(tmp_path: Path) -> None:
    store = GroundTruthStore(tmp_path)
    recipe = TrainRecipe(epochs=1, schedule="cosine", strategy="none")
    jobs = [Job(a, s, recipe) for a in ("a", "b") for s in (0, 1)]
    store.put("fp", "a", recipe, 0, {"val_acc": 0.5})
    store.put("fp", "b", TrainRecipe(epochs=2, schedule="cosine", strategy="none"), 1, {"val_acc": 0.5})
    assert [(j.arch, j.seed) for j in missing_jobs(jobs, store, "fp")] == [("a", 1), ("b", 0), ("b", 1)]
    assert (
        sample_archs("convnet_bench", 5, 0) == sample_archs("convnet_bench", 48, 0)[:5]
    )  # prefixes stay uniform
