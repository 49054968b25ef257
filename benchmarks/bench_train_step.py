"""One default proxy trial's training step, phase by phase, and what a cheaper step buys.

The default proxy trial (IPC 50 x 10 classes, 40 epochs, batch 256: 80 optimiser steps, siamese
DSA augmentation) is timed step by step -- augmentation sampling, augmentation applied, forward,
backward, optimiser, and the rest of the loop (Python, indexing, scheduler) -- for a few
architectures of the shipped table, in three variants, each in a fresh process (an allocator
setting is process-wide):

- ``default``: glibc's allocator as it comes;
- ``keep_freed``: :func:`dmnas.util.allocator.keep_freed_memory` (what trials and workers now do);
- ``keep_freed+channels_last``: the same with channels-last model and batches.

Every variant trains the same networks on the same batches; the final losses are compared, so a
variant that changed what is computed would show. Threads: ``--threads`` (1 = a trial at
concurrency 2 on this 2-core machine).

    .venv/bin/python -m benchmarks.bench_train_step

Writes ``benchmarks/results/train_step_profile.{json,md}``. Measure alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from benchmarks.common import RESULTS, ROOT, command_line, machine

VARIANTS = ("default", "keep_freed", "keep_freed+channels_last")
PHASES = ("aug_sample", "aug_apply", "forward", "backward", "optimiser", "loop_rest")


def profile(arch: str, variant: str, threads: int, epochs: int) -> dict:
    """In this process: train ``arch`` as a default proxy trial does, timing each phase."""
    import torch

    from dmnas.util.allocator import keep_freed_memory
    from dmnas.augment import AugParams, apply_draw, parse_strategy, sample_draw
    from dmnas.condensation.evaluate import random_subset
    from dmnas.data import DataConfig, load_dataset
    from dmnas.models import build_convnet, parse_arch
    from dmnas.train import SCHEDULES, TrainRecipe

    if variant != "default":
        keep_freed_memory()
    torch.set_num_threads(threads)
    data = load_dataset(DataConfig())
    x, y = random_subset(data, 50, seed=1)
    recipe = TrainRecipe(epochs=epochs)
    kinds = parse_strategy(recipe.strategy)
    gen = torch.Generator().manual_seed(0)
    model = build_convnet(parse_arch(arch), data.image_shape, data.num_classes, generator=gen)
    cl = variant.endswith("channels_last")
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    sched = SCHEDULES.get(recipe.schedule)(opt, recipe.epochs, -(-len(x) // recipe.batch_size))
    loss_fn = torch.nn.CrossEntropyLoss()
    t = dict.fromkeys(PHASES, 0.0)
    steps, clock = 0, time.perf_counter
    t_all = clock()
    for _ in range(recipe.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), recipe.batch_size):
            idx = perm[start : start + recipe.batch_size]
            xb, yb = x[idx], y[idx]
            a = clock()
            draw = sample_draw(kinds, len(idx), gen, tuple(x.shape[2:]), AugParams(), one_kind=True)
            b = clock()
            xb = apply_draw(xb, torch.arange(len(idx)), draw)
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            c = clock()
            loss = loss_fn(model(xb), yb)
            d = clock()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            e = clock()
            opt.step()
            sched.step()
            f = clock()
            for k, v in zip(PHASES[:5], (b - a, c - b, d - c, e - d, f - e), strict=True):
                t[k] += v
            steps += 1
    total = clock() - t_all
    t["loop_rest"] = total - sum(t[k] for k in PHASES[:5])
    return {
        "arch": arch,
        "variant": variant,
        "steps": steps,
        "ms_per_step": {k: round(1000 * v / steps, 3) for k, v in t.items()},
        "step_ms": round(1000 * total / steps, 3),
        "train_s": round(total, 3),
        "final_loss": float(loss.detach()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", type=int, default=4, help="first N architectures of convnet_bench48")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--rows-from", type=Path, default=None, help="re-render the rows of an earlier results file")
    ap.add_argument("--child", nargs=2, metavar=("ARCH", "VARIANT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(profile(args.child[0], args.child[1], args.threads, args.epochs)))
        return
    import yaml

    names = yaml.safe_load((ROOT / "search_spaces" / "convnet_bench48.yaml").read_text())["arch"]["_value"][: args.archs]
    rows, earlier = [], json.loads(args.rows_from.read_text()) if args.rows_from else None
    if earlier:
        rows = earlier["rows"]
        names = list(dict.fromkeys(r["arch"] for r in rows))
    for arch in names if not earlier else ():
        for variant in VARIANTS:  # side by side, one architecture at a time
            out = subprocess.run(
                [sys.executable, __file__, "--child", arch, variant, "--threads", str(args.threads), "--epochs", str(args.epochs)],
                capture_output=True, text=True, check=True,
            ).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    mean = {
        v: {p: sum(r["ms_per_step"][p] for r in rows if r["variant"] == v) / len(names) for p in PHASES} for v in VARIANTS
    }
    step = {v: sum(r["step_ms"] for r in rows if r["variant"] == v) / len(names) for v in VARIANTS}
    # Bitwise: a variant that only changes where memory comes from must give the very same loss.
    loss = {(r["arch"], r["variant"]): r["final_loss"] for r in rows}
    same_loss = {v: all(loss[(a, v)] == loss[(a, "default")] for a in names) for v in VARIANTS}
    result = {
        "rows": rows,
        "mean_ms_per_step": mean,
        "mean_step_ms": step,
        "speedup_vs_default": {v: step["default"] / step[v] for v in VARIANTS},
        "same_final_loss_as_default": same_loss,
        "threads": earlier["threads"] if earlier else args.threads,
        "command": earlier["command"] if earlier else command_line(),
        "machine": earlier["machine"] if earlier else machine(),
        "date": earlier["date"] if earlier else dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train_step_profile.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# One default proxy trial's training step, phase by phase (CPU)",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}, {result['threads']} thread(s)",
        f"- date: {result['date']}",
        f"- {len(names)} architectures of convnet_bench48 ({', '.join(names)}), IPC 50, {args.epochs} epochs, batch 256, DSA",
        "",
        "Mean ms per step:",
        "",
        "| phase | " + " | ".join(VARIANTS) + " |",
        "|---|" + "---|" * len(VARIANTS),
        *(f"| {p} | " + " | ".join(f"{mean[v][p]:.2f}" for v in VARIANTS) + " |" for p in PHASES),
        "| **step** | " + " | ".join(f"**{step[v]:.2f}**" for v in VARIANTS) + " |",
        "| speed-up vs default | " + " | ".join(f"{result['speedup_vs_default'][v]:.2f}x" for v in VARIANTS) + " |",
        "",
        "Final loss bitwise equal to the default's (what is computed did not change): "
        + ", ".join(f"{v} **{same_loss[v]}**" for v in VARIANTS[1:])
        + ". Channels-last reorders the convolutions' sums (last digits differ) and is slower on some "
        "architectures; trials do not use it. The allocator setting is bitwise neutral: trials and workers use it.",
        "",
        "| arch | " + " | ".join(VARIANTS) + " |",
        "|---|" + "---|" * len(VARIANTS),
        *(
            f"| {a} | " + " | ".join(f"{r['step_ms']:.1f} ms" for v in VARIANTS for r in rows if r["arch"] == a and r["variant"] == v) + " |"
            for a in names
        ),
    ]
    (RESULTS / "train_step_profile.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
