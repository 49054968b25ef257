"""Command line: ``dmnas condense | evaluate | cache | search | report | view``.

Only this module configures logging and prints; library code raises :class:`DmnasError`,
which is reported here as one line with a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import DmnasError

log = logging.getLogger("dmnas")

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


# ---------------------------------------------------------------- shared option groups


def add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final lines")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_data_args(p: argparse.ArgumentParser) -> None:
    from .data import dataset_names

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="fashion_mnist", help=f"one of: {', '.join(dataset_names())}")
    g.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder with torchvision-layout data and the prepared tensors (default: $DMNAS_DATA or ~/.local/share/dmnas/data)",
    )
    g.add_argument("--image-size", type=int, default=32, help="side of resized images (imagefolder only)")
    g.add_argument(
        "--val-fraction", type=float, default=0.1, help="share of each training class held out for ranking"
    )
    g.add_argument("--split-seed", type=int, default=0, help="seed of the validation split")


def add_condense_args(p: argparse.ArgumentParser) -> None:
    from .augment import DEFAULT_STRATEGY

    g = p.add_argument_group("distribution matching")
    g.add_argument("--ipc", type=int, default=10, help="synthetic images per class")
    g.add_argument(
        "--iterations", type=int, default=None, help="DM iterations (default: 20000 on CUDA, 100 on CPU)"
    )
    g.add_argument(
        "--init",
        default="real",
        choices=["real", "noise"],
        help="initialise from random real images or noise",
    )
    g.add_argument(
        "--strategy",
        default=None,
        help=f"siamese augmentation, '_'-joined or 'none' (default {DEFAULT_STRATEGY}; no flip for mnist/svhn)",
    )
    g.add_argument("--batch-real", type=int, default=256, help="real images per class per iteration")
    g.add_argument(
        "--lr-img", type=float, default=1.0, help="SGD learning rate on the synthetic pixels (momentum 0.5)"
    )
    g.add_argument(
        "--embed-arch", default=None, help="embedding ConvNet (default d3_w128_relu_instancenorm_avgpooling)"
    )
    g.add_argument(
        "--embed-pool",
        default=None,
        metavar="ARCHS",
        help="comma-separated embedding architectures, one drawn per iteration instead of --embed-arch "
        "(IDM-style; measured in benchmarks/results/proxy_ablation.md)",
    )
    g.add_argument(
        "--precision",
        default=None,
        choices=["fp32", "tf32", "bf16"],
        help="default: tf32 on CUDA, fp32 on CPU",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the synthetic set")
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    r.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="proxy-set cache (default: $DMNAS_CACHE or ./condensed_cache)",
    )
    r.add_argument(
        "--checkpoint-every", type=int, default=50, help="iterations between resumable checkpoints"
    )
    r.add_argument(
        "--real-chunk",
        type=int,
        default=None,
        help="real images per forward; 0 = all classes at once (default: 16 on CPU, cache-sized; 0 on CUDA)",
    )
    r.add_argument("--force", action="store_true", help="recompute even if the entry is cached (or corrupt)")
    r.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "on", "off"],
        help="torch.compile the embedding net; auto = on for CPU runs of >= 50 iterations "
        "(compiling takes 10-30 s once per run on a 2-core CPU)",
    )


def add_eval_args(p: argparse.ArgumentParser, runs_default: int) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-runs", type=int, default=runs_default, help="networks trained per evaluated set")
    g.add_argument(
        "--eval-epochs", type=int, default=None, help="epochs per network (default: 1000 on CUDA, 300 on CPU)"
    )
    g.add_argument(
        "--eval-arch", default=None, help="architecture to evaluate with (default: the embedding net)"
    )
    g.add_argument("--eval-seed", type=int, default=0, help="first seed of the evaluation runs")


# ---------------------------------------------------------------- resolution of options


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DmnasError(
                f"--device {name} but CUDA is not available on this machine; use --device cpu or auto"
            )
        return name
    if name != "cpu":
        raise DmnasError(f"unknown --device {name!r}; valid: auto, cpu, cuda, cuda:N")
    return name


def data_config(args: argparse.Namespace):  # noqa: ANN201
    from .data import DataConfig

    return DataConfig(
        name=args.dataset,
        val_fraction=args.val_fraction,
        split_seed=args.split_seed,
        image_size=args.image_size,
    )


def condense_config(args: argparse.Namespace, device: str):  # noqa: ANN201
    from .augment import default_strategy
    from .dm import CondenseConfig, default_iterations
    from .models import ConvNetSpec, parse_arch

    return CondenseConfig(
        ipc=args.ipc,
        iterations=args.iterations if args.iterations is not None else default_iterations(device),
        lr_img=args.lr_img,
        batch_real=args.batch_real,
        init=args.init,
        strategy=args.strategy if args.strategy is not None else default_strategy(args.dataset),
        embed=parse_arch(args.embed_arch) if args.embed_arch else ConvNetSpec(),
        embed_pool=parse_pool(args.embed_pool),
        precision=args.precision or ("tf32" if device.startswith("cuda") else "fp32"),
        seed=args.seed,
    )


def parse_pool(text: str | None):  # noqa: ANN201 - tuple[ConvNetSpec, ...]
    """``--embed-pool a,b,c`` -> specs (each name checked, repeats refused)."""
    from .models import parse_arch

    if not text:
        return ()
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise DmnasError(f"--embed-pool lists an architecture twice: {text}")
    return tuple(parse_arch(n) for n in names)


COMPILE_MIN_ITERATIONS = 50  # below this the 10-30 s compile costs more than it saves on a CPU


def run_options(args: argparse.Namespace, device: str, iterations: int):  # noqa: ANN201
    from .dm import RunOptions, default_real_chunk

    chunk = args.real_chunk if args.real_chunk is not None else default_real_chunk(device)
    compile_ = args.compile == "on" or (
        args.compile == "auto" and device == "cpu" and iterations >= COMPILE_MIN_ITERATIONS
    )
    return RunOptions(
        device=device,
        real_chunk=chunk,
        checkpoint_every=args.checkpoint_every,
        channels_last=True,
        compile=compile_,
    )


def cache_for(args: argparse.Namespace):  # noqa: ANN201
    from .cache import Cache, default_cache_dir

    return Cache(Path(args.cache_dir).resolve() if args.cache_dir else default_cache_dir())


def eval_recipe(args: argparse.Namespace, strategy: str, device: str):  # noqa: ANN201
    from .train import TrainRecipe

    epochs = (
        args.eval_epochs if args.eval_epochs is not None else (1000 if device.startswith("cuda") else 300)
    )
    return TrainRecipe(epochs=epochs, strategy=strategy)


def load_data(args: argparse.Namespace):  # noqa: ANN201
    from .data import load_dataset

    return load_dataset(data_config(args), args.data_root)


def obtain_proxy(args: argparse.Namespace, quiet: bool, data=None):  # noqa: ANN001, ANN201
    """Shared by condense, evaluate and search: data (loaded unless given), config, cached or freshly condensed entry."""
    from .progress import ProgressBar
    from .proxy import get_or_condense

    device = resolve_device(args.device)
    cfg = condense_config(args, device)
    cache = cache_for(args)
    data = data if data is not None else load_data(args)
    opts = run_options(args, device, cfg.iterations)
    if not device.startswith("cuda") and args.iterations is None:
        log.info(
            "CPU run: %d DM iterations by default (the paper's 20000 are meant for CUDA; set --iterations)",
            cfg.iterations,
        )
    bar = ProgressBar(f"condense {data.name} ipc={cfg.ipc}", enabled=not quiet)
    result = get_or_condense(data, data_config(args), cfg, opts, cache, progress=bar, force=args.force)
    return data, cfg, device, cache, result


# ---------------------------------------------------------------- commands


def evaluate_entry(
    args: argparse.Namespace, data, cfg, device: str, cache, entry, baseline: bool
) -> list[str]:  # noqa: ANN001
    """Evaluate a cached set (and optionally the random-subset baseline); store results in its manifest."""
    import torch

    from .evaluate import evaluate_images, random_subset
    from .models import parse_arch

    spec = parse_arch(args.eval_arch) if args.eval_arch else cfg.embed
    recipe = eval_recipe(args, cfg.strategy, device)
    dev = torch.device(device)
    lines, evaluations = [], dict(entry.manifest.get("evaluations", {}))
    sets = [("dm", entry.images, entry.labels)]
    if baseline:
        sets.append(("random_real", *random_subset(data, cfg.ipc, seed=cfg.seed + 1)))
    for name, x, y in sets:
        res = evaluate_images(name, x, y, data, spec, recipe, args.eval_runs, args.eval_seed, dev)
        evaluations[f"{name}/{spec.name}/e{recipe.epochs}/s{args.eval_seed}x{args.eval_runs}"] = res.to_dict()
        lines.append(res.summary())
    cache.update_manifest(entry.key, evaluations=evaluations)
    return lines


def cmd_condense(args: argparse.Namespace) -> int:
    data, cfg, device, cache, result = obtain_proxy(args, args.quiet)
    entry = result.entry
    status = (
        "cache hit"
        if result.cache_hit
        else (
            f"condensed (resumed at iteration {result.resumed_from})" if result.resumed_from else "condensed"
        )
    )
    m = entry.manifest
    print(
        f"{status}: {entry.key}  ({cfg.ipc} images/class x {data.num_classes} classes, "
        f"{cfg.iterations} iterations on {m['device']}, "
        f"{m['wall_seconds']:.1f} s, final loss {m['loss_history'][-1] if m['loss_history'] else float('nan'):.4f})"
    )
    print(f"entry: {entry.path}")
    print(f"images: {entry.grid_path}")
    if args.eval_runs > 0:
        for line in evaluate_entry(args, data, cfg, device, cache, entry, baseline=True):
            print(f"accuracy {line}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    data, cfg, device, cache, result = obtain_proxy(args, args.quiet)
    print(
        f"proxy set: {result.entry.key} ({'cached' if result.cache_hit else 'condensed now'}) at {result.entry.path}"
    )
    for line in evaluate_entry(args, data, cfg, device, cache, result.entry, baseline=not args.no_baseline):
        print(line)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    cache = cache_for(args)
    if args.cache_cmd == "list":
        rows = cache.list()
        if not rows:
            print(f"no entries in {cache.root}")
        for r in rows:
            if "error" in r:
                print(f"{r['key']}  CORRUPT: {r['error']}")
                continue
            c = r["config"]["condense"]
            print(
                f"{r['key']}  {r['dataset']['name']}  ipc={c['ipc']}  it={c['iterations']}  init={c['init']}  "
                f"seed={c['seed']}  {r['device']}  {r['wall_seconds']:.0f}s  evals={len(r.get('evaluations', {}))}"
            )
        return 0
    key = cache.resolve(args.key)
    if args.cache_cmd == "show":
        entry = cache.load(key)  # verifies the checksum
        m = dict(entry.manifest)
        hist = m.pop("loss_history", [])
        m["loss_history"] = {"n": len(hist), "first": hist[:1], "last": hist[-1:]}
        print(json.dumps(m, indent=2, sort_keys=True))
        print(f"path: {entry.path}")
        return 0
    cache.remove(key)
    print(f"removed {key}")
    return 0


def search_commands() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]]:
    """Search-stage commands live in dmnas.search (NNI is imported there, only when they run)."""
    from .search.cli import register

    return register()


# ---------------------------------------------------------------- parser and entry point


def build_parser() -> argparse.ArgumentParser:
    from .cache import default_cache_dir
    from .data import dataset_names

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="dmnas",
        description="Condense a dataset with Distribution Matching, then search ConvNets on the proxy with NNI.",
        epilog=f"datasets: {', '.join(dataset_names())}; cache: {default_cache_dir()} ($DMNAS_CACHE or --cache-dir)",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "condense",
        help="build (or fetch from the cache) a DM proxy set",
        formatter_class=fmt,
        epilog=f"datasets: {', '.join(dataset_names())}. Cache: {default_cache_dir()}",
    )
    add_common(p), add_data_args(p), add_condense_args(p), add_eval_args(p, runs_default=0)
    p.set_defaults(func=cmd_condense)

    p = sub.add_parser(
        "evaluate",
        help="accuracy of ConvNets trained on the proxy set vs a random real subset",
        formatter_class=fmt,
    )
    add_common(p), add_data_args(p), add_condense_args(p), add_eval_args(p, runs_default=3)
    p.add_argument("--no-baseline", action="store_true", help="skip the random-real-subset baseline")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("cache", help="list, show or remove cached proxy sets", formatter_class=fmt)
    add_common(p)
    p.add_argument("--cache-dir", type=Path, default=None, help="default: $DMNAS_CACHE or ./condensed_cache")
    csub = p.add_subparsers(dest="cache_cmd", required=True)
    csub.add_parser("list", help="one line per entry")
    csub.add_parser("show", help="manifest of one entry (verifies it)").add_argument(
        "key", help="key or unique prefix"
    )
    csub.add_parser("rm", help="remove an entry and its checkpoint").add_argument(
        "key", help="key or unique prefix"
    )
    p.set_defaults(func=cmd_cache)

    for name, (help_text, add) in search_commands().items():
        add(sub.add_parser(name, help=help_text, formatter_class=fmt))
    return parser


def configure_logging(args: argparse.Namespace) -> None:
    level = (
        logging.WARNING
        if getattr(args, "quiet", False)
        else logging.DEBUG
        if getattr(args, "verbose", False)
        else logging.INFO
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Third-party chatter (NNI) stays at warnings unless --verbose.
    if level != logging.DEBUG:
        logging.getLogger("nni").setLevel(logging.WARNING)
        # torch.compile's C++ toolchain probe warns about CUDA_HOME on CPU-only machines; harmless.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args)
    # `kill` gets the same clean stop as Ctrl-C: checkpoint, stop NNI and its trials.
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return int(args.func(args) or 0)
    except DmnasError as err:
        print(f"dmnas: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            "dmnas: interrupted; progress was checkpointed, rerun the same command to resume", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
