"""The tuners a search can use, by name: NNI's built-ins and dmnas's fixed multi-fidelity ones.

Light on purpose (no NNI import): the CLI lists these names in its help and the search config
checks a tuner before NNI starts. The fixed tuner classes themselves live in
:mod:`dmnas.nas.nni.tuners` and :mod:`dmnas.nas.nni.bohb` (NNI's tuner process imports
them by class name).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Any, Callable

from dmnas.errors import DmnasError
from dmnas.util.registry import Registry
@dataclass(frozen=True)
class Tuner:
    nni_name: str
    class_args: Callable[[int, int, int], dict[str, Any]]  # (seed, max_trials, max budget) -> class_args
    exhaustive: bool = False  # a grid: never ask for more trials than it holds
    budgeted: bool = False  # hands each trial a TRIAL_BUDGET (proxy epochs, at most the max budget)
    class_name: str | None = None  # a tuner of dmnas's own (dmnas.nas.nni.tuners) instead of NNI's built-in
    # Hyperband-style tuners start a new iteration after the last: only the trial cap ends them, and
    # their "no more trials" while a round waits for its last results is a pause, not the end.
    cycles: bool = False
    requires: tuple[str, ...] = ()  # modules NNI's tuner process imports beyond NNI's own

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


TUNERS: Registry[Tuner] = Registry("tuner")
TUNERS.add("grid", Tuner("GridSearch", lambda seed, n, r: {}, exhaustive=True))
TUNERS.add("random", Tuner("Random", lambda seed, n, r: {"seed": seed}))
TUNERS.add("tpe", Tuner("TPE", lambda seed, n, r: {"optimize_mode": "maximize", "seed": seed}))
TUNERS.add(
    "evolution",
    Tuner(
        "Evolution",
        lambda seed, n, r: {"optimize_mode": "maximize", "population_size": max(2, min(32, n // 2))},
    ),
)
# Multi-fidelity: R is the full proxy budget in epochs, so a trial's TRIAL_BUDGET is its epochs
# (R / eta^s for the early rounds). NNI's Hyperband takes no seed; dmnas's subclass does.
HYPERBAND_ETA = 3


def hyperband_iteration_trials(r: int, eta: int = HYPERBAND_ETA) -> int:
    """Trials in one full Hyperband iteration (every bracket once), as NNI 3.0 sizes them: bracket
    s in 0..s_max starts n = ceil((s_max+1) eta^s / (s+1)) configurations and keeps floor(n / eta^i)
    in round i. NNI's Hyperband (parallel mode) never stops by itself -- it starts the next
    iteration with fresh random configurations -- so this is dmnas's default trial cap for it."""
    s_max = int(math.floor(math.log(r, eta) + 1e-6)) if r >= 1 else 0
    total = 0
    for s in range(s_max + 1):
        n = math.ceil((s_max + 1) * eta**s / (s + 1) - 1e-6)
        total += sum(math.floor(n / eta**i + 1e-6) for i in range(s + 1))
    return total

TUNERS.add(
    "hyperband",
    Tuner(
        "Hyperband",
        lambda seed, n, r: {
            "optimize_mode": "maximize",
            "R": r,
            "eta": HYPERBAND_ETA,
            "exec_mode": "parallelism",
            "seed": seed,
        },
        budgeted=True,
        class_name="dmnas.nas.nni.tuners.FixedHyperband",  # NNI 3.0's own crashes on the first metric
        cycles=True,
    ),
)
# BOHB: Hyperband's brackets, with new configurations drawn from a density model of the good ones
# at the largest budget with enough results instead of uniformly. Same budgets and iteration size.
TUNERS.add(
    "bohb",
    Tuner(
        "BOHB",
        lambda seed, n, r: {
            "optimize_mode": "maximize",
            "min_budget": 1,
            "max_budget": r,
            "eta": HYPERBAND_ETA,
            "seed": seed,
        },
        budgeted=True,
        class_name="dmnas.nas.nni.bohb.FixedBOHB",
        cycles=True,
        requires=("ConfigSpace", "statsmodels"),
    ),
)


def capped_trials(tuner: Tuner, requested: int | None, space_size: int) -> int:
    """GridSearch waits forever when asked for more trials than the grid has (NNI #3859)."""
    if requested is not None and requested < 1:
        raise DmnasError(f"--max-trials must be positive, got {requested}")
    if tuner.exhaustive or requested is None:
        return min(requested or space_size, space_size)
    return requested
