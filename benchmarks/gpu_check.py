"""The GPU check (run through ``benchmarks/gpu_check.sh``): one script, under 10 minutes on one GPU.

Measures, side by side in one run on the same GPU:

1. seconds per DM iteration and peak CUDA memory, dmnas vs the reference ``main_DM.py``
   (VICO-UoE/DatasetCondensation, a local clone given with ``--reference``; copied to a temporary
   folder, its ``.view`` calls made ``.reshape`` for current torch), at equal settings: IPC 10,
   ``--iterations`` iterations, ConvNet-3 w128, batch_real 256, full DSA -- on Fashion-MNIST and on
   a **generated stand-in of CIFAR-10** (random pixels in CIFAR-10's own on-disk format and size,
   50 000 + 10 000 images of 3x32x32, labelled as a stand-in in the results: CIFAR-10 cannot be
   downloaded on these machines; both programs read the same files, with torchvision's checksum
   test switched off for both);
2. dmnas at fp32, tf32, bf16 and bf16-real: seconds per iteration, and the accuracy of networks trained on
   each set (``--eval-runs`` runs) against the fp32 set's run-to-run spread;
3. a ``convnet_grid`` slice through the real NNI search, trials per minute and the projected
   time of all 720, four ways: ``--trial-mode process`` and ``worker``, each at 1 trial per GPU
   and at the default ``--trials-per-gpu`` (``--grid-trials`` architectures in worker mode,
   ``--process-trials`` in process mode, whose per-trial start-up makes a long run pointless);
4. a Fashion-MNIST DM condensation at IPC 50 for as many iterations as fit in ``--dm-seconds``
   (estimated from a 20-iteration probe), whose set and manifest are copied to
   ``<results>/gpu_set/<key>/`` so that the CPU ground-truth tables can score it afterwards (a
   cache entry: put it in a cache folder and point a search's ``--cache-dir`` there with the same
   condensation options; not yet automated).

Targets it reports against: >= 10x the reference per DM iteration; the 720-grid proxy search
within one GPU-hour. ``--sections`` picks parts (all by default; about 10 minutes in all, not yet
timed on a GPU). ``--dry-run`` checks every input (reference clone, data, NNI, dmnas, output
folder, CUDA) and prints the plan without running anything; CI runs it on CPU.

Writes ``gpu_check.json`` and ``gpu_check.md`` under ``$OUT`` when set, else ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, machine
from benchmarks.reference_dm import FMNIST, prepare_reference, reference_argv, seconds_per_iteration

REFERENCE_FILES = ("main_DM.py", "utils.py", "networks.py")
PRECISIONS = ("fp32", "tf32", "bf16", "bf16-real")  # bf16-real: the real branch in bf16 (CPU default where native)
# Run before either program (python -c): no CIFAR checksum (the stand-in is not the real files),
# and the peak CUDA memory printed at exit.
PRELUDE = (
    "import atexit, sys, runpy, torch, torchvision.datasets as d, torchvision.datasets.cifar as c;"
    "d.CIFAR10._check_integrity = lambda self: True; c.check_integrity = lambda *a, **k: True;"
    "atexit.register(lambda: print('PEAK_CUDA_BYTES', torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0));"
)


# Checkpoints cost time a speed measurement should not include; the CLI takes no 0, so a count no run reaches.
NO_CHECKPOINT = "1000000"


def out_dir() -> Path:
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "benchmarks" / "results"


def check_inputs(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(problems, notes): one line each. Problems stop a real run; a dry run lists them and fails."""
    problems, notes = [], []
    if args.reference is None:
        notes.append("no --reference: the reference comparison is skipped (dmnas numbers only)")
    else:
        missing = [f for f in REFERENCE_FILES if not (args.reference / f).is_file()]
        if missing:
            problems.append(
                f"--reference {args.reference}: not a DatasetCondensation clone (missing {', '.join(missing)})"
            )
    if not all((FMNIST / f).is_file() for f in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")):
        problems.append(f"Fashion-MNIST not in {FMNIST}: apt-get install dataset-fashion-mnist")
    for module, why in (
        ("torch", "everything"),
        ("torchvision", "the data"),
        ("nni", "the grid slice"),
        ("dmnas", "everything"),
    ):
        try:
            __import__(module)
        except ImportError:
            problems.append(
                f"python module {module} missing (needed for {why}): pip install it (NNI: carry its wheel)"
            )
    try:
        out = out_dir()
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".gpu_check_write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        problems.append(f"output folder {out_dir()} not writable: {err.strerror}")
    free_gb = shutil.disk_usage(tempfile.gettempdir()).free / 2**30
    if free_gb < 2:
        problems.append(
            f"only {free_gb:.1f} GiB free in {tempfile.gettempdir()} (the CIFAR-10 stand-in and caches need ~2)"
        )
    for name, value, least in (
        ("--iterations", args.iterations, 10),
        ("--grid-trials", args.grid_trials, 0),
        ("--process-trials", args.process_trials, 0),
        ("--dm-seconds", int(args.dm_seconds), 1),
        ("--concurrency", args.concurrency, 1),
        ("--eval-runs", args.eval_runs, 1),
    ):
        if value < least:
            problems.append(f"{name} must be >= {least}, got {value}")
    try:
        import torch

        if torch.cuda.is_available():
            notes.append(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
        elif not args.dry_run:
            problems.append("no CUDA device: this check is meant for a GPU machine (use --dry-run elsewhere)")
        else:
            notes.append("no CUDA device here (fine for --dry-run)")
    except ImportError:
        pass
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        problems.append(f"--sections: unknown {', '.join(sorted(unknown))}; valid: {', '.join(SECTIONS)}")
    return problems, notes


def plan(args: argparse.Namespace) -> list[str]:
    shapes = ["fashion_mnist", "cifar10 stand-in"]
    return [
        f"1. DM speed and peak CUDA memory at IPC 10, {args.iterations} iterations, on {', '.join(shapes)}: "
        + ("reference main_DM.py and " if args.reference else "")
        + "dmnas (fp32 and tf32)",
        f"2. dmnas fp32 / tf32 / bf16 / bf16-real sets on Fashion-MNIST: seconds per iteration and accuracy of {args.eval_runs} "
        f"networks each ({args.eval_epochs} epochs)",
        f"3. convnet_grid slice (NNI, proxy dm, concurrency {args.concurrency}): worker mode {args.grid_trials} and "
        f"process mode {args.process_trials} architectures, each at 1 trial per GPU and at the default "
        "--trials-per-gpu",
        f"4. Fashion-MNIST DM at IPC 50 for ~{args.dm_seconds:.0f} s; set and manifest to {out_dir() / 'gpu_set'}",
        f"results: {out_dir() / 'gpu_check.json'} and .md",
    ]


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-3000:]}"
        )
    return proc.stdout + proc.stderr, time.perf_counter() - t0


