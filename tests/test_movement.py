"""How far a set moved, as users read it: the note on a set that DM has hardly touched."""

from __future__ import annotations

from dmnas.condensation.proxyset import BARELY_MOVED_REL, movement_note


def test_barely_moved_set_is_called_close_to_random_and_points_at_the_baselines() -> None:
    note = movement_note({"moved_sd": 0.028, "median_relative_l2": BARELY_MOVED_REL * 0.8})
    assert "0.028 pixel sd" in note and "4.0 %" in note and "CPU-default set" in note
    assert "close to a random real subset" in note and "--proxy early" in note


def test_a_set_that_changed_by_a_tenth_is_not_called_random() -> None:
    note = movement_note({"moved_sd": 0.080, "median_relative_l2": 0.112})  # the IPC-10 set
    assert "close to a random" not in note and "11.2 %" in note


def test_moved_set_gets_only_the_numbers() -> None:
    note = movement_note({"moved_sd": 0.16, "median_relative_l2": 0.2})
    assert "0.160 pixel sd" in note and "20.0 %" in note and "random" not in note


def test_unrecorded_movement_is_said() -> None:
    assert "not recorded" in movement_note(None)
