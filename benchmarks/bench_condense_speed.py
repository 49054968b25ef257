"""Seconds per DM iteration, data-preparation time and peak memory: dmnas vs the reference code.

Runs the original implementation (VICO-UoE/DatasetCondensation, ``main_DM.py``) from a local
clone given as an argument, and ``dmnas condense``, side by side in one run, at the paper's
settings on Fashion-MNIST IPC 10 (ConvNet d3 w128 instancenorm avgpool, batch_real 256,
lr 1.0, full DSA strategy). The reference is copied to a temporary folder and its ConvNet's
``.view`` calls are changed to ``.reshape`` so that it runs on current torch; nothing of it is
stored in this repository.

    python benchmarks/bench_condense_speed.py /path/to/DatasetCondensation --iterations 20

Writes ``benchmarks/results/condense_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

from reference_dm import prepare_reference, reference_argv, seconds_per_iteration  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


# Checkpoints cost time a speed measurement should not include; the CLI takes no 0, so a count no run reaches.
NO_CHECKPOINT = "1000000"


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, float, float]:
    """Run a command; return stdout+stderr, wall seconds and its peak resident memory (MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{out[-3000:]}")
    return out, wall, usage.ru_maxrss / 1024  # Linux reports KiB


def reference_run(ref: Path, iterations: int, env: dict[str, str]) -> dict[str, float]:
    cmd = [sys.executable, *reference_argv("FashionMNIST", "data", iterations)]
    t_start = datetime.now()
    out, wall, rss = run_measured(cmd, ref, env)
    per_it, span = seconds_per_iteration(out)
    begins = re.search(r"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]) training begins", out)
    prep = (
        (datetime.strptime(begins.group(1), "[%Y-%m-%d %H:%M:%S]") - t_start).total_seconds()
        if begins
        else float("nan")
    )
    return {
        "seconds_per_iteration": per_it,
        "data_ready_seconds": prep,
        "peak_rss_mib": rss,
        "wall_seconds": wall,
        "timed_iterations": f"{span} (1 s timestamp resolution)",
    }


def dmnas_run(
    work: Path, iterations: int, env: dict[str, str], device: str, compile_: str
) -> dict[str, float]:
    data_dir = work / "dmnas-data"
    probe = (
        "import time,sys; from dmnas.data import DataConfig, load_dataset; t=time.perf_counter(); "
        "load_dataset(DataConfig(), sys.argv[1]); print(time.perf_counter()-t)"
    )
    cold, _, _ = run_measured([sys.executable, "-c", probe, str(data_dir)], work, env)
    warm, _, _ = run_measured([sys.executable, "-c", probe, str(data_dir)], work, env)
    cmd = [
        sys.executable,
        "-m",
        "dmnas",
        "condense",
        "--ipc",
        "10",
        "--iterations",
        str(iterations),
        "--device",
        device,
        "--compile",
        compile_,
        "--data-root",
        str(data_dir),
        "--cache-dir",
        str(work / f"cache-compile-{compile_}"),
        "--checkpoint-every",
        NO_CHECKPOINT,
        "-q",
    ]
    out, wall, rss = run_measured(cmd, work, env)
    entry = Path(next(s for s in out.splitlines() if s.startswith("entry: ")).split(": ", 1)[1])
    manifest = json.loads((entry / "manifest.json").read_text())
    return {
        "seconds_per_iteration": manifest["median_seconds_per_iteration"],
        "mean_seconds_per_iteration_incl_warmup": manifest["seconds_per_iteration"],
        "data_ready_seconds": float(warm.strip().splitlines()[-1]),
        "data_first_prepare_seconds": float(cold.strip().splitlines()[-1]),
        "peak_rss_mib": rss,
        "wall_seconds": wall,
        "run_options": manifest["config"]["run"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", type=Path, help="local clone of VICO-UoE/DatasetCondensation")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory(prefix="dmnas-bench-") as tmp:
        work = Path(tmp)
        ref = prepare_reference(args.reference.resolve(), work)
        reference = reference_run(ref, args.iterations, env)
        ours = dmnas_run(work, args.iterations, env, args.device, "on")
        eager = dmnas_run(work, args.iterations, env, args.device, "off")
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}",
        "date": datetime.now().isoformat(timespec="seconds"),
        "settings": "Fashion-MNIST, IPC 10, ConvNet d3 w128 relu instancenorm avgpool, batch_real 256, DSA color_crop_cutout_flip_scale_rotate",
        "reference": reference,
        "dmnas": ours,
        "dmnas_no_compile": eager,
        "speedup_per_iteration": reference["seconds_per_iteration"] / ours["seconds_per_iteration"],
        "speedup_per_iteration_no_compile": reference["seconds_per_iteration"]
        / eager["seconds_per_iteration"],
        "memory_ratio": ours["peak_rss_mib"] / reference["peak_rss_mib"],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "condense_speed.json").write_text(json.dumps(result, indent=2))
    md = [
        "# DM condensation speed: dmnas vs reference main_DM.py\n",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- settings: {result['settings']}",
        f"- dmnas run options (defaults for the device): {json.dumps(ours['run_options'], sort_keys=True)}\n",
        "| | reference | dmnas (--compile on) | ratio | dmnas --compile off | ratio |",
        "|---|---|---|---|---|---|",
        f"| seconds / DM iteration (dmnas: median) | {reference['seconds_per_iteration']:.2f} | {ours['seconds_per_iteration']:.2f} | {result['speedup_per_iteration']:.2f}x faster "
        f"| {eager['seconds_per_iteration']:.2f} | {result['speedup_per_iteration_no_compile']:.2f}x faster |",
        f"| mean incl. compile/warm-up | | {ours['mean_seconds_per_iteration_incl_warmup']:.2f} | | {eager['mean_seconds_per_iteration_incl_warmup']:.2f} | |",
        f"| data ready (s) | {reference['data_ready_seconds']:.1f} | {ours['data_ready_seconds']:.2f} (first prepare {ours['data_first_prepare_seconds']:.1f}) | | | |",
        f"| peak RSS (MiB) | {reference['peak_rss_mib']:.0f} | {ours['peak_rss_mib']:.0f} | {result['memory_ratio']:.2f} | {eager['peak_rss_mib']:.0f} | {eager['peak_rss_mib'] / reference['peak_rss_mib']:.2f} |",
        f"| whole run wall (s) | {reference['wall_seconds']:.0f} | {ours['wall_seconds']:.0f} | | {eager['wall_seconds']:.0f} | |",
        "",
        "Reference seconds/iteration: from its own log timestamps (1 s resolution) over the timed iterations. "
        "dmnas: median of per-iteration wall times recorded in the cache manifest.",
    ]
    (RESULTS / "condense_speed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
