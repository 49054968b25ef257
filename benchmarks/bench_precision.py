"""Is the bf16 real branch the same condensation as fp32? Loss per iteration, the class-mean
embeddings, and the final set, side by side from one seed.

Condenses the same configuration (Fashion-MNIST, IPC ``--ipc``, ``--iterations`` DM iterations, the
CPU defaults otherwise) at ``--precision fp32`` and ``bf16-real`` from the same seed, and reports:

- the relative difference of the real class-mean embeddings computed both ways on one batch under
  fresh random networks (what the bf16 branch changes directly);
- the DM loss of every iteration, relative difference (median and max);
- the final sets: mean absolute pixel difference between them, against how far each moved from the
  shared initialisation (pixel standard deviations).

    OMP_NUM_THREADS=2 .venv/bin/python -m benchmarks.bench_precision --ipc 50 --iterations 200

Writes ``benchmarks/results/condense_precision.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.common import RESULTS, command_line, machine
from dmnas.condensation.dm import CondenseConfig, RunOptions, condense, sample_real_batch
from dmnas.condensation.embedding import bf16_copy, real_class_means
from dmnas.data import DataConfig, load_dataset
from dmnas.defaults import for_device
from dmnas.models import build_convnet



def mean_embedding_difference(data: object, cfg: CondenseConfig, nets: int = 5) -> list[float]:
    """||means_bf16 - means_fp32|| / ||means_fp32|| for ``nets`` fresh networks on one real batch each."""
    out = []
    for seed in range(nets):
        gen = torch.Generator().manual_seed(seed)
        net = build_convnet(cfg.embed, data.image_shape, data.num_classes, generator=gen)
        net.requires_grad_(False)
        idx, groups = sample_real_batch(data.class_indices(), cfg.batch_real, gen)
        real = data.train_x[idx].contiguous(memory_format=torch.channels_last)
        net = net.to(memory_format=torch.channels_last)
        a = real_class_means(net.embed, real, groups, data.num_classes, 16)
        b = real_class_means(bf16_copy(net).embed, real.to(torch.bfloat16), groups, data.num_classes, 16)
        out.append(float((b - a).norm() / a.norm()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ipc", type=int, default=50)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--compile", action="store_true", help="compile the embedding (as --compile on)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args()
    data = load_dataset(DataConfig())
    base = CondenseConfig(ipc=args.ipc, iterations=args.iterations)
    opts = RunOptions(real_chunk=for_device("cpu").real_chunk, channels_last=True, compile=args.compile)
    start = condense(data, replace(base, iterations=0)).images
    runs, seconds = {}, {}
    for precision in ("fp32", "bf16-real"):
        t0 = time.perf_counter()
        runs[precision] = condense(data, replace(base, precision=precision), opts)
        seconds[precision] = time.perf_counter() - t0
    a, b = runs["fp32"], runs["bf16-real"]
    rel = [abs(x - y) / abs(x) for x, y in zip(a.losses, b.losses, strict=True)]
    sd = float(data.train_x.std())
    res = {
        "command": command_line(),
        "machine": machine(),
        "date": dt.date.today().isoformat(),
        "config": {"ipc": args.ipc, "iterations": args.iterations, "compile": args.compile},
        "class_mean_relative_difference": mean_embedding_difference(data, base),
        "loss_relative_difference": {"median": float(torch.tensor(rel).median()), "max": max(rel)},
        "final_loss": {"fp32": a.losses[-1], "bf16-real": b.losses[-1]},
        "moved_sd": {"fp32": float((a.images - start).abs().mean()) / sd, "bf16-real": float((b.images - start).abs().mean()) / sd},
        "sets_differ_sd": float((a.images - b.images).abs().mean()) / sd,
        "seconds": seconds,
    }
    res["difference_over_movement"] = res["sets_differ_sd"] / res["moved_sd"]["fp32"]
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "condense_precision.json").write_text(json.dumps(res, indent=2))
    cm = res["class_mean_relative_difference"]
    md = f"""# bf16 real branch vs fp32: the same condensation?

- command: `{res['command']}`
- machine: {res['machine']}
- date: {res['date']}

Fashion-MNIST, IPC {args.ipc}, {args.iterations} DM iterations, seed 0, CPU defaults (real chunks of 16,
channels-last{', compiled' if args.compile else ', eager'}); both runs from the same initial images and random stream.

| measure | value |
|---|---|
| real class-mean embeddings, relative difference (5 fresh networks) | {min(cm):.2e} – {max(cm):.2e} |
| DM loss per iteration, relative difference: median / max | {res['loss_relative_difference']['median']:.2e} / {res['loss_relative_difference']['max']:.2e} |
| final loss fp32 / bf16-real | {a.losses[-1]:.3f} / {b.losses[-1]:.3f} |
| images moved from their start (pixel sd): fp32 / bf16-real | {res['moved_sd']['fp32']:.4f} / {res['moved_sd']['bf16-real']:.4f} |
| the two final sets differ by (pixel sd) | {res['sets_differ_sd']:.4f} ({100 * res['difference_over_movement']:.1f} % of how far fp32 moved) |
| seconds fp32 / bf16-real (this run; shared with other jobs: not a timing, see condense_speed.md) | {seconds['fp32']:.0f} / {seconds['bf16-real']:.0f} |
"""
    (args.results / "condense_precision.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
