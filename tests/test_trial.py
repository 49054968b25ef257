"""A trial without NNI: parameters -> spec, every proxy scored standalone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dmnas.errors import DmnasError
from dmnas.groundtruth.store import GroundTruthStore
from dmnas.nas.trials.context import TrialContext
from dmnas.nas.trials.proxies import run_trial
from dmnas.nas.trials.params import spec_from_params
from dmnas.train import TrainRecipe



def test_spec_from_params_accepts_fields_a_name_or_a_job() -> None:
    a, seed = spec_from_params({"depth": 2, "width": 16})
    assert (a.depth, a.width, a.norm, seed) == (2, 16, "instancenorm", None)
    assert spec_from_params({"arch": a.name}) == (a, None)
    assert spec_from_params({"job": f"{a.name}/seed3"}) == (a, 3)
    with pytest.raises(DmnasError):
        spec_from_params({"depth": 2, "kernel": 5})
    with pytest.raises(DmnasError, match="form <arch>/seed<k>"):
        spec_from_params({"job": a.name})


def test_a_trial_without_parameters_is_an_error_not_the_default_net() -> None:
    with pytest.raises(DmnasError, match="no parameters"):
        spec_from_params({})


def test_trial_runs_standalone_on_a_proxy(tmp_path: Path, tiny_data, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The trial adapter's core, outside NNI, on a random-subset proxy and on full data."""
    import dmnas.nas.trials.proxies as trial

    monkeypatch.setattr(trial, "load_dataset", lambda cfg, root: tiny_data)
    reports: list[float] = []
    ctx = TrialContext(
        proxy="random",
        data={"name": "fashion_mnist"},
        data_dir=None,
        recipe=TrainRecipe(epochs=4, strategy="none").to_dict(),
        device="cpu",
        seed=0,
        results_dir=str(tmp_path / "res"),
        ground_truth_dir=str(tmp_path / "gt"),
        ipc=2,
        reports=2,
    )
    rec = run_trial({"depth": 1, "width": 4}, ctx, report=reports.append, trial_id="t1")
    assert rec["arch"] == "d1_w4_relu_instancenorm_avgpooling" and rec["images"] == 6
    assert (
        0 <= rec["default"] == rec["score"] == rec["val_acc"] <= 1
        and rec["test_acc"] is None
        and rec["params"] > 0
    )
    assert len(reports) == 1  # at epoch 2 of 4 (the final one is the final result)
    assert json.loads((tmp_path / "res" / f"{rec['arch']}__t1.json").read_text())["val_acc"] == rec["val_acc"]

    full = run_trial(
        {"depth": 1, "width": 4}, TrialContext(**{**ctx.__dict__, "proxy": "full", "seeds": 2}), trial_id="t2"
    )
    assert full["images"] == len(tiny_data.train_x) and full["seeds"] == [0, 1]
    assert 0 <= full["test_acc"] <= 1  # ground truth always carries the test split
    store = GroundTruthStore(tmp_path / "gt")
    per_seed = [
        store.get(tiny_data.fingerprint, full["arch"], TrainRecipe(**ctx.recipe), s)["val_acc"]
        for s in (0, 1)
    ]
    assert full["val_acc"] == pytest.approx(sum(per_seed) / 2) and full["seed_scores"] == per_seed
    # A ground-truth job names its seed; the context's seeds do not apply.
    job = run_trial(
        {"job": f"{full['arch']}/seed5"}, TrialContext(**{**ctx.__dict__, "proxy": "full"}), trial_id="t3"
    )
    assert job["seeds"] == [5] and store.get(
        tiny_data.fingerprint, full["arch"], TrainRecipe(**ctx.recipe), 5
    )


@pytest.mark.parametrize("proxy", ["synflow", "naswot", "params"])
def test_zero_cost_trials_score_without_training(
    tmp_path: Path,
    tiny_data,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
    proxy: str,
) -> None:
    import dmnas.nas.trials.proxies as trial

    monkeypatch.setattr(trial, "load_dataset", lambda cfg, root: tiny_data)
    ctx = TrialContext(
        proxy=proxy,
        data={"name": "fashion_mnist"},
        data_dir=None,
        recipe={},
        device="cpu",
        seed=0,
        results_dir=str(tmp_path / "res"),
        ground_truth_dir=str(tmp_path / "gt"),
        zero_cost_batch=8,
        seeds=2,
    )
    rec = run_trial({"depth": 1, "width": 4, "norm": "batchnorm"}, ctx, trial_id="z")
    assert rec["proxy"] == proxy and rec["default"] == rec["score"] and len(rec["seed_scores"]) == 2
    assert "val_acc" not in rec and np.isfinite(rec["score"])


def test_early_trial_makes_the_stated_image_passes(
    tmp_path: Path, tiny_data, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    import dmnas.nas.trials.proxies as trial

    monkeypatch.setattr(trial, "load_dataset", lambda cfg, root: tiny_data)
    ctx = TrialContext(
        proxy="early",
        data={"name": "fashion_mnist"},
        data_dir=None,
        recipe=TrainRecipe(epochs=1, strategy="none", schedule="cosine").to_dict(),
        device="cpu",
        seed=0,
        results_dir=str(tmp_path / "res"),
        ground_truth_dir=str(tmp_path / "gt"),
        early_images=7,
    )
    rec = run_trial({"depth": 1, "width": 4}, ctx, trial_id="e")
    assert rec["images"] == 7 and not (tmp_path / "gt").exists()  # early results never enter the ground truth


def test_the_parameter_count_baseline_counts_trainable_parameters() -> None:
    import torch

    from dmnas.models import build_convnet, count_parameters, parse_arch
    from dmnas.nas.trials.zero_cost import ZERO_COST

    model = build_convnet(parse_arch("d2_w8_relu_instancenorm_none"), (1, 28, 28), 10, torch.Generator().manual_seed(0))
    assert ZERO_COST.get("params")(model, torch.zeros(2, 1, 28, 28)) == count_parameters(model) == 82626
