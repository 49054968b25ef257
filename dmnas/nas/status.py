"""A search's live status: done/total, failed, running, elapsed, ETA from measured trial times, and
the best proxy score so far with its architecture.

Logged (library code never prints): each record carries ``status_line=True`` so the CLI redraws one
line in place on a terminal, and ``status_changed`` so that on a pipe or a log file only lines where
something finished are written.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmnas.nas.nni.outcome import TRIAL_FAILED  # NNI's states of a trial without a result (no NNI import)

log = logging.getLogger(__name__)
REFRESH_S = 10.0  # an unchanged status is logged again this often (elapsed and ETA move)


@dataclass(frozen=True)
class Status:
    done: int
    total: int
    failed: int
    running: int
    elapsed: float
    eta: float | None
    best: tuple[str, float] | None

    def line(self, label: str) -> str:
        eta = "measuring" if self.eta is None else clock(self.eta)
        best = f"; best {self.best[1]:.4f} {self.best[0]}" if self.best else ""
        running = f"{self.running} running, " if self.running else ""  # "running" only while trials run
        return (
            f"{label}: {self.done}/{self.total} scored, {self.failed} failed, {running}"
            f"{clock(self.elapsed)} elapsed, ETA {eta}{best}"
        )


def clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def estimate(done: int, total: int, failed: int, elapsed: float) -> float | None:
    """Seconds left at the pace of the trials finished so far (None before the first)."""
    finished = done + failed
    if finished == 0:
        return None
    return max(0.0, elapsed / finished * (total - finished))


class SearchProgress:
    """Called with NNI's trial counts every poll; reads the trials' own records for the best score."""

    def __init__(self, label: str, total: int, trials_dir: Path, clock_fn: Any = time.monotonic) -> None:
        self.label, self.total, self.trials_dir, self.clock = label, total, Path(trials_dir), clock_fn
        self.t0 = clock_fn()
        self.seen: dict[str, float] = {}
        self.best: tuple[str, float] | None = None
        self.last_key: tuple[int, int] | None = None
        self.last_log = -REFRESH_S

    def _read_new_records(self) -> None:
        for path in self.trials_dir.glob("*.json") if self.trials_dir.is_dir() else []:
            if path.name in self.seen:
                continue
            try:
                rec = json.loads(path.read_text())
                score = float(rec["score"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # half-written: read on the next poll
            self.seen[path.name] = score
            if self.best is None or score > self.best[1]:
                self.best = (str(rec.get("arch", path.stem)), score)

    def status(self, stats: dict[str, int]) -> Status:
        self._read_new_records()
        done = int(stats.get("SUCCEEDED", 0))
        failed = sum(int(stats.get(k, 0)) for k in TRIAL_FAILED)
        elapsed = self.clock() - self.t0
        return Status(done, self.total, failed, int(stats.get("RUNNING", 0)), elapsed,
                      estimate(done, self.total, failed, elapsed), self.best)  # fmt: skip

    def __call__(self, stats: dict[str, int]) -> None:
        if not stats:
            return  # NNI has not submitted a trial yet
        st = self.status(stats)
        key = (st.done, st.failed)
        changed = key != self.last_key
        now = self.clock()
        if not changed and now - self.last_log < REFRESH_S:
            return
        self.last_key, self.last_log = key, now
        log.info(st.line(self.label), extra={"status_line": True, "status_changed": changed})