def peak_bytes(out: str) -> int:
    m = re.findall(r"PEAK_CUDA_BYTES (\d+)", out)
    return int(m[-1]) if m else 0


def write_cifar_standin(root: Path, seed: int = 0, per_batch: int = 10000) -> Path:
    """CIFAR-10's python pickle layout (5 training batches of 10 000, one test batch), random pixels."""
    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            "data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, size=per_batch).tolist(),
            "batch_label": "dmnas stand-in",
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return root


def reference_speed(
    ref: Path, dataset: str, data_path: Path, iterations: int, env: dict[str, str]
) -> dict[str, Any]:
    argv = reference_argv(dataset, str(data_path), iterations)
    code = PRELUDE + f"sys.argv={argv!r}; runpy.run_path('main_DM.py', run_name='__main__')"
    out, wall = run([sys.executable, "-c", code], ref, env, timeout=600)
    per_it, span = seconds_per_iteration(out)
    return {
        "seconds_per_iteration": per_it,
        "peak_cuda_mib": peak_bytes(out) / 2**20,
        "wall_seconds": wall,
        "timing": f"log timestamps, iterations {span} (1 s resolution)",
    }


def dmnas_condense(
    work: Path,
    dataset: str,
    data_root: Path,
    precision: str,
    iterations: int,
    env: dict[str, str],
    eval_runs: int = 0,
    eval_epochs: int = 300,
) -> dict[str, Any]:
    argv = [
        "dmnas",
        "condense",
        "--dataset",
        dataset,
        "--ipc",
        "10",
        "--iterations",
        str(iterations),
        "--device",
        "cuda",
        "--precision",
        precision,
        "--data-root",
        str(data_root),
        "--cache-dir",
        str(work / f"cache-{dataset}-{precision}"),
        "--checkpoint-every",
        NO_CHECKPOINT,
        "--eval-runs",
        str(eval_runs),
        "--eval-epochs",
        str(eval_epochs),
        "-q",
    ]
    code = PRELUDE + f"sys.argv={argv!r}; from dmnas.cli import main; sys.exit(main())"
    out, wall = run([sys.executable, "-c", code], work, env, timeout=900)
    entry = Path(next(s for s in out.splitlines() if s.startswith("entry: ")).split(": ", 1)[1])
    manifest = json.loads((entry / "manifest.json").read_text())
    evals = [v for k, v in manifest.get("evaluations", {}).items() if k.startswith("dm/")]
    return {
        "seconds_per_iteration": manifest["median_seconds_per_iteration"],
        "peak_cuda_mib": peak_bytes(out) / 2**20,
        "wall_seconds": wall,
        "accuracies": evals[0]["accuracies"] if evals else None,
    }


