"""Where a proxy trial's wall time goes, process mode against worker mode, in one run.

Runs two real ``dmnas search`` experiments over the same ``--archs`` architectures of the shipped
table's space (default proxy recipe: the DM set, IPC 50, 40 epochs), one with ``--trial-mode
process`` and one with ``--trial-mode worker``, at the same ``--concurrency``, on a DM set condensed
beforehand (so neither pays for it); with ``--before COMMIT``, first the same search with the code
of that commit (checked out with ``git worktree``, run with ``PYTHONPATH`` pointing at it: "today's"
trials, for the throughput target against them). Then, with ``--pipeline``, the README's pipeline command in a
fresh project with an empty cache (condensation included), timed from start to end.

Per mode: the experiment's span (first trial RUNNING to last trial done, from NNI's own database),
slot-seconds per trial (span x concurrency / trials), each trial's own timings, training seconds,
the non-training share (the final validation pass counted as scoring, as the issue asks) and
architectures scored per CPU-minute (per minute of span and per core).

    .venv/bin/python -m benchmarks.bench_trial_overhead --archs 16 --pipeline

Measure alone: the two CPU cores must not be shared with other jobs. Writes
``benchmarks/results/trial_overhead.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, ROOT, command_line, machine
from benchmarks.run_dmnas import dmnas, exp_id, project_env

MODES = ("process", "worker")
BEFORE = "process (before)"
SCORING = ("training", "final_eval")  # what a trial is for; everything else is overhead
PHASES = (
    "startup_and_imports",
    "nni_parameters",
    "slot_wait",
    "worker_start",
    "data_load",
    "training_set",
    "training",
    "peeks",
    "final_eval",
)
TERMINAL = ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED")


def nni_span(db: Path) -> float:
    """Seconds from the first trial RUNNING to the last trial's end, as NNI's database has them."""
    with sqlite3.connect(db) as c:
        starts = [t for (t,) in c.execute("select timestamp from TrialJobEvent where event = 'RUNNING'")]
        ends = [t for (t,) in c.execute(f"select timestamp from TrialJobEvent where event in {TERMINAL}")]
    if not starts or not ends:
        raise SystemExit(f"{db}: no trial start/end events")
    return (max(ends) - min(starts)) / 1000


def mode_summary(mode: str, search_dir: Path, span: float, concurrency: int, cores: int) -> dict:
    """One mode's row of the results file."""
    records = [t["record"] for t in json.loads((search_dir / "results.json").read_text())["trials"] if t.get("record")]
    if not records:
        raise SystemExit(f"{search_dir}: no scored trial")
    n = len(records)
    per_trial = span * concurrency / n  # slot-seconds: what one architecture costs a slot
    # slot_wait is time a trial spent queued at a busy worker: it overlaps another trial's work,
    # so it is not slot time; the rest of a slot's time is NNI's launch/collection and idling.
    inside = {p: statistics.fmean(float(r["timings"].get(p, 0.0)) for r in records) for p in PHASES}
    slot_phases = {p: v for p, v in inside.items() if p != "slot_wait"}
    phases = {**slot_phases, "nni_launch_collect_and_idle": max(0.0, per_trial - sum(slot_phases.values()))}
    scoring = sum(inside[p] for p in SCORING)
    return {
        "mode": mode,
        "search": search_dir.name,
        "trials": n,
        "concurrency": concurrency,
        "span_s": round(span, 2),
        "wall_s_per_trial": round(per_trial, 3),
        "training_s_per_trial": round(inside["training"], 3),
        "final_eval_s_per_trial": round(inside["final_eval"], 3),
        "non_training_share": round(1 - scoring / per_trial, 4),
        "non_training_share_eval_as_overhead": round(1 - inside["training"] / per_trial, 4),
        "archs_per_minute": round(n / (span / 60), 3),
        "archs_per_cpu_minute": round(n / (span / 60) / cores, 3),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "queued_wait_s_per_trial": round(inside["slot_wait"], 3),
        "scores": {r["arch"]: r["score"] for r in records},
    }


def run_search(env: dict, space: Path, mode: str, concurrency: int, port: int) -> Path:
    extra = [] if mode == BEFORE else ["--trial-mode", mode]  # the code before knows no trial modes
    out, _ = dmnas(
        env, "search", "--space", str(space), "--concurrency", str(concurrency), *extra,
        "--port", str(port), "--table", "none", "-q",
    )
    return Path(env["DMNAS_WORKDIR"]) / "searches" / exp_id(out)


