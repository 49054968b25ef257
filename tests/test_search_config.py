"""Checks made before a search runs: resume, tuner packages, budgets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from dmnas.errors import DmnasError
from dmnas.train import TrainRecipe



def test_resume_refuses_unknown_searches_and_non_grid_tuners(tmp_path: Path) -> None:
    from dmnas.nas.config import SearchConfig
    from dmnas.nas.folder import recorded_trials
    from dmnas.nas.resume import resume_search

    def cfg(resume: str) -> SearchConfig:
        r = TrainRecipe(epochs=1)
        return SearchConfig(
            space="convnet_tiny", proxy="dm", proxy_recipe=r, full_recipe=r, workdir=tmp_path, resume=resume
        )

    folder = tmp_path / "searches" / "abc123"
    (folder / "trials").mkdir(parents=True)
    with pytest.raises(DmnasError, match="no search of that id .* known: none"):
        resume_search(cfg("nope"))
    (folder / "search.json").write_text(
        json.dumps({"id": "abc123", "proxy": "dm", "fingerprint": "fp", "full_recipe": {}, "full_images": 1,
                    "tuner": "random", "space": "convnet_tiny", "max_trials": 4})  # fmt: skip
    )
    (folder / "context.json").write_text(
        json.dumps(
            {
                "proxy": "dm",
                "data": {},
                "data_dir": None,
                "recipe": {},
                "device": "cpu",
                "seed": 0,
                "results_dir": "",
                "ground_truth_dir": "",
            }
        )
    )
    with pytest.raises(DmnasError, match="continues grid searches; search abc123 used tuner random"):
        resume_search(cfg("abc123"))
    # What counts as recorded: complete records only (a half-written file is trained again).
    (folder / "trials" / "a__t1.json").write_text(json.dumps({"arch": "a", "score": 0.5, "trial_id": "t1"}))
    (folder / "trials" / "b__t2.json").write_text('{"arch": "b", "sco')
    assert list(recorded_trials(folder)) == ["a"]


def test_a_tuner_without_its_packages_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from dmnas.nas.tuners import TUNERS
    from dmnas.nas.config import SearchConfig

    assert TUNERS.get("bohb").requires == ("ConfigSpace", "statsmodels") and TUNERS.get("bohb").cycles
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ConfigSpace" else real(name, *a))
    cfg = SearchConfig(
        space="convnet_tiny", proxy="dm", proxy_recipe=TrainRecipe(), full_recipe=TrainRecipe(), workdir=tmp_path
    )
    with pytest.raises(DmnasError, match=r"^--tuner bohb needs ConfigSpace, which is not installed: pip install "
                       r"ConfigSpace \(or dmnas\[bohb\]\)$"):
        replace(cfg, tuner="bohb").check()
    replace(cfg, tuner="hyperband").check()  # NNI's own Hyperband needs nothing more


def test_hyperband_budgets_are_proxy_epochs_and_rank_by_the_highest() -> None:
    from dmnas.nas.config import SearchConfig
    from dmnas.nas.folder import proxy_scores
    from dmnas.nas.trials.params import budget_epochs

    assert [budget_epochs(b, 200) for b in (7.407, 22.2, 200.0, 0.3, 500)] == [7, 22, 200, 1, 200]
    with pytest.raises(DmnasError, match="not a number"):
        budget_epochs("lots", 200)
    r = TrainRecipe(epochs=9)
    with pytest.raises(DmnasError, match="needs --proxy dm or random, not early"):
        SearchConfig(
            space="convnet_tiny",
            proxy="early",
            proxy_recipe=r,
            full_recipe=r,
            workdir=Path("."),
            tuner="hyperband",
        ).check()

    def trial(arch: str, score: float, epochs: int, secs: float) -> dict:
        return {"record": {"arch": arch, "score": score, "budget_epochs": epochs, "train_seconds": secs}}

    results = {
        "trials": [
            trial("a", 0.9, 1, 1.0),
            trial("a", 0.5, 9, 9.0),
            trial("b", 0.7, 3, 3.0),
            trial("b", 0.6, 3, 3.0),
        ]
    }
    scores, seconds, repeats = proxy_scores(results)
    assert scores == {"a": 0.5, "b": pytest.approx(0.65)}  # a: its 9-epoch score, not the 1-epoch one
    assert seconds == {"a": 10.0, "b": 6.0} and repeats == 1  # every budget's cost counts


def test_one_hyperband_iteration_is_sized_as_nni_sizes_its_brackets() -> None:
    from dmnas.nas.tuners import hyperband_iteration_trials

    # R=9, eta=3: s_max=2; brackets of 3 | 5+1 | 9+3+1 configurations
    assert hyperband_iteration_trials(9, 3) == 3 + 6 + 13
    # R=40 (the default proxy epochs): 4 | 6+2 | 12+4+1 | 27+9+3+1
    assert hyperband_iteration_trials(40, 3) == 4 + 8 + 17 + 40
    assert hyperband_iteration_trials(1, 3) == 1
