"""Real NNI experiments (local training service, web server on 127.0.0.1) on a tiny space."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("nni")
pytestmark = [pytest.mark.nni, pytest.mark.slow]

from dmnas.nas.nni.manager import choose_port  # noqa: E402
from dmnas.nas.nni.experiment import ExperimentSettings, run_experiment  # noqa: E402
from dmnas.nas.tuners import TUNERS  # noqa: E402
from dmnas.nas.space import load_space  # noqa: E402
from dmnas.nas.trials.context import TrialContext  # noqa: E402
from dmnas.train import TrainRecipe  # noqa: E402
from cli_output import search_id  # noqa: E402

TINY_PROXY = [
    "--ipc",
    "2",
    "--iterations",
    "2",
    "--batch-real",
    "16",
    "--embed-arch",
    "d1_w8_relu_instancenorm_avgpooling",
    "--epochs",
    "4",
    "--full-epochs",
    "1",
]


def test_concurrent_trials_are_paired_with_what_they_trained(nni_env: dict[str, str], tmp_path: Path) -> None:
    """concurrency 2: NNI's own trial table may mislabel (#5726); dmnas's records must not."""
    space = load_space("convnet_tiny")
    search_dir = tmp_path / "search"
    search_dir.mkdir()
    TrialContext(
        proxy="random",
        data={"name": "fashion_mnist"},
        data_dir=None,
        recipe=TrainRecipe(epochs=2, strategy="none").to_dict(),
        device="cpu",
        seed=0,
        results_dir=str(search_dir / "trials"),
        ground_truth_dir=str(tmp_path / "gt"),
        ipc=2,
        threads=1,
    ).save(search_dir / "context.json")
    port = choose_port(18500)
    seen: dict[str, object] = {}

    def while_running(outcome) -> None:  # noqa: ANN001 - the experiment is still up here
        for endpoint in ("check-status", "trial-jobs", "metric-data", "job-statistics"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{endpoint}", timeout=30) as r:
                seen[endpoint] = json.loads(r.read())

    settings = ExperimentSettings(
        name="dmnas test",
        nni_space=space.nni_space,
        space_size=space.size,
        tuner="grid",
        max_trials=100,
        concurrency=2,
        max_duration="10m",
        port=port,
        nni_dir=tmp_path / "nni",
        trial_command=f"{sys.executable} -m dmnas.nas.trials.adapter --context {search_dir / 'context.json'}",
        trial_code_dir=search_dir,
    )
    outcome = run_experiment(settings, on_done=while_running, poll_seconds=1.0)
    assert outcome.status == "DONE"  # GridSearch capped at the grid size: it finishes
    assert len(outcome.trials) == 4 and len(outcome.succeeded) == 4 and not outcome.failed
    trained = sorted(t.record["arch"] for t in outcome.succeeded)
    assert trained == sorted(s.name for s in space.specs())  # every architecture exactly once
    for t in outcome.succeeded:
        assert t.tuner_arch == t.record["arch"], "result paired with the wrong architecture"
    assert seen["check-status"]["status"] in ("DONE", "RUNNING", "NO_MORE_TRIAL")
    assert len(seen["trial-jobs"]) == 4 and any(m["type"] == "FINAL" for m in seen["metric-data"])
    # nothing left running
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/check-status", timeout=5)


def dmnas(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the CLI; ``stdout`` of the result holds everything it said (its report on stdout and its
    log lines on stderr), ``stderr`` the log and error lines alone."""
    proc = subprocess.run(
        [sys.executable, "-m", "dmnas", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    proc.stdout = proc.stdout + proc.stderr
    return proc


def test_search_cli_with_ground_truth_and_report(nni_env: dict[str, str]) -> None:
    # Every architecture of the tiny space is in the unbiased sample, at two seeds: the ceiling exists.
    gt = ["--ground-truth", "4", "--confirm", "1", "--full-seeds", "2", "--table", "none"]
    proc = dmnas(
        nni_env,
        "search",
        "--space",
        "convnet_tiny",
        "--proxy",
        "dm",
        "--concurrency",
        "2",
        "--port",
        "18600",
        *gt,
        *TINY_PROXY,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "search " in out and "4 succeeded, 0 failed" in out
    assert (
        "ground truth (1 ep, cosine lr 0.01" in out
        and "unbiased sample of 4 (inclusion probability 1.00 each)" in out
    )
    assert "0 of 8 trainings already known, training 8 on full data" in out
    assert "| dm ipc2 4ep (" in out and "report scatter_0_png:" in out and "report proxies_svg:" in out
    assert "Noise ceiling (Spearman between seed 0 and seed 1 of the same recipe, n=4)" in out
    assert "Spearman–Brown" in out and "## Paired comparisons" not in out  # one proxy: nothing to pair
    assert "pixel sd on average from their initialisation" in out  # the report says how far the DM set moved
    exp_id = search_id(out)
    work = Path(nni_env["DMNAS_WORKDIR"])
    report = json.loads((work / "reports" / exp_id / "report.json").read_text())
    assert report["rows"][0]["estimate"]["n"] == 4 and report["ceiling"]["n"] == 4
    assert report["rows"][0]["confirmation"]["winner"] and report["ground_truth"]["seeds"] == [0, 1]

    # A random subset and a zero-cost score (synflow, inside NNI trials too), reusing that ground
    # truth, then all three side by side.
    proc2 = dmnas(
        nni_env, "search", "--space", "convnet_tiny", "--proxy", "random", "--port", "18600", "--proxy-draws", "2",
        *gt, *TINY_PROXY,
    )  # fmt: skip
    assert proc2.returncode == 0, proc2.stderr
    assert "8 of 8 trainings already known" in proc2.stdout and "training 8" not in proc2.stdout
    assert "x2 draws (" in proc2.stdout and "over its 2 draws" in proc2.stdout  # each measure over the draws
    exp2 = search_id(proc2.stdout)
    trial2 = json.loads(next((work / "searches" / exp2 / "trials").glob("*.json")).read_text())
    assert len(trial2["draw_scores"]) == 2 and trial2["seeds"] == [0, 1]
    proc3 = dmnas(
        nni_env,
        "search",
        "--space",
        "convnet_tiny",
        "--proxy",
        "synflow",
        "--port",
        "18600",
        *gt,
        *TINY_PROXY,
    )
    assert proc3.returncode == 0, proc3.stderr
    assert "4 succeeded, 0 failed" in proc3.stdout and "| synflow at init (" in proc3.stdout
    exp3 = search_id(proc3.stdout)
    trial = json.loads(next((work / "searches" / exp3 / "trials").glob("*.json")).read_text())
    assert trial["proxy"] == "synflow" and trial["default"] == trial["score"] > 0
    both = dmnas(nni_env, "report", exp_id, exp2, exp3)
    assert both.returncode == 0, both.stderr
    assert "## Paired comparisons" in both.stdout and "| spearman | 4 |" in both.stdout
    assert (
        "| dm ipc2 4ep (" in both.stdout
        and "| random ipc2 4ep x2 draws (" in both.stdout
        and "| synflow at init (" in both.stdout
    )

    # the finished experiment's web UI can be reopened, and closes cleanly on SIGTERM
    import signal
    import time

    view = subprocess.Popen(
        [sys.executable, "-m", "dmnas", "view", exp_id, "--port", "18650"],
        env=nni_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status = None
    for _ in range(60):
        try:
            with urllib.request.urlopen("http://127.0.0.1:18650/api/v1/nni/check-status", timeout=5) as r:
                status = json.loads(r.read())["status"]
            if status == "VIEWED":
                break
        except OSError:
            pass
        time.sleep(1)
    assert status == "VIEWED"
    with urllib.request.urlopen("http://127.0.0.1:18650/api/v1/nni/trial-jobs", timeout=5) as r:
        assert len(json.loads(r.read())) == 4
    view.send_signal(signal.SIGTERM)
    view.communicate(timeout=60)
    for _ in range(30):  # NNI's manager shuts down shortly after the DELETE
        try:
            urllib.request.urlopen("http://127.0.0.1:18650/api/v1/nni/check-status", timeout=5).close()
        except OSError:
            break
        time.sleep(1)
    else:
        pytest.fail("the web UI was still up 30 s after `dmnas view` was stopped")


def test_checks_before_nni_starts(nni_env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("depth: {_type: choice, _value: [1]}\nact: {_type: choice, _value: [swish]}\n")
    for args, message in [
        (["--space", "nope"], "unknown search space 'nope'; available:"),
        (["--space", str(bad)], "act value 'swish' is unknown"),
        (["--tuner", "smac"], "unknown tuner 'smac'; valid: grid, random, tpe, evolution, hyperband, bohb"),
        (["--dataset", "imagenet"], "unknown dataset"),
        (["--concurrency", "0"], "--concurrency must be >= 1, got 0"),
        (["--proxy-seeds", "0"], "--proxy-seeds must be >= 1, got 0"),
        (["--full-seeds", "0"], "--full-seeds must be >= 1, got 0"),
        (["--confirm", "-1"], "--confirm must be >= 0, got -1"),
        (["--table", str(tmp_path / "nowhere")], "neither a shipped table"),
    ]:
        proc = dmnas(nni_env, "search", "--space", "convnet_tiny", *TINY_PROXY, *args, timeout=120)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        # the field after the parenthesised command name is the state, then the parent pid
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _python_trial(pattern: str) -> int | None:
    """The pid of a running Python trial process whose command line contains ``pattern``."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    for pid in map(int, found):
        argv0 = _cmdline(pid).split(" ", 1)[0]
        if "python" in Path(argv0).name:
            return pid
    return None


def test_unfit_space_is_rejected_and_a_killed_trial_does_not_stop_the_search(
    nni_env: dict[str, str], tmp_path: Path
) -> None:
    import contextlib
    import signal
    import threading
    import time

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(3):
        (tmp_path / "imgs" / f"c{c}").mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
                tmp_path / "imgs" / f"c{c}" / f"{i}.png"
            )
    data = [
        "--proxy",
        "random",
        "--dataset",
        f"imagefolder:{tmp_path / 'imgs'}",
        "--image-size",
        "8",
        "--ipc",
        "2",
        "--port",
        "18700",
    ]
    # Four pooling layers cannot fit 8x8 images: said before NNI starts, not as failed trials.
    unfit = tmp_path / "unfit.yaml"
    unfit.write_text("depth: {_type: choice, _value: [1, 4]}\nwidth: {_type: choice, _value: [4]}\n")
    proc = dmnas(nni_env, "search", "--space", str(unfit), *data, timeout=120)
    errors = [
        line for line in proc.stderr.splitlines() if line.startswith("dmnas: error:")
    ]  # after the data-prep INFO line
    assert (
        proc.returncode == 2
        and len(errors) == 1
        and "1 of the 2 architectures" in errors[0]
        and "d4_w4" in errors[0]
    ), proc.stderr
    assert not (Path(nni_env["DMNAS_WORKDIR"]) / "nni").exists()

    # A trial killed mid-run (as by the OOM killer) is a failed trial; the search goes on.
    space = tmp_path / "space.yaml"
    space.write_text("depth: {_type: choice, _value: [1, 2, 3]}\nwidth: {_type: choice, _value: [4]}\n")
    killed: list[str] = []

    def kill_first_trial() -> None:
        deadline = time.time() + 300
        # only this test's trials: their command line names its work folder
        pattern = f"dmnas.nas.trials.adapter --context {nni_env['DMNAS_WORKDIR']}"
        while not killed and time.time() < deadline:
            # The pattern matches NNI's wrapper shell as well as the Python trial, and the shell can
            # be seen before its Python child exists: wait for the Python process itself, let it get
            # into training, then kill it and its wrapper (a surviving child would finish the trial).
            trial = _python_trial(pattern)
            if trial is not None:
                time.sleep(1)
                for pid in (trial, _parent(trial)):
                    if pid is not None and pattern in _cmdline(pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                        killed.append(str(pid))
            time.sleep(0.2)

    killer = threading.Thread(target=kill_first_trial, daemon=True)
    killer.start()
    proc = dmnas(nni_env, "search", "--space", str(space), *data, "--epochs", "1500", "--ground-truth", "0")
    killer.join(timeout=10)
    assert killed and proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 succeeded, 1 failed" in proc.stdout
    # the search's own folder (its ground_truth/ subfolder holds the confirmation runs' results)
    exp_id = search_id(proc.stdout)
    results = json.loads((Path(nni_env["DMNAS_WORKDIR"]) / "searches" / exp_id / "results.json").read_text())
    # NNI's local service usually labels a SIGKILLed trial USER_CANCELED, but under load it was
    # seen labelled SUCCEEDED (its wrapper exited 0): either way it has no result, and dmnas counts
    # it as failed.
    assert len(results["trials"]) == 3 and results["failed"] == 1
    (failed,) = [t for t in results["trials"] if t["record"] is None]
    assert failed["status"] in ("USER_CANCELED", "FAILED", "SUCCEEDED")
    assert Path(
        failed["stderr"]
    ).is_file()  # NNI reports a path that does not exist; dmnas finds the real one
    assert f"trial {failed['trial_id']} failed:" in proc.stderr and "log:" in proc.stderr


def test_ctrl_c_stops_the_experiment_and_its_processes(
    nni_env: dict[str, str], start_dmnas: Callable[..., subprocess.Popen[str]]
) -> None:
    import signal
    import time

    proc = start_dmnas(
        nni_env,
        "search",
        "--space",
        "convnet_tiny",
        "--proxy",
        "random",
        "--ipc",
        "2",
        "--epochs",
        "20000",
        "--port",
        "18800",
    )
    work = Path(nni_env["DMNAS_WORKDIR"])
    assert proc.stderr is not None
    for line in proc.stderr:  # the status line says when a trial is running
        if "running" in line:
            break
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    time.sleep(2)
    # It ran in worker mode (the default): a warm worker was started, and it must be gone too.
    assert list((work / "searches").glob("*/workers/cpu-0.log")), "no warm worker was started"
    # The NNI manager, the trials and the workers name this test's own work folder on their command lines.
    left = subprocess.run(["pgrep", "-f", str(work)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes left behind: {left}"
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:18800/api/v1/nni/check-status", timeout=5)


def test_a_killed_search_resumes_without_training_again(nni_env: dict[str, str], start_dmnas) -> None:  # noqa: ANN001
    """SIGKILL the search, its NNI manager and its running trial mid-run; `--resume` scores only
    what was not recorded, and the report covers every architecture exactly once."""
    import signal
    import time

    work = Path(nni_env["DMNAS_WORKDIR"])
    proc = start_dmnas(
        nni_env,
        "search",
        "--space",
        "convnet_tiny",
        "--proxy",
        "random",
        "--port",
        "18800",
        "--table",
        "none",
        *TINY_PROXY,
    )
    line = ""
    while "NNI experiment " not in line:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, proc.stdout.read()
    exp_id = line.split("NNI experiment ", 1)[1].split(":", 1)[0]
    trials = work / "searches" / exp_id / "trials"
    deadline = time.monotonic() + 600
    while len(list(trials.glob("*.json"))) < 1:
        assert time.monotonic() < deadline and proc.poll() is None, "no trial finished"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    # The NNI manager and the running trial carry the id on their command lines.
    subprocess.run(["pkill", "-9", "-f", exp_id], check=False)
    proc.wait(timeout=60)
    before = {p.name: p.read_text() for p in trials.glob("*.json")}
    assert 1 <= len(before) < 4

    resumed = dmnas(nni_env, "search", "--resume", exp_id, "--port", "18800")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming search {exp_id}" in resumed.stdout
    assert f"{len(before)} of 4 architectures already scored" in resumed.stdout
    results = json.loads((work / "searches" / exp_id / "results.json").read_text())
    archs = [t["record"]["arch"] for t in results["trials"] if t["record"]]
    expected = sorted(s.name for s in load_space("convnet_tiny").specs())
    assert sorted(archs) == expected, resumed.stdout + resumed.stderr  # each exactly once
    assert results["resumed_from_records"] == len(before)
    for name, text in before.items():  # recorded before the kill: kept, not trained again
        assert (trials / name).read_text() == text
    assert len(list(trials.glob("*.json"))) == 4
    assert "| random ipc2 4ep (" in resumed.stdout  # the report, as after any search
    again = dmnas(nni_env, "search", "--resume", exp_id, "--port", "18800")
    assert again.returncode == 0 and "nothing left to score" in again.stdout, again.stderr


@pytest.mark.parametrize(
    "tuner, trials",
    [
        ("hyperband", 6),
        # BOHB runs one round at a time (R=9: 9 trials of 1 epoch, then the best 3 for 3 epochs):
        # 11 trials cross a round boundary, where NNI's tuner says "no more trials" for a while.
        pytest.param(
            "bohb",
            11,
            marks=pytest.mark.skipif(bool(TUNERS.get("bohb").missing()), reason="pip install 'dmnas[bohb]'"),
        ),
    ],
)
def test_multi_fidelity_search_hands_trials_budgets_in_proxy_epochs(
    nni_env: dict[str, str], tuner: str, trials: int
) -> None:
    proc = dmnas(
        nni_env,
        "search",
        "--space",
        "convnet_tiny",
        "--proxy",
        "random",
        "--tuner",
        tuner,
        "--max-trials",
        str(trials),
        "--concurrency",
        "2",
        "--port",
        "18850",
        "--table",
        "none",
        *[a for a in TINY_PROXY if a not in ("--epochs", "4")],
        "--epochs",
        "9",
    )
    assert proc.returncode == 0, proc.stderr
    exp_id = search_id(proc.stdout)
    results = json.loads((Path(nni_env["DMNAS_WORKDIR"]) / "searches" / exp_id / "results.json").read_text())
    budgets = [t["record"]["budget_epochs"] for t in results["trials"] if t["record"]]
    assert len(budgets) == trials and set(budgets) <= {1, 3, 9} and min(budgets) < 9  # R=9, eta=3
    if tuner == "bohb":
        assert sorted(budgets) == [1] * 9 + [3] * 2
    assert "| random ipc2 9ep (" in proc.stdout