def grid_slice(
    work: Path, trials: int, concurrency: int, env: dict[str, str], mode: str = "worker", per_gpu: int = 1
) -> dict[str, Any]:
    tag = f"{mode}-{per_gpu}"
    out, wall = run(
        [
            sys.executable,
            "-m",
            "dmnas",
            "search",
            "--space",
            "convnet_grid",
            "--device",
            "cuda",
            "--max-trials",
            str(trials),
            "--concurrency",
            str(concurrency),
            "--trial-mode",
            mode,
            "--trials-per-gpu",
            str(per_gpu),
            "--port",
            "8097",
            "--workdir",
            str(work / f"grid-{tag}"),
            "--cache-dir",
            str(work / "cache-grid"),
            "--iterations",
            "200",
            "--table",
            "none",
            "-q",
        ],
        work,
        env,
        timeout=1200,
    )
    per_min = trials / (wall / 60)
    return {
        "trials": trials,
        "concurrency": concurrency,
        "trial_mode": mode,
        "trials_per_gpu": per_gpu,
        "wall_seconds": wall,
        "trials_per_minute": per_min,
        "projected_720_minutes": 720 / per_min,
        "tail": out.strip().splitlines()[-3:],
    }


def dm_budget_set(work: Path, seconds: float, env: dict[str, str], out: Path) -> dict[str, Any]:
    """IPC 50 on Fashion-MNIST for about ``seconds`` of DM (a 20-iteration probe sets the count);
    the set and its manifest are copied under ``out/gpu_set/``."""
    def condense(iterations: int, cache: Path) -> tuple[Path, float]:
        argv = ["dmnas", "condense", "--ipc", "50", "--iterations", str(iterations), "--device", "cuda",
                "--data-root", str(work / "dmnas-data"), "--cache-dir", str(cache), "--checkpoint-every", NO_CHECKPOINT, "-q"]
        code = PRELUDE + f"sys.argv={argv!r}; from dmnas.cli import main; sys.exit(main())"
        text, wall = run([sys.executable, "-c", code], work, env, timeout=seconds * 3 + 300)
        return Path(next(s for s in text.splitlines() if s.startswith("entry: ")).split(": ", 1)[1]), wall

    probe, _ = condense(20, work / "cache-dm50-probe")
    per_it = json.loads((probe / "manifest.json").read_text())["median_seconds_per_iteration"]
    iterations = max(20, int(seconds / per_it))
    entry, wall = condense(iterations, work / "cache-dm50")
    manifest = json.loads((entry / "manifest.json").read_text())
    dest = out / "gpu_set" / entry.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(entry, dest)
    return {
        "ipc": 50,
        "iterations": iterations,
        "seconds_per_iteration": manifest["median_seconds_per_iteration"],
        "wall_seconds": wall,
        "key": entry.name,
        "movement": manifest.get("movement"),
        "copied_to": str(dest),
    }


