"""Where a proxy trial's wall time goes: start-up and imports, NNI, data, proxy set, training,
evaluations, and what NNI adds around the process.

Runs a real ``dmnas search`` (the default proxy recipe: DM set, IPC 50, 40 epochs) over the first
``--archs`` architectures of the shipped table's space, one trial at a time so that trials do not
share the cores, and reads each trial's own ``timings`` (written by the trial) against NNI's
start-to-end time of the same trial. Or analyses a finished search: ``--search ID --workdir W``.

    .venv/bin/python benchmarks/bench_trial_overhead.py --archs 8

Writes ``benchmarks/results/trial_overhead.{json,md}``. Target (issue 9): everything that is not
training at most 20 % of a trial's wall time on CPU.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from run_dmnas import dmnas, exp_id  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PHASES = (
    "startup_and_imports",
    "nni_parameters",
    "data_load",
    "training_set",
    "training",
    "peeks",
    "final_eval",
)


def breakdown(results: dict) -> dict:
    """Per phase: mean seconds and share of NNI's trial wall time (trials with both only)."""
    rows = []
    for t in results["trials"]:
        rec, wall = t.get("record"), t.get("nni_seconds")
        if not rec or not wall or "timings" not in rec:
            continue
        tm = rec["timings"]
        row = {p: float(tm.get(p, 0.0)) for p in PHASES}
        row["nni_around_the_process"] = max(0.0, wall - sum(row.values()))
        row["wall"] = wall
        rows.append(row)
    if not rows:
        raise SystemExit("no trial with both its own timings and NNI's start/end times")
    mean = {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}
    share = {k: mean[k] / mean["wall"] for k in mean if k != "wall"}
    return {
        "trials": len(rows),
        "mean_seconds": mean,
        "share_of_wall": share,
        "overhead_share": 1.0 - share["training"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", type=int, default=8, help="architectures of convnet_bench48 to run")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--search", default=None, help="analyse this finished search instead of running one")
    ap.add_argument("--workdir", type=Path, default=None, help="with --search: its project folder")
    ap.add_argument(
        "--cache-dir", type=Path, default=None, help="DM cache (default: $DMNAS_CACHE or dmnas's)"
    )
    ap.add_argument("--port", type=int, default=8096)
    args = ap.parse_args()

    import torch
    import yaml

    if args.search:
        workdir, sid, command = args.workdir.resolve(), args.search, f"(analysis of search {args.search})"
    else:
        tmp = Path(tempfile.mkdtemp(prefix="dmnas-overhead-"))
        names = yaml.safe_load((ROOT / "search_spaces" / "convnet_bench48.yaml").read_text())["arch"][
            "_value"
        ]
        space = tmp / "overhead_space.yaml"
        space.write_text(yaml.safe_dump({"arch": {"_type": "choice", "_value": names[: args.archs]}}))
        workdir = tmp / "work"
        env = dict(os.environ, HOME=str(tmp), PYTHONUNBUFFERED="1")
        if args.cache_dir:
            env["DMNAS_CACHE"] = str(args.cache_dir.resolve())
        out, _ = dmnas(
            env,
            "search",
            "--space",
            str(space),
            "--concurrency",
            str(args.concurrency),
            "--port",
            str(args.port),
            "--workdir",
            str(workdir),
            "--table",
            "none",
            "-q",
        )
        sid, command = exp_id(out), "python " + " ".join(sys.argv)
    search_dir = workdir / "searches" / sid
    results = json.loads((search_dir / "results.json").read_text())
    meta = json.loads((search_dir / "search.json").read_text())
    b = breakdown(results)
    result = {
        **b,
        "search": sid,
        "proxy": meta["proxy"],
        "trial_recipe": meta["trial_recipe"],
        "concurrency": meta["concurrency"],
        "target_overhead_share": 0.20,
        "command": command,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trial_overhead.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Where a proxy trial's wall time goes (CPU)",
        "",
        f"- command: `{command}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- search {sid}: proxy {meta['proxy']}, recipe {meta['trial_recipe']}, concurrency {meta['concurrency']}, "
        f"{b['trials']} trials",
        "",
        "| phase | mean s | share of NNI's trial wall time |",
        "|---|---|---|",
        *(
            f"| {k} | {b['mean_seconds'][k]:.2f} | {100 * b['share_of_wall'][k]:.1f} % |"
            for k in b["share_of_wall"]
        ),
        f"| **trial wall (NNI start to end)** | {b['mean_seconds']['wall']:.2f} | 100 % |",
        "",
        f"Everything but training: **{100 * b['overhead_share']:.1f} %** of the wall time (target <= 20 %). "
        "`peeks` are the intermediate results NNI plots (a fixed 1 000-image validation subset); "
        "`nni_around_the_process` is NNI's launch and collection around the trial process.",
    ]
    (RESULTS / "trial_overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
