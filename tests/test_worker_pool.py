"""Warm workers without NNI: slots, the same scores as a trial process, a crash that fails one trial,
and no worker outliving its owner, its idle time or a stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dmnas.nas.processes import pid_alive

from dmnas.errors import DmnasError
from dmnas.nas.trials import warm_workers as wp


def test_slots_wait_for_a_free_one_and_free_on_exit(tmp_path: Path) -> None:
    candidates = wp.slots(tmp_path, 2, "cpu")
    assert [s.name for s in candidates] == ["cpu-0", "cpu-1"]
    with wp.take_slot(candidates) as (a, _):
        with wp.take_slot(candidates) as (b, _):
            assert {a.name, b.name} == {"cpu-0", "cpu-1"}
            got: list[str] = []

            def third() -> None:
                with wp.take_slot(candidates) as (c, _):
                    got.append(c.name)

            t = threading.Thread(target=third)
            t.start()
            time.sleep(0.3)
            assert not got  # both busy: the third waits
        t.join(5)
        assert got == [b.name]  # and takes the one that was freed


def test_device_keys_and_short_socket_paths(tmp_path: Path) -> None:
    assert wp.device_key({}) == "cpu" and wp.device_key({"CUDA_VISIBLE_DEVICES": "0,1"}) == "gpu0-1"
    deep = tmp_path / ("x" * 120)
    deep.mkdir()
    sock = wp.Slot(deep, "cpu-0").socket
    assert len(str(sock)) <= wp.SOCKET_PATH_MAX and sock.name.endswith(".sock")
    assert wp.Slot(deep, "cpu-0").socket == sock  # the same folder always maps to the same path


def test_worker_mode_queues_one_trial_per_worker() -> None:
    assert wp.worker_slots(2, False, 4) == 2 and wp.worker_slots(8, True, 4) == 4 and wp.worker_slots(2, True, 4) == 2
    assert wp.nni_trials(2) == 2 * (1 + wp.WAITING_PER_WORKER)
    assert "--mode worker --workers 2 --owner-pid 9" in wp.trial_command(Path("c.json"), "worker", 2, 9)
    assert "--mode" not in wp.trial_command(Path("c.json"), "process", 2, 9)


def test_stop_workers_kills_only_workers(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "cpu-0.pid").write_text(str(bystander.pid))  # a pid that is not a worker's
        (tmp_path / "cpu-1.pid").write_text("not a pid")
        assert wp.stop_workers(tmp_path, wait_s=0.5) == 0
        assert bystander.poll() is None
    finally:
        bystander.kill()


# --- real workers on Fashion-MNIST (a worker is a real process importing torch: seconds each) ---

PARAMS = {"depth": 1, "width": 4, "act": "relu", "norm": "instancenorm", "pool": "avgpooling"}


def write_context(folder: Path, epochs: int = 2) -> Path:
    from dmnas.nas.trials.context import TrialContext
    from dmnas.train import TrainRecipe

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "context.json"
    TrialContext(
        proxy="random",
        data={"name": "fashion_mnist"},
        data_dir=None,
        recipe=TrainRecipe(epochs=epochs, strategy="color_crop").to_dict(),
        device="cpu",
        seed=0,
        results_dir=str(folder / "trials"),
        ground_truth_dir=str(folder / "gt"),
        ipc=5,
        threads=1,
        reports=2,
    ).save(path)
    return path


@pytest.fixture
def real_data(fmnist_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMNAS_DATA", fmnist_env["DMNAS_DATA"])


@pytest.mark.slow
def test_a_warm_worker_scores_as_a_trial_process_does(tmp_path: Path, real_data: None) -> None:
    """Same seeds, same scores: the second architecture a worker scores (after another one) equals
    the score of a fresh process, and every intermediate result is relayed."""
    from dmnas.nas.trials.context import TrialContext
    from dmnas.nas.trials.proxies import run_trial

    ctx_path = write_context(tmp_path / "s")
    seen: list[float] = []
    other = {**PARAMS, "depth": 2}
    wp.score_in_worker(other, "t0", ctx_path, 1, os.getpid(), seen.append, {})
    rec = wp.score_in_worker(PARAMS, "t1", ctx_path, 1, os.getpid(), seen.append, {})
    assert rec["timings"]["worker_trial_index"] == 1 and len(seen) == 2
    fresh = subprocess.run(
        [sys.executable, "-c", "import json, sys; from pathlib import Path; from dmnas.nas.trials.context import TrialContext;"
         "from dmnas.nas.trials.proxies import run_trial; print(json.dumps(run_trial(json.loads(sys.argv[1]),"
         " TrialContext.load(Path(sys.argv[2])), trial_id='p')['score']))", json.dumps(PARAMS), str(ctx_path)],
        capture_output=True, text=True, check=True,
    )
    assert rec["score"] == json.loads(fresh.stdout.strip().splitlines()[-1])
    assert TrialContext.load(ctx_path).proxy == "random" and run_trial  # imported for the subprocess's sake
    assert wp.stop_workers(wp.workers_dir(ctx_path.parent)) == 1
    assert not wp.live_workers(wp.workers_dir(ctx_path.parent))


@pytest.mark.slow
def test_a_worker_crash_fails_only_its_trial(tmp_path: Path, real_data: None) -> None:
    ctx_path = write_context(tmp_path / "s", epochs=200)
    folder = wp.workers_dir(ctx_path.parent)

    def kill_worker_once_training() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = folder / "cpu-0.log"
            if log.exists() and "ready" in log.read_text():
                time.sleep(1.0)  # mid-training
                os.kill(int((folder / "cpu-0.pid").read_text()), signal.SIGKILL)
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_worker_once_training)
    killer.start()
    with pytest.raises(DmnasError, match="died while scoring it.*log"):
        wp.score_in_worker(PARAMS, "crashed", ctx_path, 1, os.getpid(), lambda v: None, {})
    killer.join()
    write_context(tmp_path / "s", epochs=2)  # the next trial gets a fresh worker and succeeds
    rec = wp.score_in_worker(PARAMS, "next", ctx_path, 1, os.getpid(), lambda v: None, {})
    assert rec["timings"]["worker_trial_index"] == 0 and rec["timings"]["worker_start"] > 0
    wp.stop_workers(folder)


@pytest.mark.slow
def test_a_worker_ends_with_its_owner_and_when_idle(tmp_path: Path, real_data: None) -> None:
    ctx_path = write_context(tmp_path / "s")
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    slot = wp.slots(wp.workers_dir(ctx_path.parent), 1, "cpu")[0]
    slot.folder.mkdir(parents=True)
    pid = wp.start_worker(slot, ctx_path, owner.pid, idle_timeout=600)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 15
    while pid_alive(pid) and wp.is_worker_process(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not wp.is_worker_process(pid), "a worker outlived its owner"
    pid = wp.start_worker(slot, ctx_path, os.getpid(), idle_timeout=1)
    deadline = time.monotonic() + 15
    while wp.is_worker_process(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not wp.is_worker_process(pid), "an idle worker did not exit"
    assert not slot.socket.exists() and not slot.pidfile.exists()  # it cleaned up after itself