GRID_RUNS = (("process", 1), ("process", None), ("worker", 1), ("worker", None))  # None: the default
SECTIONS = ("speed", "precision", "grid", "dm50")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--reference", type=Path, default=None, help="local clone of VICO-UoE/DatasetCondensation"
    )
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--eval-runs", type=int, default=3)
    ap.add_argument("--eval-epochs", type=int, default=300)
    ap.add_argument("--grid-trials", type=int, default=72)
    ap.add_argument("--process-trials", type=int, default=24, help="grid architectures per process-mode run")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--dm-seconds", type=float, default=240, help="DM budget of the IPC-50 GPU set")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated parts of {SECTIONS}")
    ap.add_argument("--dry-run", action="store_true", help="check the inputs and print the plan; run nothing")
    args = ap.parse_args()
    problems, notes = check_inputs(args)
    for line in notes:
        print(f"gpu_check: {line}")
    for line in problems:
        print(f"gpu_check: problem: {line}", file=sys.stderr)
    for line in plan(args):
        print(f"gpu_check: plan: {line}")
    if problems:
        return 2
    if args.dry_run:
        print("gpu_check: dry run: inputs OK, nothing run")
        return 0

    import torch

    t_start = time.perf_counter()
    env = dict(
        os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    )
    from dmnas.defaults import TRIALS_PER_GPU

    sections = set(args.sections.split(","))
    result: dict[str, Any] = {"speed": {}, "precision": {}, "grid": [], "dm50": None}
    with tempfile.TemporaryDirectory(prefix="dmnas-gpu-check-") as tmp:
        work = Path(tmp)
        standin = write_cifar_standin(work / "cifar-standin")
        ref = prepare_reference(args.reference.resolve(), work) if args.reference else None
        shapes = {
            "fashion_mnist": ("FashionMNIST", ref / "data" if ref else None, work / "dmnas-data"),
            "cifar10": ("CIFAR10", standin, standin),
        }
        for name, (ref_name, ref_data, our_data) in shapes.items() if "speed" in sections else ():
            row: dict[str, Any] = {
                "data": "generated CIFAR-10 stand-in (random pixels)" if name == "cifar10" else name
            }
            if ref is not None:
                row["reference"] = reference_speed(ref, ref_name, ref_data, args.iterations, env)
            for precision in ("fp32", "tf32"):
                row[f"dmnas_{precision}"] = dmnas_condense(
                    work, name, our_data, precision, args.iterations, env
                )
            if ref is not None:
                row["speedup_tf32"] = (
                    row["reference"]["seconds_per_iteration"] / row["dmnas_tf32"]["seconds_per_iteration"]
                )
                row["speedup_fp32"] = (
                    row["reference"]["seconds_per_iteration"] / row["dmnas_fp32"]["seconds_per_iteration"]
                )
            result["speed"][name] = row
            print(f"gpu_check: speed {name}: {json.dumps(row)}", flush=True)
        for precision in PRECISIONS if "precision" in sections else ():
            result["precision"][precision] = dmnas_condense(
                work,
                "fashion_mnist",
                work / "dmnas-data",
                precision,
                args.iterations,
                env,
                args.eval_runs,
                args.eval_epochs,
            )
            print(
                f"gpu_check: precision {precision}: {json.dumps(result['precision'][precision])}", flush=True
            )
        for mode, per_gpu in GRID_RUNS if "grid" in sections else ():
            trials = args.grid_trials if mode == "worker" else args.process_trials
            if trials:
                row = grid_slice(work, trials, args.concurrency, env, mode, per_gpu or TRIALS_PER_GPU)
                result["grid"].append(row)
                print(f"gpu_check: grid: {json.dumps(row)}", flush=True)
        if "dm50" in sections:
            result["dm50"] = dm_budget_set(work, args.dm_seconds, env, out_dir())
            print(f"gpu_check: dm50: {json.dumps(result['dm50'])}", flush=True)
    result.update(
        command="benchmarks/gpu_check.sh " + " ".join(sys.argv[1:]),
        machine=machine(torch.cuda.get_device_name(0)),
        date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=time.perf_counter() - t_start,
    )
    out = out_dir()
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2, default=str))
    (out / "gpu_check.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict[str, Any]) -> str:
    import statistics

    lines = [
        "# GPU check",
        "",
        f"- command: `{r['command']}`",
        f"- machine: {r['machine']}",
        f"- date: {r['date']}",
        f"- wall: {r['wall_seconds']:.0f} s",
        "",
        "## DM seconds per iteration and peak CUDA memory (IPC 10)",
        "",
        "| data | reference s/it | dmnas fp32 s/it | dmnas tf32 s/it | speed-up (tf32) | ref MiB | dmnas tf32 MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in r["speed"].values():
        ref = s.get("reference", {})
        lines.append(
            f"| {s['data']} | {ref.get('seconds_per_iteration', float('nan')):.4f} | {s['dmnas_fp32']['seconds_per_iteration']:.4f} "
            f"| {s['dmnas_tf32']['seconds_per_iteration']:.4f} | {s.get('speedup_tf32', float('nan')):.1f}x (target >= 10x) "
            f"| {ref.get('peak_cuda_mib', float('nan')):.0f} | {s['dmnas_tf32']['peak_cuda_mib']:.0f} |"
        )
    lines += [
        "",
        "## Precision (Fashion-MNIST)",
        "",
        "| precision | s/it | accuracy mean | sd over runs |",
        "|---|---|---|---|",
    ]
    for p, v in r["precision"].items():
        acc = v["accuracies"] or []
        lines.append(
            f"| {p} | {v['seconds_per_iteration']:.4f} | {statistics.mean(acc) if acc else float('nan'):.4f} "
            f"| {statistics.stdev(acc) if len(acc) > 1 else float('nan'):.4f} |"
        )
    lines.append("")
    lines.append("A precision changes quality only if its mean is further from fp32's than the runs' spread.")
    if r["grid"]:
        lines += [
            "",
            "## convnet_grid slice (target: all 720 within 60 min)",
            "",
            "| trial mode | trials per GPU | trials | trials/min | all 720 in min |",
            "|---|---|---|---|---|",
            *(
                f"| {g['trial_mode']} | {g['trials_per_gpu']} | {g['trials']} | {g['trials_per_minute']:.1f} "
                f"| {g['projected_720_minutes']:.0f} |"
                for g in r["grid"]
            ),
        ]
    if r.get("dm50"):
        d = r["dm50"]
        moved = (d.get("movement") or {}).get("moved_sd")
        lines += [
            "",
            f"## DM at a GPU budget: IPC 50, {d['iterations']} iterations ({d['seconds_per_iteration']:.3f} s/it), "
            f"set {d['key']}, moved {moved if moved is not None else 'n/a'} pixel sd from its initialisation; "
            f"copied to `{d['copied_to']}`",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
