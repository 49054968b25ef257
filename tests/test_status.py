"""A search's live status line: counts, ETA from the pace so far, the best score so far; redrawn in
place on a terminal, written only on change to a pipe."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from dmnas.cli import CliFormatter, CliHandler
from dmnas.nas.status import SearchProgress, clock, estimate


def test_eta_from_the_pace_so_far() -> None:
    assert estimate(0, 10, 0, 30.0) is None
    assert estimate(2, 10, 0, 30.0) == pytest.approx(120.0)  # 15 s per trial, 8 left
    assert estimate(2, 10, 1, 30.0) == pytest.approx(70.0)  # failures count as finished
    assert clock(75) == "1:15" and clock(3725) == "1:02:05"


def test_status_reads_the_best_record_and_logs_only_what_changed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = SearchProgress("search abc", 6, tmp_path, clock_fn=lambda: now[0])
    (tmp_path / "a__1.json").write_text(json.dumps({"arch": "d1_a", "score": 0.7}))
    (tmp_path / "b__2.json").write_text(json.dumps({"arch": "d2_b", "score": 0.8}))
    (tmp_path / "c__3.json").write_text("{half-writ")
    caplog.set_level(logging.INFO, logger="dmnas.nas.status")
    now[0] = 20.0
    progress({"SUCCEEDED": 2, "RUNNING": 2})
    now[0] = 21.0
    progress({"SUCCEEDED": 2, "RUNNING": 2})  # nothing changed, too soon to refresh
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["search abc: 2/6 scored, 0 failed, 2 running, 0:20 elapsed, ETA 0:40; best 0.8000 d2_b"]
    assert caplog.records[0].status_changed is True


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("dmnas.nas.status", logging.INFO, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_redraws_the_status_line_and_a_pipe_gets_changes_only() -> None:
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        h = CliHandler(stream)
        h.setFormatter(CliFormatter())
        h.emit(record("1/4", status_line=True, status_changed=True))
        h.emit(record("1/4 later", status_line=True, status_changed=False))
        h.emit(record("done"))
    assert tty.getvalue() == "\r1/4\x1b[K\r1/4 later\x1b[K\ndone\n"
    assert pipe.getvalue() == "1/4\ndone\n"
