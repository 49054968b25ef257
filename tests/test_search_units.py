"""The search stage without NNI: spaces, the trial adapter, correlation, ground truth, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dmnas.errors import DmnasError
from dmnas.search.correlation import kendall_tau_b, spearman, top_k_overlap
from dmnas.search.ground_truth import GroundTruthStore
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


@pytest.mark.parametrize(
    "content,message",
    [
        (
            "depth: {_type: choice, _value: [1, 2]}\nkernel: {_type: choice, _value: [3]}\n",
            "unknown key 'kernel'",
        ),
        ("act: {_type: choice, _value: [relu, gelu]}\n", "act value 'gelu' is unknown"),
        ("width: {_type: choice, _value: [0]}\n", "width value 0"),
        ("depth: {_type: uniform, _value: [1, 4]}\n", "depth must be {_type: choice"),
        ("depth: {_type: choice, _value: [9]}\n", "depth value 9"),
        ("- 1\n- 2\n", "a mapping"),
    ],
)
def test_bad_space_files_name_the_offending_entry(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(DmnasError, match=message.replace("{", r"\{")):
        load_space(str(f))


def test_unknown_space_lists_available() -> None:
    with pytest.raises(
        DmnasError,
        match="available: convnet_bench, convnet_bench48, convnet_grid, convnet_small, convnet_tiny",
    ):
        load_space("nasbench")


def test_a_mistyped_space_is_the_only_line_even_with_the_default_dm_proxy(tmp_path: Path) -> None:
    # The default proxy logs its CPU iteration budget; a bad space must fail before that is said.
    proc = subprocess.run(
        [sys.executable, "-m", "dmnas", "search", "--space", "nasbench"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "dmnas: error: unknown search space 'nasbench'; available: convnet_bench, convnet_bench48, "
        "convnet_grid, convnet_small, convnet_tiny (or a file path)"
    ]


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
    import dmnas.search.trial as trial

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


@pytest.mark.parametrize("proxy", ["synflow", "naswot"])
def test_zero_cost_trials_score_without_training(
    tmp_path: Path,
    tiny_data,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
    proxy: str,
) -> None:
    import dmnas.search.trial as trial

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
    import dmnas.search.trial as trial

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


# ---------------------------------------------------------------- correlation

RNG = np.random.default_rng(0)
CASES = [RNG.normal(size=30), np.array([1, 2, 2, 3, 3, 3, 4, 5.0]), RNG.integers(0, 4, 25).astype(float)]


@pytest.mark.parametrize("x", CASES)
def test_spearman_and_kendall_are_scipys(x: np.ndarray) -> None:
    y = np.round(x + RNG.normal(scale=1.0, size=len(x)), 1)  # ties on both sides
    rho, p = spearman(x, y)
    ref = stats.spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-6)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_perfect_reversed_and_tied_orderings() -> None:
    x = np.arange(10.0)
    assert spearman(x, x)[0] == pytest.approx(1.0) and kendall_tau_b(x, x) == pytest.approx(1.0)
    assert spearman(x, -x)[0] == pytest.approx(-1.0) and kendall_tau_b(x, -x) == pytest.approx(-1.0)
    assert np.isnan(spearman(x, np.ones(10))[0])
    assert top_k_overlap(x, x, 3) == 1.0 and top_k_overlap(x, -x, 3) == 0.0


def test_dead_tuner_is_detected_from_its_log(tmp_path: Path) -> None:
    from dmnas.search.experiment import dispatcher_exited

    log_dir = tmp_path / "exp1" / "log"
    assert not dispatcher_exited(tmp_path, "exp1")
    log_dir.mkdir(parents=True)
    (log_dir / "dispatcher.log").write_text("[INFO] Dispatcher started\n")
    assert not dispatcher_exited(tmp_path, "exp1")
    (log_dir / "dispatcher.log").write_text(
        "[INFO] Dispatcher started\nTraceback ...\n[INFO] Dispatcher exiting...\n"
    )
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
    (trial / "trial.stderr").write_text(
        "Traceback (most recent call last):\n  ...\ndmnas.errors.DmnasError: boom\n\n"
    )
    assert stderr_file(reported) == str(trial / "trial.stderr")
    assert last_error_line(stderr_file(reported)) == "dmnas.errors.DmnasError: boom"
    assert stderr_file(None) is None and last_error_line(None) == ""
    assert stderr_file(None, trial) == str(trial / "trial.stderr")  # a killed trial: NNI reports no path


def test_a_space_may_list_architectures_by_name(tmp_path: Path) -> None:
    f = tmp_path / "listed.yaml"
    f.write_text(
        "arch: {_type: choice, _value: [d1_w8_relu_none_none, d2_w4_sigmoid_batchnorm_maxpooling]}\n"
    )
    space = load_space(str(f))
    assert space.size == 2 and [s.name for s in space.specs()] == [
        "d1_w8_relu_none_none",
        "d2_w4_sigmoid_batchnorm_maxpooling",
    ]
    f.write_text("arch: {_type: choice, _value: [d1_w8_relu_none]}\n")
    with pytest.raises(DmnasError, match="not of the form"):
        load_space(str(f))
    f.write_text(
        "arch: {_type: choice, _value: [d1_w8_relu_none_none]}\ndepth: {_type: choice, _value: [1]}\n"
    )
    with pytest.raises(DmnasError, match="cannot be combined"):
        load_space(str(f))


def test_the_table_space_is_the_tables_sample() -> None:
    table = json.loads(
        (Path(__file__).resolve().parents[1] / "benchmarks" / "ground_truth" / "table.json").read_text()
    )
    assert [s.name for s in load_space("convnet_bench48").specs()] == table["sample"]
    bench = {s.name for s in load_space("convnet_bench").specs()}
    assert len(bench) == 360 and set(table["sample"]) <= bench


def test_collect_pairs_results_through_nnis_client_even_when_nni_mislabels() -> None:
    """NNI's own ``TrialJob``/``TrialMetricData`` built from REST-shaped data (metrics encoded
    twice, as the manager sends them); trial A's row shows B's parameters (#5726)."""
    pytest.importorskip("nni")
    from nni.experiment.data import TrialJob, TrialMetricData

    from dmnas.search.experiment import collect

    a, b = "d1_w8_relu_none_avgpooling", "d2_w8_relu_none_avgpooling"

    def hp(pid: int, arch: str) -> str:
        return json.dumps(
            {
                "parameter_id": pid,
                "parameter_source": "algorithm",
                "parameters": {"arch": arch},
                "parameter_index": 0,
            }
        )

    def final(trial: str, pid: int, arch: str) -> dict:
        return {
            "timestamp": 0,
            "trialJobId": trial,
            "parameterId": str(pid),  # the manager sends ids as strings here, ints in the parameters
            "type": "FINAL",
            "sequence": 0,
            "data": json.dumps(json.dumps({"arch": arch, "score": 0.5})),
        }

    class FakeClient:
        id = "exp1"

        def list_trial_jobs(self) -> list:
            return [
                TrialJob(
                    "A", "SUCCEEDED", 1000, 0, endTime=13500, hyperParameters=[hp(1, b)]
                ),  # shows B's parameters
                TrialJob("B", "SUCCEEDED", 0, 1, hyperParameters=[hp(0, a)]),
                TrialJob("C", "FAILED", 0, 2, hyperParameters=[]),
            ]

        def get_job_metrics(self) -> dict:
            return {"A": [TrialMetricData(**final("A", 0, a))], "B": [TrialMetricData(**final("B", 1, b))]}

    out = collect(FakeClient(), "http://x", "DONE")
    rows = {t.trial_id: t for t in out.trials}
    assert rows["A"].record["arch"] == a and rows["A"].nni_shown_arch == b and rows["A"].tuner_arch == a
    assert rows["C"].record is None and rows["C"].status == "FAILED"
    assert rows["A"].nni_seconds == 12.5 and rows["C"].nni_seconds is None  # NNI's ms timestamps
    assert out.mislabelled == 2 and len(out.succeeded) == 2 and len(out.failed) == 1


def test_resume_refuses_unknown_searches_and_non_grid_tuners(tmp_path: Path) -> None:
    from dmnas.search.pipeline import SearchConfig, recorded_trials, run_search

    def cfg(resume: str) -> SearchConfig:
        r = TrainRecipe(epochs=1)
        return SearchConfig(
            space="convnet_tiny", proxy="dm", proxy_recipe=r, full_recipe=r, workdir=tmp_path, resume=resume
        )

    folder = tmp_path / "searches" / "abc123"
    (folder / "trials").mkdir(parents=True)
    with pytest.raises(DmnasError, match="no search of that id .* known: none"):
        run_search(cfg("nope"), None)
    (folder / "search.json").write_text(
        json.dumps({"tuner": "random", "space": "convnet_tiny", "max_trials": 4})
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
        run_search(cfg("abc123"), None)
    # What counts as recorded: complete records only (a half-written file is trained again).
    (folder / "trials" / "a__t1.json").write_text(json.dumps({"arch": "a", "score": 0.5, "trial_id": "t1"}))
    (folder / "trials" / "b__t2.json").write_text('{"arch": "b", "sco')
    assert list(recorded_trials(folder)) == ["a"]


def test_a_tuner_without_its_packages_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from dmnas.search.experiment import TUNERS
    from dmnas.search.pipeline import SearchConfig

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
    from dmnas.search.pipeline import SearchConfig, proxy_scores
    from dmnas.search.trial import budget_epochs

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
    from dmnas.search.experiment import hyperband_iteration_trials

    # R=9, eta=3: s_max=2; brackets of 3 | 5+1 | 9+3+1 configurations
    assert hyperband_iteration_trials(9, 3) == 3 + 6 + 13
    # R=40 (the default proxy epochs): 4 | 6+2 | 12+4+1 | 27+9+3+1
    assert hyperband_iteration_trials(40, 3) == 4 + 8 + 17 + 40
    assert hyperband_iteration_trials(1, 3) == 1
