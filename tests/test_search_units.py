"""The search stage without NNI: spaces, the trial adapter, correlation, ground truth, reports."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dmnas.errors import DmnasError
from dmnas.search.correlation import agreement, average_ranks, kendall_tau_b, spearman, top_k_overlap
from dmnas.search.ground_truth import GroundTruthStore, budgeted_sample, recipe_key
from dmnas.search.report import ProxyScores, build_rows, markdown, write_report
from dmnas.search.space import load_space
from dmnas.search.trial import TrialContext, run_trial, spec_from_params
from dmnas.train import TrainRecipe


def test_convnet_grid_is_the_720_net_nni_space() -> None:
    space = load_space("convnet_grid")
    specs = space.specs()
    assert space.size == len(specs) == 720 == len({s.name for s in specs})
    assert all(v["_type"] == "choice" for v in space.nni_space.values())


def test_convnet_grid_is_accepted_by_nnis_own_validator() -> None:
    pytest.importorskip("nni")
    from nni.experiment.config import ExperimentConfig

    cfg = ExperimentConfig("local")
    cfg.search_space = load_space("convnet_grid").nni_space
    cfg.trial_command = "true"
    cfg.trial_concurrency = 1
    cfg.tuner.name = "GridSearch"
    cfg.validate()


def test_small_spaces_are_small_and_build() -> None:
    assert 10 <= load_space("convnet_small").size <= 48
    assert load_space("convnet_tiny").size == 4


@pytest.mark.parametrize("content,message", [
    ("depth: {_type: choice, _value: [1, 2]}\nkernel: {_type: choice, _value: [3]}\n", "unknown key 'kernel'"),
    ("act: {_type: choice, _value: [relu, gelu]}\n", "act value 'gelu' is unknown"),
    ("width: {_type: choice, _value: [0]}\n", "width value 0"),
    ("depth: {_type: uniform, _value: [1, 4]}\n", "depth must be {_type: choice"),
    ("depth: {_type: choice, _value: [9]}\n", "depth value 9"),
    ("- 1\n- 2\n", "a mapping"),
])
def test_bad_space_files_name_the_offending_entry(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(DmnasError, match=message.replace("{", r"\{")):
        load_space(str(f))


def test_unknown_space_lists_available() -> None:
    with pytest.raises(DmnasError, match="available: convnet_grid, convnet_small, convnet_tiny"):
        load_space("nasbench")


def test_spec_from_params_accepts_fields_or_a_name() -> None:
    a = spec_from_params({"depth": 2, "width": 16})
    assert (a.depth, a.width, a.norm) == (2, 16, "instancenorm")
    assert spec_from_params({"arch": a.name}) == a
    with pytest.raises(DmnasError):
        spec_from_params({"depth": 2, "kernel": 5})


def test_trial_runs_standalone_on_a_proxy(tmp_path: Path, tiny_data, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The trial adapter's core, outside NNI, on a random-subset proxy and on full data."""
    import dmnas.search.trial as trial

    monkeypatch.setattr(trial, "load_dataset", lambda cfg, root: tiny_data)
    reports: list[float] = []
    ctx = TrialContext(proxy="random", data={"name": "fashion_mnist"}, data_dir=None,
                       recipe=TrainRecipe(epochs=4, strategy="none").to_dict(), device="cpu", seed=0,
                       results_dir=str(tmp_path / "res"), ground_truth_dir=str(tmp_path / "gt"), ipc=2, reports=2)
    rec = run_trial({"depth": 1, "width": 4}, ctx, report=reports.append, trial_id="t1")
    assert rec["arch"] == "d1_w4_relu_instancenorm_avgpooling" and rec["images"] == 6
    assert 0 <= rec["default"] == rec["val_acc"] <= 1 and "test_acc" in rec and rec["params"] > 0
    assert len(reports) == 1  # at epoch 2 of 4 (the final one is the final result)
    assert json.loads((tmp_path / "res" / f"{rec['arch']}__t1.json").read_text())["val_acc"] == rec["val_acc"]

    full = run_trial({"depth": 1, "width": 4}, TrialContext(**{**ctx.__dict__, "proxy": "full"}), trial_id="t2")
    assert full["images"] == len(tiny_data.train_x)
    store = GroundTruthStore(tmp_path / "gt")
    assert store.get(tiny_data.fingerprint, full["arch"], TrainRecipe(**ctx.recipe))["val_acc"] == full["val_acc"]


