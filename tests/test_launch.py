"""One launcher per search: this machine (worker or process mode) or other machines over SSH."""

from __future__ import annotations

import shlex
from pathlib import Path

from dmnas.nas.folder import SearchFolder
from dmnas.nas.launch import LocalLauncher, RemoteLauncher, launcher_for


def test_worker_mode_runs_one_waiting_trial_per_worker(tmp_path: Path) -> None:
    launch = LocalLauncher("worker", use_gpu=False).launch(tmp_path, concurrency=2, trials_per_gpu=4)
    words = shlex.split(launch.command)
    assert words[words.index("--workers") + 1] == "2" and words[words.index("--context") + 1] == str(tmp_path / "context.json")
    assert (launch.concurrency, launch.trials_per_gpu) == (4, 8) and launch.workers_dir is not None


def test_process_mode_is_nni_s_own_concurrency(tmp_path: Path) -> None:
    launch = LocalLauncher("process", use_gpu=True).launch(tmp_path, concurrency=3, trials_per_gpu=2)
    assert "--workers" not in launch.command and (launch.concurrency, launch.trials_per_gpu, launch.workers_dir) == (3, 2, None)


def test_a_local_context_shares_the_cores_and_the_cache_stays_put(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from dmnas.nas.trials.context import TrialContext

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    ctx = TrialContext(proxy="dm", data={}, data_dir=None, recipe={}, device="cpu", seed=0, results_dir="r", ground_truth_dir="g")
    assert LocalLauncher("worker", use_gpu=False).context(ctx, "fp", 2).threads == 4
    assert LocalLauncher("worker", use_gpu=True).context(ctx, "fp", 2).threads == 0
    folder = SearchFolder(tmp_path, "abc")
    assert LocalLauncher("worker", False).place_proxy_sets("/cache", ["k"], folder) == "/cache"


def test_the_launcher_follows_the_machines_file(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    assert launcher_for(None, "worker", "cuda") == LocalLauncher("worker", use_gpu=True)
    assert launcher_for(None, "process", "cpu") == LocalLauncher("process", use_gpu=False)
    monkeypatch.setattr("dmnas.nas.remote.load_machines", lambda path: f"machines of {path}")
    remote = launcher_for(tmp_path / "m.yaml", "worker", "cpu")
    assert isinstance(remote, RemoteLauncher) and remote.trial_mode == "process"
