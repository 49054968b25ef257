"""Trials sharing a GPU, as NNI 3.0's scheduler hands them out: pure rules, then real NNI experiments
on a machine that NNI's GPU collector is made to see as a one-GPU machine (a stand-in ``pynvml``
first on the path: no GPU is needed, and trials here never touch CUDA)."""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import urllib.request
import time
from pathlib import Path

import pytest

from dmnas.nas.nni.gpu_share import GpuShare, share_machines, share_one_machine

# What NNI's collector (nni/tools/nni_manager_scripts/collect_gpu_info.py) calls, for FAKE_GPUS idle GPUs.
FAKE_PYNVML = '''
import os
from types import SimpleNamespace as _NS

def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return int(os.environ.get("FAKE_GPUS", "1"))
def nvmlSystemGetDriverVersion(): return "0.0-fake"
def nvmlSystemGetCudaDriverVersion_v2(): return 12000
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetName(h): return "fake GPU"
def nvmlDeviceGetNumGpuCores(h): return 1
def nvmlDeviceGetMemoryInfo(h): return _NS(total=1 << 34, free=1 << 34)
def nvmlDeviceGetUtilizationRates(h): return _NS(gpu=0, memory=0)
def nvmlDeviceGetComputeRunningProcesses_v3(h): return []
def nvmlDeviceGetGraphicsRunningProcesses_v3(h): return []
def nvmlSystemGetProcessName(pid): return "?"
'''

# A trial that records when it ran and which GPU NNI gave it, then reports a final result.
TRIAL = """
import json, os, sys, time
import nni
params = nni.get_next_parameter()
start = time.time()
time.sleep(4)
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"x": params.get("x"), "start": start, "end": time.time(),
                        "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}) + "\\n")
nni.report_final_result({"default": 1.0})
"""


def test_one_trial_on_the_only_gpu_is_asked_as_half_a_gpu() -> None:
    assert share_one_machine(1, 1, 4) == share_one_machine(1, 1, 1)
    halved = share_one_machine(1, 1, 4)
    assert (halved.per_gpu, halved.concurrency, halved.halved) == (2, 1, True)
    assert share_one_machine(1, 2, 4).per_gpu == 1  # two GPUs: a whole one passes NNI's check
    assert share_one_machine(4, 1, 8) == GpuShare(4, 8, False)  # shares: NNI's check passes as it is
    shares, concurrency = share_machines(1, [1, 2], 8)
    assert shares == [2, 1] and concurrency == 3  # capped at the listed GPUs' capacity
    assert share_machines(4, [1], 2) == ([4], 2)


def fake_gpu_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpus: int) -> None:
    fake = tmp_path / "fake_nvml"
    fake.mkdir(exist_ok=True)
    (fake / "pynvml.py").write_text(FAKE_PYNVML)
    monkeypatch.setenv("FAKE_GPUS", str(gpus))
    monkeypatch.setenv("PYTHONPATH", str(fake))  # NNI's manager runs its collector with this env
    monkeypatch.syspath_prepend(str(fake))  # and dmnas counts GPUs in-process with the same collector
    for mod in ("pynvml", "nni.tools.nni_manager_scripts.collect_gpu_info"):
        monkeypatch.delitem(sys.modules, mod, raising=False)


def run_trials(tmp_path: Path, trials_per_gpu: int, concurrency: int, port: int) -> tuple[object, list[dict]]:
    from dmnas.nas.nni.manager import choose_port
    from dmnas.nas.nni.experiment import ExperimentSettings, run_experiment

    code = tmp_path / f"code{trials_per_gpu}"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    record = code / "ran.jsonl"
    settings = ExperimentSettings(
        name="gpu share test",
        nni_space={"x": {"_type": "choice", "_value": [0, 1, 2, 3]}},
        space_size=4,
        tuner="grid",
        max_trials=4,
        concurrency=concurrency,
        max_duration="3m",
        port=choose_port(port),
        nni_dir=tmp_path / "nni",
        trial_command=f"{sys.executable} trial.py {record}",
        trial_code_dir=code,
        use_gpu=True,
        trials_per_gpu=trials_per_gpu,
    )
    outcome = run_experiment(settings, poll_seconds=1.0)
    ran = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return outcome, ran


def most_at_once(ran: list[dict]) -> int:
    return max(sum(r["start"] < o["end"] and o["start"] < r["end"] for o in ran) for r in ran)


@pytest.mark.nni
@pytest.mark.slow
def test_trials_share_and_hold_the_only_gpu_as_asked(
    nni_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("nni")
    fake_gpu_machine(tmp_path, monkeypatch, gpus=1)
    t0 = time.monotonic()
    outcome, ran = run_trials(tmp_path, trials_per_gpu=1, concurrency=2, port=18720)
    assert outcome.status == "DONE" and len(outcome.succeeded) == 4, "one trial per GPU on a one-GPU machine hung"
    assert {r["gpus"] for r in ran} == {"0"} and most_at_once(ran) == 1
    assert time.monotonic() - t0 < 150
    outcome, ran = run_trials(tmp_path, trials_per_gpu=2, concurrency=2, port=18730)
    assert outcome.status == "DONE" and len(outcome.succeeded) == 4
    assert {r["gpus"] for r in ran} == {"0"} and most_at_once(ran) == 2  # two trials on the one GPU


@pytest.mark.nni
@pytest.mark.slow
def test_nni_as_it_comes_freezes_on_a_whole_gpu_trial_on_a_one_gpu_machine(
    nni_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the rule above exists. NNI 3.0 asked for one whole GPU of one refuses it and retries in
    a loop that never yields: no trial starts and the manager stops answering, web UI included."""
    pytest.importorskip("nni")
    from nni.experiment import Experiment, RunMode

    from dmnas.nas.nni.manager import choose_port, manager_env

    fake_gpu_machine(tmp_path, monkeypatch, gpus=1)
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    exp = Experiment("local")
    c = exp.config
    c.search_space = {"x": {"_type": "choice", "_value": [0, 1]}}
    c.trial_command = f"{sys.executable} trial.py {code / 'ran.jsonl'}"
    c.trial_code_directory = str(code)
    c.trial_concurrency = 1
    c.max_trial_number = 2
    c.tuner.name = "GridSearch"
    c.experiment_working_directory = str(tmp_path / "nni")
    c.trial_gpu_number = 1
    c.training_service.use_active_gpu = True
    c.training_service.max_trial_number_per_gpu = 1
    port = choose_port(18740)
    with manager_env("127.0.0.1"):
        exp.start(port, run_mode=RunMode.Background)
    try:
        time.sleep(25)
        assert not (code / "ran.jsonl").exists(), "NNI started the trial: the workaround may go"
        with pytest.raises(OSError):  # URLError or a timeout: nobody answers
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/check-status", timeout=10)
    finally:
        # Experiment.stop() would wait for the frozen manager forever: kill its process group.
        os.killpg(exp._proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
        exp._proc.wait()  # type: ignore[union-attr]
        atexit.unregister(exp.stop)  # NNI's own stop at exit would log into closed streams
