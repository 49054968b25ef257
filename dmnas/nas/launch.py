"""Where and how a search's trials run, as one object: this machine or other machines over SSH
(NNI's remote training service), warm workers or one process per trial.

A :class:`Launcher` answers everything the search asks about that choice -- the checks before
anything is condensed, where the proxy sets travel, the trial context as the trials see it, and
NNI's trial command, concurrency and workers folder -- so :mod:`dmnas.nas.run` and
:mod:`dmnas.nas.resume` hold no branch on it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dmnas.defaults import for_device
from dmnas.nas.folder import NNI_IGNORE, SearchFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """What NNI's experiment needs of the launch choice for one phase."""

    command: str  # NNI's trial command (one shell line)
    concurrency: int  # NNI's trial concurrency
    trials_per_gpu: int  # NNI's max_trial_number_per_gpu
    workers_dir: Path | None  # the warm workers' folder (None: no workers)


@dataclass(frozen=True)
class LocalLauncher:
    """Trials on this machine: ``mode`` ``worker`` (warm workers score trial after trial) or
    ``process`` (one process per trial); ``use_gpu`` when the proxy set's device is CUDA."""

    mode: str
    use_gpu: bool
    machines: None = None

    @property
    def trial_mode(self) -> str:
        return self.mode

    def check(self, data_config: dict[str, Any], fingerprint: str) -> None:
        """Nothing to check beyond what the search checked."""

    def place_proxy_sets(self, cache_dir: str, keys: list[str], folder: SearchFolder) -> str:
        return cache_dir  # the trials read the cache where it is

    def results_dir(self, phase_dir: Path) -> str:
        """Where a phase's trials write their records, as the trials see it."""
        return str(phase_dir / "trials")

    def context(self, ctx: Any, fingerprint: str, concurrency: int) -> Any:
        """Each CPU trial gets its share of the cores (oversubscribed OpenMP crawls)."""
        return replace(ctx, threads=0 if self.use_gpu else for_device("cpu").trial_threads(concurrency))

    def launch(self, folder: Path, concurrency: int, trials_per_gpu: int) -> Launch:
        from dmnas.nas.trials.warm_workers import nni_trials, trial_command, worker_slots, workers_dir

        slots = worker_slots(concurrency, self.use_gpu, trials_per_gpu)
        command = trial_command(folder / "context.json", self.mode, slots, os.getpid())
        if self.mode != "worker":
            return Launch(command, concurrency, trials_per_gpu, None)
        return Launch(command, nni_trials(concurrency), nni_trials(trials_per_gpu), workers_dir(folder))


@dataclass(frozen=True)
class RemoteLauncher:
    """Trials on the machines of a machines file, over SSH, one process per trial (warm workers
    run on this machine only); each machine's GPUs as its file says."""

    machines: Any  # dmnas.nas.remote.MachineList

    @property
    def use_gpu(self) -> bool:
        return bool(self.machines.use_gpu)

    @property
    def trial_mode(self) -> str:
        return "process"

    def check(self, data_config: dict[str, Any], fingerprint: str) -> None:
        """Every machine reachable, with dmnas, NNI and the same dataset (before condensing)."""
        from dmnas.nas.remote import check_machines

        check_machines(self.machines, data_config, fingerprint)
        log.info("machines: %d ready (%s)", len(self.machines.machines), ", ".join(m.label for m in self.machines.machines))

    def place_proxy_sets(self, cache_dir: str, keys: list[str], folder: SearchFolder) -> str:
        """The sets travel with the trial folder NNI uploads; the trials see them there."""
        from dmnas.nas.remote import ship_proxy_set

        shipped = [ship_proxy_set(Path(cache_dir), k, folder.root) for k in keys]
        return shipped[0] if shipped else cache_dir

    def results_dir(self, phase_dir: Path) -> str:
        """Relative: each trial runs in NNI's uploaded copy of the phase's folder."""
        return "trials"

    def context(self, ctx: Any, fingerprint: str, concurrency: int) -> Any:
        from dmnas.nas.remote import remote_context

        return remote_context(ctx, self.machines, fingerprint, concurrency)

    def launch(self, folder: Path, concurrency: int, trials_per_gpu: int) -> Launch:
        from dmnas.nas.remote import remote_trial_command

        (folder / ".nniignore").write_text(NNI_IGNORE)  # results stay here; only what trials need travels
        return Launch(remote_trial_command(self.machines), concurrency, trials_per_gpu, None)


Launcher = LocalLauncher | RemoteLauncher


def launcher_for(machines_file: Path | None, trial_mode: str, device: str) -> Launcher:
    """The launcher of a search: remote when it names a machines file (then worker mode is said to
    be unavailable), else this machine in ``trial_mode`` on the proxy set's ``device``."""
    if machines_file is None:
        return LocalLauncher(trial_mode, use_gpu=device.startswith("cuda"))
    from dmnas.nas.remote import load_machines

    if trial_mode == "worker":
        log.info("remote machines: one process per trial (warm workers run on this machine only)")
    return RemoteLauncher(load_machines(machines_file))
