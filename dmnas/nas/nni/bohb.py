"""NNI's BOHB (Falkner et al., ICML 2018), fixed and seeded; runs in NNI's tuner process.

Besides the two defects it shares with Hyperband (see :mod:`dmnas.nas.nni.tuners`), NNI 3.0's BOHB files every
final result under "budget" ``sequence``, which NNI sets to 0 for final results, so its density
model mixes 1-epoch and 40-epoch accuracies as if they were one budget. Here a final result is
filed under the trial's own ``TRIAL_BUDGET``.

NNI's BOHB takes no seed; ``seed`` seeds its configuration space and NumPy's global generator
(the tuner process is its own), so a search whose trials finish in the same order proposes the
same architectures. With concurrency > 1 the order of finishing is not fixed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nni.algorithms.hpo.bohb_advisor import BOHB
from nni.algorithms.hpo.bohb_advisor.bohb_advisor import _KEY
from nni.utils import MetricType

from dmnas.nas.nni.tuners import created_in_previous_exp, rank_unscored_last


class FixedBOHB(BOHB):
    """NNI's BOHB with per-budget results, a seed, and the fixes of :mod:`dmnas.nas.nni.tuners`."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed

    def is_created_in_previous_exp(self, param_id: object) -> bool:
        return created_in_previous_exp(param_id, super().is_created_in_previous_exp)

    def handle_update_search_space(self, data: object) -> None:
        super().handle_update_search_space(data)
        if self.seed is not None:
            np.random.seed(self.seed)
            self.search_space.seed(self.seed)

    def handle_report_metric_data(self, data: dict[str, Any]) -> None:
        params = self.parameters.get(data.get("parameter_id"))
        if data.get("type") == MetricType.FINAL and params is not None and _KEY in params:
            data = dict(data, sequence=params[_KEY])
        super().handle_report_metric_data(data)

    def handle_trial_end(self, data: dict[str, Any]) -> None:
        rank_unscored_last(self.brackets, int, data, self.optimize_mode)
        super().handle_trial_end(data)
