"""NNI tuners that dmnas runs in NNI's tuner process (imported there by class name, never by dmnas).

Two defects NNI 3.0's Hyperband and BOHB share, fixed here for both:

- their parameter ids are strings ("<bracket>_<round>_<index>"), and the recovery check they
  inherit compares them with an integer on every metric a trial reports (``'<=' not supported
  between 'str' and 'int'``), which kills the tuner process before a single round finishes.
  Nothing is recovered in a fresh experiment, so such ids are simply new;
- a trial that fails before its final result leaves no score in its round, and choosing the next
  round then indexes past the scores there are when fewer remain than places (IndexError: the
  tuner process dies and the search stops). Such a trial is ranked last instead.

BOHB (``bohb.FixedBOHB``) lives in its own module because it needs NNI's ``bohb`` extra
(ConfigSpace, statsmodels): Hyperband must keep working without it.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import nni
import numpy as np
from nni.algorithms.hpo.hyperband_advisor import Hyperband
from nni.utils import OptimizeMode


def created_in_previous_exp(param_id: object, recovered: Callable[[Any], bool]) -> bool:
    """NNI's recovery check, for integer ids only (string bracket ids are never recovered)."""
    return isinstance(param_id, int) and recovered(param_id)


def rank_unscored_last(
    brackets: dict[Any, Any], bracket_key: Callable[[str], Any], trial_end: dict[str, Any], mode: OptimizeMode
) -> None:
    """Give an ending trial without a score the worst one in its round (before NNI ranks the round)."""
    param_id = nni.load(trial_end["hyper_params"]).get("parameter_id")
    if not isinstance(param_id, str) or param_id.count("_") < 2:
        return
    bracket_id, round_i, _ = param_id.rsplit("_", 2)
    bracket = brackets.get(bracket_key(bracket_id))
    if bracket is not None and int(round_i) < len(bracket.configs_perf):
        worst = -math.inf if mode is OptimizeMode.Maximize else math.inf
        bracket.configs_perf[int(round_i)].setdefault(param_id, [-1, worst])


class FixedHyperband(Hyperband):
    """NNI's Hyperband with its string ids and failed trials handled (see the module docstring),
    and a seed: NNI's draws its configurations from an unseeded ``np.random.RandomState()``, so
    two runs of the same search trained different architectures. The generator is seeded where
    NNI creates it; with concurrency > 1 the order in which trials finish still varies."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed

    def handle_update_search_space(self, data: object) -> None:
        super().handle_update_search_space(data)
        if self.seed is not None:
            self.random_state = np.random.RandomState(self.seed)

    def is_created_in_previous_exp(self, param_id: object) -> bool:
        return created_in_previous_exp(param_id, super().is_created_in_previous_exp)

    def handle_trial_end(self, data: dict[str, Any]) -> None:
        rank_unscored_last(self.brackets, str, data, self.optimize_mode)
        super().handle_trial_end(data)
