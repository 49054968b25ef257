"""Run the real ``dmnas`` CLI from a benchmark and read what it printed (shared by the search benchmarks)."""

from __future__ import annotations

import subprocess
import sys
import time


def dmnas(env: dict[str, str], *args: str) -> tuple[str, float]:
    """stdout and wall seconds of ``python -m dmnas ARGS``; a failure ends the benchmark with its output."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dmnas", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"dmnas {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout, time.perf_counter() - t0


def exp_id(stdout: str) -> str:
    return stdout.split("NNI experiment ", 1)[1].split(":", 1)[0]


def report_body(stdout: str) -> str:
    """The Markdown report that `dmnas report` printed, without its title and file list."""
    return stdout.split("report json:")[0].split("# dmnas proxy ranking report", 1)[-1].strip()
