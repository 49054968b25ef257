"""When does ``torch.compile`` of the DM embedding pay for itself on a CPU?

Runs ``dmnas condense`` at the default set (Fashion-MNIST, IPC 50) three times side by side, each
in a fresh process with an empty dmnas cache: eager (``--compile off``); compiled with an empty
inductor cache (a fresh machine or a fresh clone in a new container: what the README pipeline
meets); compiled again with the inductor cache the previous run left (a user's second
condensation). From each run's manifest it takes the per-iteration wall times; the one-off cost
of compiling is what the compiled run spent beyond its median iteration, and the break-even is
that cost divided by the per-iteration saving over eager.

    python -m benchmarks.bench_compile_break_even --iterations 20

Writes ``benchmarks/results/compile_break_even.{json,md}``. Measure alone: other processes on
the cores change both the compile and the iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from benchmarks.common import RESULTS, ROOT, command_line, machine

RUNS = (("eager", "off"), ("compiled, cold inductor cache", "on"), ("compiled, warm inductor cache", "on"))  # in this order


def condense(iterations: int, ipc: int, compile_: str, inductor_dir: Path, cache_dir: Path) -> dict[str, float]:
    """One ``dmnas condense`` in a fresh interpreter; its wall time and per-iteration times."""
    # TMPDIR too: inductor keeps its precompiled headers (and their lock) under the temporary
    # folder whatever TORCHINDUCTOR_CACHE_DIR says; a stopped process holding that lock once made
    # every compile here wait out inductor's 600 s lock timeout.
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(inductor_dir), "TMPDIR": str(inductor_dir)}
    cmd = [sys.executable, "-m", "dmnas", "condense", "--cache-dir", str(cache_dir), "--ipc", str(ipc),
           "--iterations", str(iterations), "--compile", compile_, "--device", "cpu"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"condense failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    (manifest,) = [json.loads(p.read_text()) for p in cache_dir.glob("*/manifest.json")]
    its = [float(s) for s in manifest["iteration_seconds"]]
    med = statistics.median(its)
    return {
        "command_wall_s": wall,
        "condense_s": sum(its),
        "median_iteration_s": med,
        "first_iteration_s": its[0],
        "one_off_s": sum(its) - med * len(its),  # compile and warm-up beyond a steady iteration
    }


def markdown(res: dict) -> str:
    lines = [
        f"# torch.compile of the DM embedding on the CPU: break-even (IPC {res['ipc']}, {res['iterations']} iterations)",
        "",
        f"- command: `{res['command']}`",
        f"- machine: {res['machine']}",
        f"- date: {res['date']}",
        "- one-off = condensation seconds beyond iterations × the run's median iteration (compile, warm-up);",
        "  break-even = one-off / (eager median − compiled median)",
        "",
        "| run | command wall s | condensation s | median s/iteration | first iteration s | one-off s | break-even iterations |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        be = r.get("break_even_iterations")
        lines.append(
            f"| {r['run']} | {r['command_wall_s']:.1f} | {r['condense_s']:.1f} | {r['median_iteration_s']:.3f} | "
            f"{r['first_iteration_s']:.1f} | {r['one_off_s']:.1f} | {'—' if be is None else f'{be:.0f}'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--ipc", type=int, default=50)
    ap.add_argument("--out", default="compile_break_even")
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory(prefix="dmnas-compile-") as tmp:
        inductor = Path(tmp) / "inductor"
        inductor.mkdir()
        runs = []
        for i, (name, compile_) in enumerate(RUNS):
            r = condense(args.iterations, args.ipc, compile_, inductor, Path(tmp) / f"cache{i}")
            runs.append({"run": name, "compile": compile_, **r})
    eager = runs[0]
    for r in runs[1:]:
        saving = eager["median_iteration_s"] - r["median_iteration_s"]
        r["break_even_iterations"] = r["one_off_s"] / saving if saving > 0 else None
    res = {
        "ipc": args.ipc,
        "iterations": args.iterations,
        "runs": runs,
        "command": command_line(),
        "machine": f"{machine()}, torch {torch.__version__}",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
