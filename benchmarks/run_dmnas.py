"""Run the real ``dmnas`` CLI from a benchmark and read what it printed (shared by the search benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def project_env(work: Path, cache: Path | None = None) -> dict[str, str]:
    """Environment of a benchmark's own dmnas project under ``work``: workdir, DM cache (default
    ``<work>/cache``) and a HOME of its own (NNI keeps its experiment index in ~/nni-experiments)."""
    (work / "home").mkdir(parents=True, exist_ok=True)
    return dict(
        os.environ,
        DMNAS_WORKDIR=str(work / "experiments"),
        DMNAS_CACHE=str((cache or work / "cache").resolve()),
        HOME=str(work / "home"),
        PYTHONUNBUFFERED="1",
    )


def dmnas(env: dict[str, str], *args: str) -> tuple[str, float]:
    """stdout and wall seconds of ``python -m dmnas ARGS``; a failure ends the benchmark with its output."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dmnas", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dmnas {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout, time.perf_counter() - t0


def exp_id(stdout: str) -> str:
    """The search id from the last line `dmnas search` prints: ``search <id>: N architectures scored; ...``."""
    last = [ln for ln in stdout.splitlines() if ln.startswith("search ")][-1]
    return last.split(" ", 2)[1].rstrip(":")


def report_body(stdout: str) -> str:
    """The Markdown report that `dmnas report` printed, without its title and file list."""
    return stdout.split("report json:")[0].split("# dmnas proxy ranking report", 1)[-1].strip()