# ---------------------------------------------------------------- correlation

RNG = np.random.default_rng(0)
CASES = [RNG.normal(size=30), np.array([1, 2, 2, 3, 3, 3, 4, 5.0]), RNG.integers(0, 4, 25).astype(float)]


@pytest.mark.parametrize("x", CASES)
def test_spearman_and_kendall_match_scipy(x: np.ndarray) -> None:
    y = x + RNG.normal(scale=1.0, size=len(x))
    y = np.round(y, 1)  # ties on both sides
    rho, p = spearman(x, y)
    ref = stats.spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-6)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert np.allclose(average_ranks(x), stats.rankdata(x))


def test_perfect_reversed_and_tied_orderings() -> None:
    x = np.arange(10.0)
    assert spearman(x, x)[0] == pytest.approx(1.0) and kendall_tau_b(x, x) == pytest.approx(1.0)
    assert spearman(x, -x)[0] == pytest.approx(-1.0) and kendall_tau_b(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(10))[0])
    assert top_k_overlap(x, x, 3) == 1.0 and top_k_overlap(x, -x, 3) == 0.0


def test_agreement_regret_and_pick() -> None:
    names = ["a", "b", "c", "d"]
    ag = agreement(names, np.array([0.9, 0.5, 0.4, 0.1]), np.array([0.7, 0.8, 0.6, 0.5]))
    assert ag.proxy_pick == "a" and ag.best_arch == "b"
    assert ag.regret == pytest.approx(0.1)
    lo, hi = ag.spearman_ci95
    assert -1 <= lo <= hi <= 1


# ---------------------------------------------------------------- ground truth and report

def test_ground_truth_keys(tmp_path: Path) -> None:
    store = GroundTruthStore(tmp_path)
    r1, r2 = TrainRecipe(epochs=3), TrainRecipe(epochs=4)
    assert recipe_key(r1) == recipe_key(TrainRecipe(epochs=3)) != recipe_key(r2)
    store.put("fp", "archA", r1, {"val_acc": 0.5})
    assert store.get("fp", "archA", r1) == {"val_acc": 0.5}
    assert store.get("fp", "archA", r2) is None and store.get("other", "archA", r1) is None
    assert list(store.all("fp", r1)) == ["archA"]
    assert (store.folder("fp", r1) / "recipe.yaml").is_file()


def test_budgeted_sample_takes_top_picks_and_spans_the_rest() -> None:
    scores = {f"a{i:02d}": 1 - i / 100 for i in range(40)}  # a00 best
    picks = budgeted_sample(scores, 8, seed=0)
    assert picks[:4] == ["a00", "a01", "a02", "a03"] and len(set(picks)) == 8
    ranks = sorted(int(p[1:]) for p in picks[4:])
    assert ranks[0] < 13 and ranks[-1] >= 31  # one from each quarter of the rest
    assert budgeted_sample(scores, 8, seed=0) == picks
    assert len(budgeted_sample(scores, 100)) == 40


def test_report_files(tmp_path: Path) -> None:
    full = {n: {"val_acc": v, "train_seconds": 10.0} for n, v in zip("abcdef", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])}
    p = ProxyScores("dm ipc10", "e1", "dm", {n: v["val_acc"] - 0.3 for n, v in full.items()}, {n: 1.0 for n in full}, 100, 1)
    q = ProxyScores("random ipc10", "e2", "random", {n: i / 10 for i, n in enumerate("abcdef")}, {n: 1.0 for n in full}, 100, 0)
    rows = build_rows([p, q], full)
    assert rows[0].agreement.spearman == pytest.approx(1.0) and rows[1].agreement.spearman == pytest.approx(-1.0)
    assert rows[0].speedup == pytest.approx(10.0)
    paths = write_report(tmp_path, rows, [p, q], full, 54000, TrainRecipe().to_dict())
    assert json.loads(paths["json"].read_text())["rows"][0]["agreement"]["n"] == 6
    assert paths["png_0"].read_bytes()[:4] == b"\x89PNG"
    md = markdown(rows, 54000, {})
    assert "| dm ipc10 |" in md and "| random ipc10 |" in md


