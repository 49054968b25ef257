"""How many trials share a GPU, in the terms NNI 3.0's GPU scheduler understands.

NNI gives each GPU trial ``trial_gpu_number / max_trial_number_per_gpu`` of a GPU (its local and
remote v3 services share one scheduler, ``nni_node/common/trial_keeper/task_scheduler``). That
scheduler refuses a request of whole GPUs when the machine has no more GPUs than requested
(``gpuNumber >= gpus.length``), and the manager retries the trial forever: on a one-GPU machine
``trial_gpu_number = 1`` with one trial per GPU never starts a trial (reproduced with a faked
one-GPU machine, ``tests/test_gpu_share.py``). One trial on the only GPU is therefore asked for as
half a GPU, with the concurrency capped so that the other half is never used.
"""

from __future__ import annotations

from dataclasses import dataclass

HALVES = 2  # a whole GPU asked for as this many shares (any fraction < 1 passes NNI's check)


@dataclass(frozen=True)
class GpuShare:
    per_gpu: int  # NNI's max_trial_number_per_gpu
    concurrency: int  # NNI's trial_concurrency
    halved: bool  # one trial per GPU asked for as half a GPU (NNI 3.0's one-GPU refusal)


def share_one_machine(trials_per_gpu: int, gpus: int, concurrency: int) -> GpuShare:
    """``trials_per_gpu`` trials on each of a machine's ``gpus`` GPUs (the count NNI's scheduler sees)."""
    if trials_per_gpu == 1 and gpus == 1:
        return GpuShare(HALVES, min(concurrency, 1), True)
    return GpuShare(trials_per_gpu, concurrency, False)


def share_machines(trials_per_gpu: int, gpus_per_machine: list[int], concurrency: int) -> tuple[list[int], int]:
    """Per machine NNI's ``max_trial_number_per_gpu``, and the experiment's concurrency, for remote
    machines whose GPUs dmnas lists (``gpus`` of the machines file: the listed count stands in for
    the machine's, which is only known there). Concurrency is capped at the listed GPUs' capacity:
    a halved machine must not take a second trial because the experiment allows more."""
    shares = [share_one_machine(trials_per_gpu, n, concurrency) for n in gpus_per_machine]
    capacity = sum(n * trials_per_gpu for n in gpus_per_machine)
    return [s.per_gpu for s in shares], max(1, min(concurrency, capacity))


def nni_gpu_count() -> int:
    """The GPUs NNI's scheduler will see on this machine: counted by NNI's own collector (pynvml)."""
    try:
        from nni.tools.nni_manager_scripts.collect_gpu_info import collect
    except ImportError:  # no pynvml: NNI's scheduler could not count either; nothing to work around
        return 0
    info = collect(False)
    return int(info.gpu_number) if info is not None else 0
