"""Seconds for the real branch of one DM iteration vs how many real images go through per forward.

The real branch (10 classes x batch_real 256 Fashion-MNIST images through the paper's ConvNet,
no autograd) is almost all of a CPU iteration. This sweeps ``RunOptions.real_chunk`` side by
side in one run, compiled and eager, on the same random networks and images, to back the CPU
default (``dmnas.defaults.CPU_REAL_CHUNK``): the first conv's output of a large chunk does not fit in
the cache, which makes the layers after it memory-bound.

    python -m benchmarks.bench_real_chunk --chunks 8 16 32 64 256 --repeats 5
    python -m benchmarks.bench_real_chunk --precision bf16-real --chunks 8 16 32 64 128 --repeats 5

Writes ``benchmarks/results/real_chunk.{json,md}`` (``real_chunk_bf16-real.*`` for the bf16 real
branch: bfloat16 weights and images, as ``dmnas condense --precision bf16-real`` runs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import datetime

import torch

from benchmarks.common import RESULTS, command_line, machine
from dmnas.condensation.embedding import REAL_BF16, Embedder, bf16_copy, real_class_means
from dmnas.defaults import CPU_REAL_CHUNK
from dmnas.models import ConvNetSpec, build_convnet



def time_real_branch(
    chunk: int,
    compile_: bool,
    nets: list[torch.nn.Module],
    images: torch.Tensor,
    groups: torch.Tensor,
    template: torch.nn.Module,
) -> list[float]:
    """Per-network seconds of the real branch; the first network warms up (and compiles) untimed."""
    embedder = Embedder(template, compile_)
    seconds = []
    for i, net in enumerate(nets):
        t0 = time.perf_counter()
        real_class_means(lambda v, n=net: embedder(n, v), images, groups, 10, chunk)
        if i > 0:
            seconds.append(time.perf_counter() - t0)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, nargs="+", default=[8, 16, 32, 64, 256])
    ap.add_argument(
        "--repeats", type=int, default=5, help="timed random networks per setting (after one warm-up)"
    )
    ap.add_argument("--batch-real", type=int, default=256)
    ap.add_argument("--precision", choices=("fp32", REAL_BF16), default="fp32", help="of the real branch")
    ap.add_argument("--compiled-only", action="store_true", help="skip the eager rows")
    args = ap.parse_args()
    bf16 = args.precision == REAL_BF16

    spec = ConvNetSpec()  # the paper's d3 w128 relu instancenorm avgpooling
    shape = (1, 28, 28)  # Fashion-MNIST; random pixels cost the same as real ones
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(10 * args.batch_real, *shape, generator=gen).contiguous(
        memory_format=torch.channels_last
    )
    groups = torch.arange(10).repeat_interleave(args.batch_real)
    nets = [
        build_convnet(spec, shape, 10, generator=gen)
        .to(memory_format=torch.channels_last)
        .requires_grad_(False)
        for _ in range(args.repeats + 1)
    ]
    if bf16:  # as dm.py: the augmented fp32 images and a bf16 copy of the network
        images, nets = images.to(torch.bfloat16), [bf16_copy(n) for n in nets]
    template = build_convnet(spec, shape, 10, torch.Generator()).to(memory_format=torch.channels_last)

    rows = []
    modes = (True,) if args.compiled_only else (True, False)
    for compile_ in modes:
        for chunk in args.chunks:
            s = time_real_branch(chunk, compile_, nets, images, groups, template)
            rows.append(
                {"compile": compile_, "chunk": chunk, "median_seconds": statistics.median(s), "seconds": s}
            )
            print(f"compile={compile_} chunk={chunk}: {statistics.median(s):.3f} s", flush=True)
    for r in rows:
        base = next(b for b in rows if b["compile"] == r["compile"] and b["chunk"] == max(args.chunks))
        r["speedup_vs_largest_chunk"] = base["median_seconds"] / r["median_seconds"]

    result = {
        "command": command_line(),
        "machine": machine(f"{torch.get_num_threads()} threads"),
        "date": datetime.now().isoformat(timespec="seconds"),
        "settings": f"real branch of one DM iteration: 10 x {args.batch_real} images {shape}, ConvNet {spec.name}, "
        f"channels_last, no grad, {args.precision}",
        "cpu_real_chunk_default": CPU_REAL_CHUNK,
        "rows": rows,
    }
    stem = "real_chunk" if not bf16 else f"real_chunk_{REAL_BF16}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    md = [
        "# Real-branch seconds per DM iteration vs real images per forward\n",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        f"- settings: {result['settings']}",
        f"- dmnas CPU default: {CPU_REAL_CHUNK}\n",
        "| chunk | compiled s (median) | vs largest chunk | eager s (median) | vs largest chunk |",
        "|---|---|---|---|---|",
    ]
    for chunk in args.chunks:
        cells = []
        for flag in (True, False):
            r = next((r for r in rows if r["compile"] == flag and r["chunk"] == chunk), None)
            cells.append("n/a | n/a |" if r is None else f"{r['median_seconds']:.3f} | {r['speedup_vs_largest_chunk']:.2f}x |")
        md.append(f"| {chunk} | " + " ".join(cells))
    (RESULTS / f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