def test_dead_tuner_is_detected_from_its_log(tmp_path: Path) -> None:
    from dmnas.search.experiment import dispatcher_exited

    log_dir = tmp_path / "exp1" / "log"
    assert not dispatcher_exited(tmp_path, "exp1")
    log_dir.mkdir(parents=True)
    (log_dir / "dispatcher.log").write_text("[INFO] Dispatcher started\n")
    assert not dispatcher_exited(tmp_path, "exp1")
    (log_dir / "dispatcher.log").write_text("[INFO] Dispatcher started\nTraceback ...\n[INFO] Dispatcher exiting...\n")
    assert dispatcher_exited(tmp_path, "exp1")


def test_search_ends_only_when_every_issued_parameter_has_run() -> None:
    from dmnas.search.experiment import tuner_exhausted

    # The CI case: tuner done, two trials finished, its third parameter still queued in NNI.
    assert not tuner_exhausted("TUNER_NO_MORE_TRIAL", {"SUCCEEDED": 2}, parameters_issued=3)
    assert not tuner_exhausted("TUNER_NO_MORE_TRIAL", {"SUCCEEDED": 2, "RUNNING": 1}, parameters_issued=3)
    assert tuner_exhausted("TUNER_NO_MORE_TRIAL", {"SUCCEEDED": 2, "FAILED": 1}, parameters_issued=3)
    assert not tuner_exhausted("RUNNING", {"SUCCEEDED": 3}, parameters_issued=3)
    # NNI's own trial cap: NNI itself moves on to DONE
    assert not tuner_exhausted("NO_MORE_TRIAL", {"SUCCEEDED": 3}, parameters_issued=3)


def test_grid_trials_are_capped_and_ports_checked() -> None:
    import socket

    from dmnas.search.experiment import TUNERS, capped_trials, choose_port

    assert capped_trials(TUNERS.get("grid"), 1000, 36) == 36
    assert capped_trials(TUNERS.get("grid"), None, 36) == 36
    assert capped_trials(TUNERS.get("tpe"), 100, 36) == 100
    with pytest.raises(DmnasError):
        capped_trials(TUNERS.get("grid"), 0, 36)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        if taken < 65000:
            assert choose_port(taken) > taken
    with pytest.raises(DmnasError, match="between 1024 and 65535"):
        choose_port(80)


def test_spaces_that_pool_images_away_are_rejected() -> None:
    from dmnas.search.space import check_fits, load_space

    grid = load_space("convnet_grid")
    check_fits(grid, (1, 28, 28))  # Fashion-MNIST/MNIST: depth 4 with pooling leaves 2x2
    check_fits(grid, (3, 32, 32))  # CIFAR/SVHN
    # 8x8: depth 4 with max/avg pooling -> 4 widths x 3 acts x 5 norms x 2 pools
    with pytest.raises(DmnasError, match="120 of the 720 architectures of convnet_grid pool"):
        check_fits(grid, (3, 8, 8))


def test_a_failed_trials_log_and_error_line_are_found(tmp_path: Path) -> None:
    from dmnas.search.experiment import last_error_line, stderr_file

    trial = tmp_path / "trials" / "AbCdE"
    trial.mkdir(parents=True)
    reported = str(trial / "stderr")  # what NNI 3.0's REST API says
    assert stderr_file(reported) == reported and last_error_line(reported) == ""  # nothing written yet
    (trial / "trial.stderr").write_text("Traceback (most recent call last):\n  ...\ndmnas.errors.DmnasError: boom\n\n")
    assert stderr_file(reported) == str(trial / "trial.stderr")
    assert last_error_line(stderr_file(reported)) == "dmnas.errors.DmnasError: boom"
    assert stderr_file(None) is None and last_error_line(None) == ""
    assert stderr_file(None, trial) == str(trial / "trial.stderr")  # a killed trial: NNI reports no path
