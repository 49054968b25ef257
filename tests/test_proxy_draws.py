"""--proxy-draws: a search scores every candidate at D independent draws of its proxy, and the
report gives each measure's mean and spread over them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dmnas.errors import DmnasError
from dmnas.groundtruth.truth import GroundTruth
from dmnas.nas.trials.context import TrialContext, draw_context
from dmnas.reporting.types import ProxyScores


def _ctx(tmp_path: Path, **kw: object) -> TrialContext:
    base = dict(proxy="random", data={}, data_dir=None, recipe={"epochs": 1, "strategy": "none"}, device="cpu",
                seed=3, results_dir=str(tmp_path), ground_truth_dir=str(tmp_path / "gt"), ipc=2)  # fmt: skip
    return TrialContext(**{**base, **kw})  # type: ignore[arg-type]


def test_draw_zero_is_the_one_draw_search_and_later_draws_take_their_own_seeds_and_sets(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, proxy="dm", entry_key="k0", draws=3, draw_keys=("k1", "k2"), seeds=2)
    one = _ctx(tmp_path, proxy="dm", entry_key="k0", seeds=2)
    assert draw_context(ctx, 0) == one
    assert (draw_context(ctx, 1).seed, draw_context(ctx, 1).entry_key) == (5, "k1")
    assert (draw_context(ctx, 2).seed, draw_context(ctx, 2).entry_key) == (7, "k2")


def test_draw_seeds_do_not_overlap(tmp_path: Path) -> None:
    from dmnas.nas.trials.proxies import draw_seeds

    assert draw_seeds(_ctx(tmp_path, draws=3, seeds=2), None) == [[3, 4], [5, 6], [7, 8]]
    assert draw_seeds(_ctx(tmp_path, draws=3, seeds=2), 11) == [[11]]  # a ground-truth job's own seed


def test_a_trial_scores_each_draw_on_its_own_subset(tiny_data, tmp_path: Path) -> None:  # noqa: ANN001
    from dmnas.nas.trials.proxies import Prepared, TRAINING_SETS, run_trial

    ctx = _ctx(tmp_path, draws=2)
    sets = tuple(TRAINING_SETS.get("random")(draw_context(ctx, d), tiny_data) for d in range(2))
    assert not torch.equal(sets[0][0], sets[1][0])  # another subset per draw
    rec = run_trial({"arch": "d1_w4_relu_none_avgpooling"}, ctx, prepared=Prepared(tiny_data, torch.device("cpu"), sets, {}))
    assert len(rec["draw_scores"]) == 2 and rec["seeds"] == [3, 4]
    assert rec["score"] == pytest.approx(np.mean(rec["draw_scores"]))
    one = run_trial({"arch": "d1_w4_relu_none_avgpooling"}, replace(ctx, draws=1),
                    prepared=Prepared(tiny_data, torch.device("cpu"), sets[:1], {}))  # fmt: skip
    assert "draw_scores" not in one and one["score"] == pytest.approx(rec["draw_scores"][0])  # draw 0 = one draw


def test_full_data_has_no_draws() -> None:
    from dmnas.nas.config import FULL_RECIPE, SearchConfig

    with pytest.raises(DmnasError, match="--proxy-draws applies to a proxy with its own randomness"):
        SearchConfig("convnet_small", "full", FULL_RECIPE, FULL_RECIPE, Path("."), proxy_draws=2)
    with pytest.raises(DmnasError, match="--proxy-draws must be >= 1"):
        SearchConfig("convnet_small", "dm", FULL_RECIPE, FULL_RECIPE, Path("."), proxy_draws=0)


def _proxy(draw_scores: dict[str, list[float]]) -> ProxyScores:
    scores = {a: float(np.mean(v)) for a, v in draw_scores.items()}
    return ProxyScores("random x3 draws (ab)", "ab", "random", scores, dict.fromkeys(scores, 1.0), 10, 0,
                       details={a: {"draw_scores": v} for a, v in draw_scores.items()})  # fmt: skip


def test_the_report_gives_each_measure_over_the_draws() -> None:
    from dmnas.reporting.report import make_report

    archs = [f"a{i}" for i in range(8)]
    acc = np.linspace(0.80, 0.87, 8)
    per_seed = {a: {0: float(v), 1: float(v) + 0.001} for a, v in zip(archs, acc, strict=True)}
    truth = GroundTruth(per_seed, frozenset(archs), "r", "k", 100, {})
    rng = np.random.default_rng(0)
    perfect = _proxy({a: [float(v)] * 3 for a, v in zip(archs, acc, strict=True)})
    noisy = _proxy({a: [float(v + rng.normal(0, 0.05)) for _ in range(3)] for a, v in zip(archs, acc, strict=True)})
    rep = make_report([perfect, noisy], truth, 3)
    by = {d.measure: d for d in rep.rows[0].draws}
    assert by["spearman"].draws == [1.0, 1.0, 1.0] and by["spearman"].sd == 0
    assert by["regret_at1"].mean == 0
    noisy_sp = {d.measure: d for d in rep.rows[1].draws}["spearman"]
    assert len(set(noisy_sp.draws)) > 1 and noisy_sp.ci95[0] <= noisy_sp.mean <= noisy_sp.ci95[1]
    text = rep.to_markdown()
    assert "over its 3 draws" in text and "regret_at1 (lower is better)" in text
    assert rep.to_dict()["rows"][1]["draws"][0]["measure"] == "spearman"


def test_a_one_draw_search_has_no_draw_section() -> None:
    from dmnas.reporting.report import make_report

    archs = [f"a{i}" for i in range(8)]
    truth = GroundTruth({a: {0: 0.8 + i / 100} for i, a in enumerate(archs)}, frozenset(archs), "r", "k", 100, {})
    p = ProxyScores("dm (x)", "x", "dm", {a: float(i) for i, a in enumerate(archs)}, dict.fromkeys(archs, 1.0), 10, 0)
    rep = make_report([p], truth, 3)
    assert rep.rows[0].draws == () and "draws" not in rep.to_markdown().split("## Agreement")[1]


def test_score_writes_nothing_and_run_trial_writes_its_record(tiny_data, tmp_path: Path) -> None:  # noqa: ANN001
    from dmnas.nas.trials.proxies import Prepared, TRAINING_SETS, run_trial, score

    ctx = _ctx(tmp_path / "trials")
    prepared = Prepared(tiny_data, torch.device("cpu"), (TRAINING_SETS.get("random")(ctx, tiny_data),), {})
    scored = score({"arch": "d1_w4_relu_none_avgpooling"}, ctx, prepared=prepared)
    assert not (tmp_path / "trials").exists() and scored.runs[0]["seed"] == 3
    rec = run_trial({"arch": "d1_w4_relu_none_avgpooling"}, ctx, prepared=prepared, trial_id="t1")
    assert rec["score"] == scored.record["score"]  # the same seeds, the same score
    assert (tmp_path / "trials" / "d1_w4_relu_none_avgpooling__t1.json").is_file()
