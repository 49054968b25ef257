"""Run one NNI experiment (local or remote training service) and collect what its trials really trained.

Designed around NNI 3.0's open bugs (see the README): results are taken from the trials' own
final reports (``metric-data``), never from NNI's trial records (#5726); GridSearch gets at
most as many trials as the grid holds (#3859); a dead tuner ends the wait with an error; GPU
trial settings are used only when CUDA is present; ``reuse_mode`` stays off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dmnas.errors import DmnasError
from dmnas.util import interrupts
from dmnas.nas.config import duration_seconds
from dmnas.nas.nni.gpu_share import nni_gpu_count, share_machines, share_one_machine
from dmnas.nas.nni.manager import check_owner, claim_port, manager_env, manager_host, stop_own_manager
from dmnas.nas.tuners import TUNERS, capped_trials
from dmnas.nas.nni.outcome import (
    FINISHED, OUT_OF_TIME, ExperimentOutcome, collect, fetch_failed_logs, last_manager_error,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentSettings:
    name: str
    nni_space: dict[str, Any]
    space_size: int
    tuner: str
    max_trials: int
    concurrency: int
    max_duration: str | None
    port: int
    nni_dir: Path
    trial_command: str
    trial_code_dir: Path
    use_gpu: bool = False
    seed: int = 0
    exp_id: str | None = None  # NNI generates one when None
    max_budget: int = 1  # budgeted tuners: the full proxy budget (epochs)
    machines: Any = None  # a dmnas.nas.remote.MachineList: NNI's remote (SSH) training service
    ui_host: str = "127.0.0.1"  # where the web UI and REST API listen ("0.0.0.0": every interface)
    trials_per_gpu: int = 1  # NNI's max_trial_number_per_gpu
    workers_dir: Path | None = None  # worker mode: the warm workers to stop when the experiment ends


def tuner_exhausted(status: str, stats: dict[str, int], parameters_issued: int) -> bool:
    """True once a tuner that ran out of parameters has nothing left to run.

    NNI never moves such an experiment to DONE (it does so only for its own trial or duration
    cap, status NO_MORE_TRIAL), so we must end it ourselves. But the tuner says "no more" while
    its last parameters may still sit in the manager's queue, invisible to ``job-statistics``
    until the next submission round: every parameter the tuner issued (``nextSequenceId``) must
    have become a trial job, and none may still be running.
    """
    if status != "TUNER_NO_MORE_TRIAL":
        return False
    running = stats.get("RUNNING", 0) + stats.get("WAITING", 0) + stats.get("UNKNOWN", 0)
    return running == 0 and sum(stats.values()) >= parameters_issued


def dispatcher_exited(nni_dir: Path, exp_id: str) -> bool:
    """The tuner process logs this line when it stops; during a run that means it crashed."""
    log_file = nni_dir / exp_id / "log" / "dispatcher.log"
    try:
        return "Dispatcher exiting" in log_file.read_text(errors="replace")
    except FileNotFoundError:
        return False


def quiet_nni() -> None:
    """NNI prints coloured INFO lines to stdout and resets its logger's level on import; dmnas
    prints what matters itself, so NNI speaks only on warnings unless --verbose."""
    from nni.runtime.log import silence_stdout

    silence_stdout()
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("nni").setLevel(logging.WARNING)


def run_experiment(
    settings: ExperimentSettings,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    keep_ui: bool = False,
    on_done: Callable[[ExperimentOutcome], None] | None = None,
    poll_seconds: float = 2.0,
) -> ExperimentOutcome:
    """Start the experiment, wait for it (Ctrl-C stops it cleanly), collect the outcome.

    ``on_done(outcome)`` runs while the web UI is still up; with ``keep_ui`` the UI then stays
    until Ctrl-C, which here only closes the UI.
    """
    from nni.experiment import Experiment, RunMode

    quiet_nni()
    tuner = TUNERS.get(settings.tuner)
    remote = settings.machines is not None
    exp = Experiment("remote" if remote else "local", id=settings.exp_id)
    c = exp.config
    c.experiment_name = settings.name
    c.search_space = settings.nni_space
    c.trial_command = settings.trial_command
    c.trial_code_directory = str(settings.trial_code_dir)
    c.trial_concurrency = settings.concurrency
    c.max_trial_number = capped_trials(tuner, settings.max_trials, settings.space_size)
    if settings.max_duration:
        c.max_experiment_duration = settings.max_duration
    class_args = tuner.class_args(settings.seed, c.max_trial_number, settings.max_budget)
    if tuner.class_name:
        from nni.experiment.config import CustomAlgorithmConfig

        # NNI's tuner process imports it from the installed dmnas; code_directory is only required.
        c.tuner = CustomAlgorithmConfig(
            class_name=tuner.class_name, code_directory=str(settings.trial_code_dir), class_args=class_args
        )
    else:
        c.tuner.name = tuner.nni_name
        c.tuner.class_args = class_args
    c.experiment_working_directory = str(settings.nni_dir)
    if remote:
        from dmnas.nas.remote import manager_ip, nni_machine_list

        c.nni_manager_ip = manager_ip(settings.machines)  # workers connect back to it
        c.training_service.reuse_mode = False  # True falls back to NNI's older service
        c.trial_gpu_number = 1 if settings.machines.use_gpu else 0
        per_gpu = None
        if settings.machines.use_gpu:
            per_gpu, c.trial_concurrency = share_machines(
                settings.trials_per_gpu, [len(m.gpus) for m in settings.machines.machines], settings.concurrency
            )
        c.training_service.machine_list = nni_machine_list(settings.machines, per_gpu)
    else:
        c.training_service.use_active_gpu = False
        if settings.use_gpu:  # NNI's manager dies if asked for GPUs on a machine without drivers
            c.trial_gpu_number = 1
            c.training_service.use_active_gpu = True
            # Several small trials share one GPU (NNI accepts it only with trial_gpu_number set).
            share = share_one_machine(settings.trials_per_gpu, nni_gpu_count(), settings.concurrency)
            c.training_service.max_trial_number_per_gpu = share.per_gpu
            c.trial_concurrency = share.concurrency
            if share.halved:
                log.info("one trial on the only GPU: asked of NNI as half a GPU at concurrency 1 (NNI 3.0 "
                         "refuses a whole GPU on a one-GPU machine)")  # fmt: skip
    host = manager_host(settings.ui_host, settings.machines is not None)
    try:
        with manager_env(host):
            exp.start(settings.port, run_mode=RunMode.Background)
    except RuntimeError as err:  # e.g. "Port ... is not idle": something took it since it was claimed
        stop_own_manager(exp)
        raise DmnasError(f"NNI's manager did not start on port {settings.port}: {err}") from None
    url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{settings.port}"
    status = "RUNNING"
    owned = False
    deadline = time.monotonic() + duration_seconds(settings.max_duration) if settings.max_duration else None
    try:
        check_owner(settings.port, exp.id)  # the manager on this port must be the one just started
        owned = True
        while True:
            try:
                status = exp.get_status()
                stats = {s["trialJobStatus"]: int(s["trialJobNumber"]) for s in exp.get_job_statistics()}
            except OSError:  # requests' ConnectionError: the manager is gone (e.g. a worker failed)
                manager_log = settings.nni_dir / exp.id / "log" / "nnimanager.log"
                raise DmnasError(
                    f"NNI's manager stopped ({last_manager_error(manager_log) or 'no error logged'}); see {manager_log}"
                ) from None
            if on_progress is not None:
                on_progress(stats)
            if status in FINISHED:
                break
            if deadline is not None and time.monotonic() >= deadline:
                status = OUT_OF_TIME  # the trials still running are stopped with the experiment below
                break
            if status == "ERROR":
                raise DmnasError(f"NNI experiment {exp.id} failed; see {settings.nni_dir / exp.id / 'log'}")
            if not tuner.cycles and tuner_exhausted(
                status, stats, int(exp.get_experiment_profile().get("nextSequenceId", 0))
            ):
                status = "DONE"  # every trial the tuner could give has finished
                break
            if dispatcher_exited(settings.nni_dir, exp.id) and exp.get_status() not in FINISHED:
                raise DmnasError(
                    f"NNI's tuner process died in experiment {exp.id}; see {settings.nni_dir / exp.id / 'log' / 'dispatcher.log'}"
                )
            time.sleep(poll_seconds)
            interrupts.check()  # a Ctrl-C whose KeyboardInterrupt a finalizer swallowed
        if remote:
            # A remote trial's logs stay on its machine; NNI's manager fetches them on request
            # into <experiment>/trials/<id>/, which is where dmnas then finds the stderr.
            fetch_failed_logs(exp)
            trials_dir = settings.nni_dir / exp.id / "trials"
        else:  # the local training service's layout under the experiment folder
            trials_dir = settings.nni_dir / exp.id / "environments" / "local-env" / "trials"
        outcome = collect(exp, url, status, trials_dir)
        if on_done is not None:
            on_done(outcome)
        if keep_ui:
            log.warning("web UI stays up at %s (Ctrl-C closes it)", url)
            try:
                while True:
                    time.sleep(1)
                    interrupts.check()
            except KeyboardInterrupt:
                pass
        return outcome
    except KeyboardInterrupt:
        log.warning("interrupted: stopping experiment %s", exp.id)
        raise
    finally:
        if owned:
            exp.stop()  # stops the NNI manager and its trials; the experiment can be viewed later
        else:
            stop_own_manager(exp)
        if settings.workers_dir is not None:  # however the experiment ended, its workers end too
            from dmnas.nas.trials.warm_workers import stop_workers

            stop_workers(settings.workers_dir)


def view(exp_id: str, port: int, ui_host: str = "127.0.0.1", on_ready: Callable[[str], None] | None = None) -> None:
    """Reopen a finished experiment's web UI (read-only) until Ctrl-C."""
    from nni.experiment import Experiment

    quiet_nni()
    running = running_manager(exp_id)
    if running is not None:
        raise DmnasError(
            f"experiment {exp_id} is still running (NNI manager pid {running[0]}): its web UI is "
            f"http://127.0.0.1:{running[1]}; `dmnas view` opens finished experiments"
        )
    claim = claim_port(port)
    claim.release()  # NNI's manager binds it next
    try:
        exp = Experiment(None, id=exp_id)
    except ValueError as err:
        raise DmnasError(f"cannot open experiment {exp_id}: {err}") from None
    try:
        # NNI's blocking view() leaks its detached manager if interrupted while starting; stop it ourselves.
        with manager_env(ui_host or "0.0.0.0"):
            exp.view(port=claim.port, non_blocking=True)
        url = f"http://{'127.0.0.1' if ui_host in ('0.0.0.0', '') else ui_host}:{claim.port}"
        if on_ready is not None:
            on_ready(url)
        while True:
            time.sleep(1)
            interrupts.check()
    except (RuntimeError, ValueError) as err:
        raise DmnasError(f"cannot open experiment {exp_id}: {err}") from None
    except KeyboardInterrupt:
        pass
    finally:
        exp.stop()


def running_manager(exp_id: str) -> tuple[int, int] | None:
    """(pid, port) of the NNI manager still serving experiment ``exp_id`` on this machine, from NNI's
    experiment index (``~/nni-experiments/.experiment``); None when none lives."""
    from nni.tools.nnictl.config_utils import Experiments

    from dmnas.nas.processes import pid_alive

    try:
        entry = Experiments().get_all_experiments().get(exp_id) or {}
        pid, port = int(entry.get("pid") or 0), int(entry.get("port") or 0)
    except (OSError, ValueError, TypeError):
        return None
    if pid <= 0 or entry.get("status") == "STOPPED" or not pid_alive(pid):
        return None
    try:  # a pid reused by another program is not NNI's manager
        if b"nni_node" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    except OSError:
        pass
    return pid, port
