"""What an NNI experiment really trained: its trials' own final reports (``metric-data``), never
NNI's trial records (NNI 3.0 #5726 mislabels them), their states, logs and error lines. NNI's REST
helper is imported only where trial jobs are read, so the status line and the search folder can
use the states and outcomes without importing NNI.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmnas.errors import DmnasError
from dmnas.nas.trials.params import BUDGET_KEY, spec_from_params

log = logging.getLogger(__name__)


FINISHED = {"DONE", "STOPPED"}
# dmnas's own status of an experiment it stopped at --max-duration: NNI's manager only stops
# submitting then, and lets the running trials go on for as long as they take.
OUT_OF_TIME = "OUT_OF_TIME"
TRIAL_FAILED = {"FAILED", "SYS_CANCELED", "USER_CANCELED", "EARLY_STOPPED"}


@dataclass
class TrialOutcome:
    trial_id: str
    status: str
    record: dict[str, Any] | None  # the trial's own final report
    nni_shown_arch: str | None  # what NNI's trial record claims it trained
    stderr_path: str | None = None
    parameter_id: str | None = None  # id of the parameters the trial really received
    tuner_arch: str | None = None  # the architecture the tuner generated under that id
    nni_seconds: float | None = None  # the trial's wall time as NNI saw it (start to end)


@dataclass
class ExperimentOutcome:
    id: str
    url: str
    status: str
    trials: list[TrialOutcome] = field(default_factory=list)

    @property
    def succeeded(self) -> list[TrialOutcome]:
        return [t for t in self.trials if t.record is not None]

    @property
    def failed(self) -> list[TrialOutcome]:
        return [t for t in self.trials if t.status in TRIAL_FAILED]

    @property
    def mislabelled(self) -> int:
        return sum(1 for t in self.succeeded if t.nni_shown_arch and t.nni_shown_arch != t.record["arch"])  # type: ignore[index]


def arch_of(hp: Any) -> tuple[str | None, str | None]:
    """(parameter id, architecture) of one of NNI's ``TrialHyperParameters`` (Hyperband's ids are
    strings, and its parameters carry the trial budget besides the architecture)."""
    try:
        params = {k: v for k, v in hp.parameters.items() if k != BUDGET_KEY}
        return str(hp.parameter_id), spec_from_params(params)[0].name
    except (AttributeError, KeyError, TypeError, ValueError, DmnasError):
        return None, None


def trial_jobs(exp: Any) -> list[Any]:
    """NNI's ``TrialJob`` list. Its client requires ``parameter_index`` in every trial's parameters,
    which Hyperband's lack (the client raises TypeError): then the same endpoint is read through
    NNI's own REST helper and the missing index filled in -- the one raw call dmnas keeps."""
    try:
        return exp.list_trial_jobs()
    except TypeError:
        from nni.experiment import rest
        from nni.experiment.data import TrialJob

        raw = rest.get(exp.port, "/trial-jobs", exp.url_prefix)
        for job in raw:
            job["hyperParameters"] = [
                json.dumps({"parameter_index": 0, **json.loads(h)}) for h in job.get("hyperParameters") or []
            ]
        return [TrialJob(**job) for job in raw]


def collect(exp: Any, url: str, status: str, trials_dir: Path | None = None) -> ExperimentOutcome:
    """Pair every final result with the architecture its trial reported itself.

    Reads through NNI's own client (``list_trial_jobs`` / ``get_job_metrics``, which also undo
    the REST API's double JSON encoding of metrics); it lacks nothing dmnas needs here."""
    jobs = trial_jobs(exp)
    finals: dict[str, tuple[str, Any]] = {
        trial_id: (
            str(m.parameterId),
            m.data,
        )  # NNI gives ints here, strings there (and Hyperband's are strings)
        for trial_id, metrics in exp.get_job_metrics().items()
        for m in metrics
        if m.type == "FINAL"
    }
    # parameter id -> architecture is right even where NNI attached it to the wrong trial (#5726).
    by_parameter_id = dict(arch_of(hp) for job in jobs for hp in job.hyperParameters)
    outcome = ExperimentOutcome(exp.id, url, status)
    for job in jobs:
        shown = arch_of(job.hyperParameters[0])[1] if job.hyperParameters else None
        parameter_id, record = finals.get(job.trialJobId, (None, None))
        if not isinstance(record, dict):
            record = None
        tuner_arch = by_parameter_id.get(parameter_id) if parameter_id is not None else None
        if record is not None and tuner_arch is not None and tuner_arch != record.get("arch"):
            log.warning(
                "trial %s reported %s but parameter %s is %s",
                job.trialJobId,
                record.get("arch"),
                parameter_id,
                tuner_arch,
            )
        outcome.trials.append(
            TrialOutcome(
                job.trialJobId,
                job.status,
                record,
                shown,
                stderr_file(job.stderrPath or None, trials_dir / job.trialJobId if trials_dir else None),
                parameter_id,
                tuner_arch,
                (job.endTime - job.startTime) / 1000 if job.endTime and job.endTime > job.startTime else None,
            )
        )
    return outcome


def fetch_failed_logs(exp: Any) -> None:
    """Ask NNI's manager to download the logs of every trial that did not succeed (remote service).
    NNI's client has no call for this endpoint, and its REST helper would parse the log as JSON."""
    import urllib.request

    prefix = f"/{exp.url_prefix.strip('/')}" if exp.url_prefix else ""
    for job in trial_jobs(exp):
        if job.status != "SUCCEEDED":
            url = f"http://127.0.0.1:{exp.port}{prefix}/api/v1/nni/trial-file/{job.trialJobId}/stderr"
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    resp.read()
            except Exception as err:  # a missing log must not lose the results
                log.warning("could not fetch the log of trial %s: %s", job.trialJobId, err)


def stderr_file(reported: str | None, trial_dir: Path | None = None) -> str | None:
    """The trial's real stderr file. NNI 3.0 reports ``<trial>/stderr`` but the local service
    writes ``<trial>/trial.stderr``, and for a killed (USER_CANCELED) trial it reports nothing."""
    candidates = [Path(reported), Path(reported).with_name("trial.stderr")] if reported else []
    if trial_dir is not None:
        candidates.append(trial_dir / "trial.stderr")
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    return reported


def last_error_line(stderr_path: str | None) -> str:
    """The last non-empty line of a trial's stderr: usually the exception."""
    if not stderr_path:
        return ""
    try:
        lines = [line for line in Path(stderr_path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


def last_manager_error(manager_log: Path) -> str:
    """The last ERROR line of NNI's manager log, without its timestamp (e.g. why a remote worker failed)."""
    try:
        lines = manager_log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [ln.split("ERROR", 1)[1].strip() for ln in lines if " ERROR " in ln]
    return errors[-1][:300] if errors else ""