def markdown(result: dict) -> str:
    rows = result["modes"]
    lines = [
        "# Trial overhead: process mode vs worker mode (CPU)",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- {rows[0]['trials']} architectures of convnet_bench48, proxy dm (IPC 50, 40 epochs), concurrency "
        f"{rows[0]['concurrency']}, one run of each back to back on the same cached DM set",
        "",
        "| | " + " | ".join(r["mode"] for r in rows) + " |",
        "|---|" + "---|" * len(rows),
        "| slot-seconds per trial | " + " | ".join(f"{r['wall_s_per_trial']:.2f}" for r in rows) + " |",
        "| training s per trial | " + " | ".join(f"{r['training_s_per_trial']:.2f}" for r in rows) + " |",
        "| non-training share (final validation counted as scoring) | "
        + " | ".join(f"{100 * r['non_training_share']:.1f} %" for r in rows) + " |",
        "| non-training share (final validation counted as overhead) | "
        + " | ".join(f"{100 * r['non_training_share_eval_as_overhead']:.1f} %" for r in rows) + " |",
        "| architectures per minute (machine) | " + " | ".join(f"{r['archs_per_minute']:.2f}" for r in rows) + " |",
        "| architectures per CPU-minute (per core) | " + " | ".join(f"{r['archs_per_cpu_minute']:.2f}" for r in rows) + " |",
        "| experiment span s | " + " | ".join(f"{r['span_s']:.1f}" for r in rows) + " |",
        "",
        "Per phase, mean seconds per trial (slot time; `nni_launch_collect_and_idle` is the rest of a slot's",
        "time: NNI's launch and collection of trial processes and idling between trials):",
        "",
        "| phase | " + " | ".join(r["mode"] for r in rows) + " |",
        "|---|" + "---|" * len(rows),
        *(f"| {p} | " + " | ".join(f"{r['phases'][p]:.2f}" for r in rows) + " |" for p in rows[0]["phases"]),
        "",
        f"Throughput, worker / process: **{result['throughput_ratio']:.2f}x**. Scores identical in both modes: "
        f"**{result['scores_identical']}**.",
    ]
    if result.get("before"):
        lines += [
            "",
            f"`process (before)` is the code of commit {result['before']} (one process per trial, glibc's allocator "
            f"as it comes): worker mode against it **{result['throughput_ratio_vs_before']:.2f}x** the architectures "
            f"per minute; scores identical to it: **{result['scores_identical_to_before']}**.",
        ]
    if result.get("pipeline_wall_s") is not None:
        lines += [
            "",
            f"README pipeline (`{result['pipeline_command']}`) in a fresh project with an empty cache, condensation "
            f"included, default trial mode: **{result['pipeline_wall_s'] / 60:.1f} min** ({result['pipeline_wall_s']:.0f} s).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", type=int, default=16, help="architectures of convnet_bench48 per mode")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--pipeline", action="store_true", help="also time the README pipeline from an empty cache")
    ap.add_argument("--port", type=int, default=8096)
    ap.add_argument("--before", default=None, metavar="COMMIT", help="also run this commit's code (process trials)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="DM cache holding the default set (else condensed now)")
    args = ap.parse_args()

    import yaml

    tmp = Path(tempfile.mkdtemp(prefix="dmnas-overhead-"))
    names = yaml.safe_load((ROOT / "search_spaces" / "convnet_bench48.yaml").read_text())["arch"]["_value"]
    space = tmp / "overhead_space.yaml"
    space.write_text(yaml.safe_dump({"arch": {"_type": "choice", "_value": names[: args.archs]}}))
    env = project_env(tmp / "modes", args.cache_dir)
    dmnas(env, "condense", "-q")  # the default DM set, cached: no mode pays for it
    cores = os.cpu_count() or 1
    rows = []
    modes: list[tuple[str, dict]] = [(m, env) for m in MODES]
    if args.before:
        import subprocess

        old = tmp / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.before], check=True,
                       capture_output=True)
        modes.insert(0, (BEFORE, dict(env, PYTHONPATH=str(old))))
    for i, (mode, mode_env) in enumerate(modes):
        folder = run_search(mode_env, space, mode, args.concurrency, args.port + 10 * i)
        span = nni_span(Path(env["DMNAS_WORKDIR"]) / "nni" / folder.name / "db" / "nni.sqlite")
        rows.append(mode_summary(mode, folder, span, args.concurrency, cores))
    if args.before:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    by = {r["mode"]: r for r in rows}
    result = {
        "modes": rows,
        "before": args.before,
        "throughput_ratio": by["worker"]["archs_per_minute"] / by["process"]["archs_per_minute"],
        "throughput_ratio_vs_before": by["worker"]["archs_per_minute"] / by[BEFORE]["archs_per_minute"] if args.before else None,
        "scores_identical": by["worker"]["scores"] == by["process"]["scores"],
        "scores_identical_to_before": by["worker"]["scores"] == by[BEFORE]["scores"] if args.before else None,
        "pipeline_wall_s": None,
        "command": command_line(),
        "machine": machine(platform.processor() or ""),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if args.pipeline:
        pipe_env = project_env(tmp / "pipeline")
        cmd = ["search", "--space", "convnet_bench48", "--concurrency", "2", "--ground-truth", "0", "--port", str(args.port + 30)]
        t0 = time.perf_counter()
        dmnas(pipe_env, *cmd)
        result["pipeline_wall_s"] = round(time.perf_counter() - t0, 1)
        result["pipeline_command"] = "dmnas " + " ".join(cmd[:-2])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trial_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (RESULTS / "trial_overhead.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
