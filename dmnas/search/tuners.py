"""NNI tuners that dmnas runs in NNI's tuner process (imported there by class name, never by dmnas).

NNI 3.0's Hyperband cannot finish a single round: its parameter ids are strings
("<bracket>_<round>_<index>"), and the recovery check it inherits compares them with an integer
on every metric a trial reports (``'<=' not supported between 'str' and 'int'``), which kills the
tuner process. Nothing is recovered in a fresh experiment, so such ids are simply new.
"""

from __future__ import annotations

from nni.algorithms.hpo.hyperband_advisor import Hyperband


class FixedHyperband(Hyperband):
    """NNI's Hyperband with the recovery check fixed for its string parameter ids."""

    def is_created_in_previous_exp(self, param_id: object) -> bool:
        return isinstance(param_id, int) and super().is_created_in_previous_exp(param_id)
