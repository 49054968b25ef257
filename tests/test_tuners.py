"""dmnas's Hyperband and BOHB, driven the way NNI's manager drives a tuner process, without NNI."""

from __future__ import annotations

import types
import warnings
from typing import Any, Callable

import nni
import nni.runtime.msg_dispatcher_base as dispatcher_base
import pytest

from dmnas.nas.tuners import TUNERS, hyperband_iteration_trials

needs_bohb = pytest.mark.skipif(
    bool(TUNERS.get("bohb").missing()), reason="needs NNI's bohb extra: pip install 'dmnas[bohb]'"
)


def bohb(seed: int = 0) -> Any:
    from dmnas.nas.nni.bohb import FixedBOHB

    return FixedBOHB(seed=seed, optimize_mode="maximize", min_budget=1, max_budget=40, eta=3)


def hyperband(seed: int = 0) -> Any:
    from dmnas.nas.nni.tuners import FixedHyperband

    return FixedHyperband(seed=seed, optimize_mode="maximize", R=40, eta=3, exec_mode="parallelism")


# Both of dmnas's multi-fidelity tuners, as the ``make`` argument of a test.
each_tuner = pytest.mark.parametrize(
    "make", [pytest.param(bohb, marks=needs_bohb), hyperband], ids=["bohb", "hyperband"]
)

SPACE = {"arch": {"_type": "choice", "_value": [f"a{i:02d}" for i in range(30)]}}


class Driver:
    """Plays NNI's manager: asks for one trial at a time, reports its final result, ends it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, make: Callable[[int], Any] = bohb, seed: int = 0) -> None:
        # NNI's own unit-test hook: a channel URL of this form is never connected.
        monkeypatch.setattr(
            dispatcher_base,
            "dispatcher_env_vars",
            types.SimpleNamespace(NNI_TUNER_COMMAND_CHANNEL="ws://_unittest_", NNI_MODE=""),
        )
        self.tuner = make(seed)
        self.sent: list[tuple[str, Any]] = []
        self.tuner.send = lambda command, payload: self.sent.append((str(command), payload))
        self.jobs = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.tuner.handle_initialize(SPACE)

    def next_trial(self) -> dict[str, Any] | None:
        start = len(self.sent)
        self.tuner.handle_request_trial_jobs(1)
        new = [nni.load(p) for c, p in self.sent[start:] if "NoMore" not in c and p]
        return new[0] if new else None

    def finish(self, ret: dict[str, Any], score: float | None) -> None:
        self.jobs += 1
        job = f"job{self.jobs}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if score is not None:
                self.tuner.handle_report_metric_data(
                    {
                        "parameter_id": ret["parameter_id"],
                        "type": "FINAL",
                        "value": nni.dump(score),
                        "trial_job_id": job,
                        "sequence": 0,  # what NNI sends with every final result
                    }
                )
            event = "SUCCEEDED" if score is not None else "FAILED"
            self.tuner.handle_trial_end({"trial_job_id": job, "event": event, "hyper_params": nni.dump(ret)})


def score_of(ret: dict[str, Any]) -> float:
    p = ret["parameters"]
    return int(p["arch"][1:]) / 100 + p["TRIAL_BUDGET"] / 1000


def run_iteration(driver: Driver, fail: set[int] = frozenset()) -> list[dict[str, Any]]:
    issued = []
    for _ in range(hyperband_iteration_trials(40)):
        ret = driver.next_trial()
        assert ret is not None, f"BOHB stopped after {len(issued)} trials"
        issued.append(ret)
        driver.finish(ret, None if len(issued) - 1 in fail else score_of(ret))
    return issued


@needs_bohb
def test_bohb_files_each_result_under_its_own_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = Driver(monkeypatch)
    issued = run_iteration(driver)
    budgets = sorted({r["parameters"]["TRIAL_BUDGET"] for r in issued})
    assert budgets == [1, 4, 13, 40]  # the proxy-epoch ladder of R = 40, eta = 3
    # NNI's own BOHB files them all under budget 0 (the final result's sequence number).
    assert sorted(driver.tuner.cg.configs) == budgets
    # One iteration (every bracket once) is the trial count dmnas caps a search at; the next
    # trial opens a new iteration with the most explorative bracket again.
    assert issued[-1]["parameter_id"].startswith("0_")
    assert driver.next_trial()["parameter_id"].startswith("3_0_")


@each_tuner
def test_tuner_is_reproducible_with_its_seed(monkeypatch: pytest.MonkeyPatch, make: Callable[[int], Any]) -> None:
    # NNI's own Hyperband and BOHB take no seed: every run proposes other architectures.
    def proposals(seed: int) -> list[str]:
        return [r["parameters"]["arch"] for r in run_iteration(Driver(monkeypatch, make, seed))]

    first = proposals(0)
    assert proposals(0) == first
    assert proposals(1) != first


@each_tuner
def test_trials_failing_before_their_result_do_not_kill_the_tuner(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[int], Any]
) -> None:
    # 20 of the first round's 27 fail: 7 scores for 9 places in the next round. NNI's own tuners
    # index past their 7 (IndexError) and the tuner process dies; here failures are ranked last.
    driver = Driver(monkeypatch, make)
    issued = run_iteration(driver, fail=set(range(20)))
    assert len(issued) == hyperband_iteration_trials(40)
    first = issued[0]["parameter_id"].rsplit("_", 2)[0]  # the most explorative bracket
    scored = {r["parameter_id"].rsplit("_", 1)[1] for r in issued[20:27]}
    round_1 = {r["parameter_id"].rsplit("_", 1)[1] for r in issued if r["parameter_id"].startswith(f"{first}_1_")}
    assert len(round_1) == 9 and scored < round_1
