"""Seconds per DM iteration, data-preparation time and peak memory: dmnas vs the reference code.

Runs the original implementation (VICO-UoE/DatasetCondensation, ``main_DM.py``) from a local
clone given as an argument, and ``dmnas condense``, side by side in one run, at the paper's
settings on Fashion-MNIST IPC 10 (ConvNet d3 w128 instancenorm avgpool, batch_real 256,
lr 1.0, full DSA strategy). The reference is copied to a temporary folder and its ConvNet's
``.view`` calls are changed to ``.reshape`` so that it runs on current torch; nothing of it is
stored in this repository.

    python -m benchmarks.bench_condense_speed /path/to/DatasetCondensation --iterations 20

Writes ``benchmarks/results/condense_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch

from benchmarks.common import RESULTS, command_line, machine
from benchmarks.reference_dm import prepare_reference, reference_argv, seconds_per_iteration

REFERENCE_PLACEHOLDER = "/path/to/DatasetCondensation"



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
    work: Path, iterations: int, env: dict[str, str], device: str, compile_: str, precision: str = "fp32",
    seed: int = 0,
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
        "--precision",
        precision,
        "--seed",
        str(seed),
        "--data-root",
        str(data_dir),
        "--cache-dir",
        str(work / f"cache-compile-{compile_}-{precision}"),
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


def gemm_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """This machine's dense matmul rate at ``dtype`` with torch's threads: the floor's yardstick."""
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    torch.mm(a, b)  # warm-up (kernel selection)
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def iteration_gflop(ipc: int = 10, batch_real: int = 256, classes: int = 10) -> tuple[float, float]:
    """(real forward, synthetic forward + backward) GFLOP of one DM iteration of the paper's ConvNet-3
    (w128, 28x28x1): 2 FLOP per multiply-add, backward about twice the forward."""
    from dmnas.reporting.findings import conv_flops

    per_image = 2 * conv_flops("d3_w128_relu_instancenorm_avgpooling", 28, 1) / 1e9
    return per_image * batch_real * classes, 3 * per_image * ipc * classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference", type=Path, help="local clone of VICO-UoE/DatasetCondensation")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    fp32_rate, bf16_rate = gemm_gflops(torch.float32), gemm_gflops(torch.bfloat16)
    real_gf, syn_gf = iteration_gflop()
    floor = {
        "gemm_gflops_fp32": fp32_rate,
        "gemm_gflops_bf16": bf16_rate,
        "real_forward_gflop": real_gf,
        "synthetic_fwd_bwd_gflop": syn_gf,
        "fp32_floor_s": (real_gf + syn_gf) / fp32_rate,
        "mixed_floor_s": real_gf / bf16_rate + syn_gf / fp32_rate,
    }
    runs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dmnas-bench-") as tmp:
        work = Path(tmp)
        ref = prepare_reference(args.reference.resolve(), work)
        runs["reference"] = reference_run(ref, args.iterations, env)
        for precision in ("fp32", "bf16-real"):
            for compile_ in ("off", "on"):
                runs[f"dmnas {precision} compile {compile_}"] = dmnas_run(
                    work, args.iterations, env, args.device, compile_, precision
                )
        # another set (seed 1) in the same cache folder: a second process finds the compiled code there
        runs["dmnas bf16-real compile on, warm code cache (seed 1)"] = dmnas_run(
            work, args.iterations, env, args.device, "on", "bf16-real", seed=1
        )
    ref_s = runs["reference"]["seconds_per_iteration"]
    result = {
        # the clone's path on this machine says nothing to a reader: the placeholder they substitute
        "command": command_line([a if a != str(args.reference) else REFERENCE_PLACEHOLDER for a in sys.argv]),
        "machine": machine(f"{torch.get_num_threads()} threads", f"device {args.device}"),
        "date": datetime.now().isoformat(timespec="seconds"),
        "settings": "Fashion-MNIST, IPC 10, ConvNet d3 w128 relu instancenorm avgpool, batch_real 256, DSA color_crop_cutout_flip_scale_rotate",
        "floor": floor,
        "runs": runs,
        "speedup_vs_reference": {k: ref_s / v["seconds_per_iteration"] for k, v in runs.items()},
        "times_fp32_floor": {k: v["seconds_per_iteration"] / floor["fp32_floor_s"] for k, v in runs.items()},
        "times_mixed_floor": {k: v["seconds_per_iteration"] / floor["mixed_floor_s"] for k, v in runs.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "condense_speed.json").write_text(json.dumps(result, indent=2))
    md = [
        "# DM condensation speed: dmnas vs reference main_DM.py, against this machine's floor\n",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- settings: {result['settings']}",
        f"- floor, measured in this run: GEMM {fp32_rate:.0f} GFLOP/s fp32, {bf16_rate:.0f} GFLOP/s bf16; one iteration is "
        f"{real_gf:.0f} GFLOP of real forward + {syn_gf:.0f} GFLOP of synthetic forward and backward: fp32 floor "
        f"{floor['fp32_floor_s']:.2f} s, mixed floor (real branch bf16) {floor['mixed_floor_s']:.2f} s\n",
        "| run | s / DM iteration (median) | x faster than the reference | x the fp32 floor | x the mixed floor "
        "| mean incl. compile/warm-up | whole run wall (s) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        md.append(
            f"| {name} | {r['seconds_per_iteration']:.2f} | {result['speedup_vs_reference'][name]:.2f} "
            f"| {result['times_fp32_floor'][name]:.2f} | {result['times_mixed_floor'][name]:.2f} "
            f"| {r.get('mean_seconds_per_iteration_incl_warmup', float('nan')):.2f} | {r['wall_seconds']:.0f} "
            f"| {r['peak_rss_mib']:.0f} |"
        )
    md += [
        "",
        "Reference seconds/iteration: from its own log timestamps (1 s resolution) over the timed iterations. "
        "dmnas: median of per-iteration wall times recorded in the cache manifest. The runs go one after "
        "another in this order, alone on the machine; the last finds the compiled code the one before it left "
        "in its cache folder (`<cache>/.inductor`).",
    ]
    (RESULTS / "condense_speed.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
