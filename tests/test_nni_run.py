"""The NNI driver without starting NNI: end of a search, trial caps, ports, logs, collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dmnas.errors import DmnasError



def test_dead_tuner_is_detected_from_its_log(tmp_path: Path) -> None:
    from dmnas.nas.nni.experiment import dispatcher_exited

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
    from dmnas.nas.nni.experiment import tuner_exhausted

    # The CI case: tuner done, two trials finished, its third parameter still queued in NNI.
    assert not tuner_exhausted("TUNER_NO_MORE_TRIAL", {"SUCCEEDED": 2}, parameters_issued=3)
    assert not tuner_exhausted("TUNER_NO_MORE_TRIAL", {"SUCCEEDED": 2, "RUNNING": 1}, parameters_issued=3)
    assert tuner_exhausted("TUNER_NO_MORE_TRIAL", {"SUCCEEDED": 2, "FAILED": 1}, parameters_issued=3)
    assert not tuner_exhausted("RUNNING", {"SUCCEEDED": 3}, parameters_issued=3)
    # NNI's own trial cap: NNI itself moves on to DONE
    assert not tuner_exhausted("NO_MORE_TRIAL", {"SUCCEEDED": 3}, parameters_issued=3)


def test_grid_trials_are_capped_and_ports_checked() -> None:
    import socket

    from dmnas.nas.nni.manager import choose_port
    from dmnas.nas.tuners import TUNERS, capped_trials

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


def test_a_failed_trials_log_and_error_line_are_found(tmp_path: Path) -> None:
    from dmnas.nas.nni.outcome import last_error_line, stderr_file

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


def test_collect_pairs_results_through_nnis_client_even_when_nni_mislabels() -> None:
    """NNI's own ``TrialJob``/``TrialMetricData`` built from REST-shaped data (metrics encoded
    twice, as the manager sends them); trial A's row shows B's parameters (#5726)."""
    pytest.importorskip("nni")
    from nni.experiment.data import TrialJob, TrialMetricData

    from dmnas.nas.nni.outcome import collect

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
