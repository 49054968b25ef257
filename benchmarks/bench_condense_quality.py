"""Test accuracy vs DM iterations on Fashion-MNIST, DM set vs a random real subset of equal size.

For each IPC, one condensation run is continued from checkpoint to checkpoint (so iteration
200 is the same run as iteration 100, continued), and at each checkpoint the set is evaluated by
training the paper's ConvNet from scratch ``--eval-runs`` times (SGD 0.9, wd 5e-4, lr 0.01 x0.1
halfway, DSA during training). The random baseline draws a different real subset per run.

    python -m benchmarks.bench_condense_quality --ipcs 1 10 --checkpoints 0 100 200 --eval-runs 3 --eval-epochs 200

Writes ``benchmarks/results/condense_quality.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime
from pathlib import Path

import torch

from benchmarks.common import RESULTS, command_line, machine
from dmnas.augment import default_strategy
from dmnas.data import DataConfig, load_dataset
from dmnas.condensation.dm import CondenseConfig, RunOptions, condense
from dmnas.defaults import for_device
from dmnas.condensation.evaluate import evaluate_images, random_subset
from dmnas.models import ConvNetSpec
from dmnas.train import TrainRecipe



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ipcs", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[0, 100, 200])
    ap.add_argument("--eval-runs", type=int, default=3)
    ap.add_argument("--eval-epochs", type=int, default=200)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--out", default="condense_quality")
    args = ap.parse_args()

    device = torch.device(args.device)
    data = load_dataset(DataConfig(), args.data_root)
    strategy = default_strategy(data.name)
    recipe = TrainRecipe(epochs=args.eval_epochs, strategy=strategy)
    spec = ConvNetSpec()
    rows = []
    for ipc in args.ipcs:
        rand_accs = []
        for r in range(args.eval_runs):  # a different random subset for every run
            x, y = random_subset(data, ipc, seed=1000 + r)
            rand_accs += evaluate_images("random", x, y, data, spec, recipe, 1, r, device).accuracies
        state = None
        for it in sorted(args.checkpoints):
            cfg = CondenseConfig(ipc=ipc, iterations=it, strategy=strategy, seed=0)
            t0 = time.perf_counter()
            opts = RunOptions(
                device=args.device,
                real_chunk=for_device(device.type).real_chunk,
                channels_last=True,
                compile=device.type == "cpu" and it > 0,
            )
            state = condense(data, cfg, opts, resume=state)
            res = evaluate_images(
                "dm",
                state.images,
                torch.arange(data.num_classes).repeat_interleave(ipc),
                data,
                spec,
                recipe,
                args.eval_runs,
                0,
                device,
            )
            row = {
                "ipc": ipc,
                "iterations": it,
                "dm_mean": res.mean,
                "dm_std": res.std,
                "dm_accs": res.accuracies,
                "random_mean": statistics.fmean(rand_accs),
                "random_std": statistics.pstdev(rand_accs),
                "random_accs": rand_accs,
                "final_loss": state.losses[-1] if state.losses else None,
                "condense_seconds_total": state.seconds,
            }
            rows.append(row)
            print(
                f"ipc {ipc} it {it}: DM {100 * res.mean:.2f} ± {100 * res.std:.2f}  random {100 * row['random_mean']:.2f} ± "
                f"{100 * row['random_std']:.2f}  ({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
    result = {
        "command": command_line(),
        "machine": machine(f"device {args.device}"),
        "date": datetime.now().isoformat(timespec="seconds"),
        "eval": {"arch": spec.name, "epochs": args.eval_epochs, "runs": args.eval_runs, "strategy": strategy},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    md = [
        "# DM proxy quality on Fashion-MNIST: test accuracy vs DM iterations\n",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- evaluation: {spec.name} trained {args.eval_epochs} epochs, {args.eval_runs} seeds, mean ± std (population)\n",
        "| IPC | DM iterations | DM test acc (%) | random real subset (%) | DM − random (pts) | final DM loss |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['ipc']} | {r['iterations']} | {100 * r['dm_mean']:.2f} ± {100 * r['dm_std']:.2f} | {100 * r['random_mean']:.2f} ± "
            f"{100 * r['random_std']:.2f} | {100 * (r['dm_mean'] - r['random_mean']):+.2f} | {r['final_loss'] if r['final_loss'] is None else round(r['final_loss'], 3)} |"
        )
    (RESULTS / f"{args.out}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
