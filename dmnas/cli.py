"""Command line: ``dmnas condense | evaluate | cache | search | report | view``.

This module only parses: options become the typed configs (``DataConfig``, ``CondenseConfig``,
``RunOptions``, ``TrainRecipe``, :class:`dmnas.pipeline.ProxyJob`,
:class:`dmnas.search.pipeline.SearchConfig`) once, here, and the pipelines take it from there.
It alone configures logging; library code raises :class:`DmnasError`, reported here as one line
with a non-zero exit. Heavy modules (torch, NNI) are imported only inside the command that runs.
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
    from .dm import CPU_ITERATIONS, CUDA_ITERATIONS, DEFAULT_IPC

    g = p.add_argument_group("distribution matching")
    g.add_argument("--ipc", type=int, default=DEFAULT_IPC, help="synthetic images per class")
    g.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"DM iterations (default: {CUDA_ITERATIONS} on CUDA, {CPU_ITERATIONS} on CPU)",
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


def proxy_job(args: argparse.Namespace):  # noqa: ANN201 - dmnas.pipeline.ProxyJob
    """The proxy set these options ask for: data, DM config, run options and cache, checked."""
    from .cache import default_cache_dir
    from .pipeline import ProxyJob, resolve_device

    data = data_config(args)  # checked first: an unknown dataset is the likeliest mistake
    device = resolve_device(args.device)
    cfg = condense_config(args, device)
    condenses = getattr(args, "proxy", "dm") == "dm"  # a search on another proxy condenses nothing
    if condenses and not device.startswith("cuda") and args.iterations is None:
        log.info(
            "CPU run: %d DM iterations by default (the paper's 20000 are meant for CUDA; set --iterations)",
            cfg.iterations,
        )
    return ProxyJob(
        data=data,
        data_root=args.data_root,
        condense=cfg,
        run=run_options(args, device, cfg.iterations),
        cache_dir=Path(args.cache_dir).resolve() if args.cache_dir else default_cache_dir(),
        force=args.force,
        quiet=args.quiet,
    )


def eval_config(args: argparse.Namespace, job):  # noqa: ANN001, ANN201 - dmnas.pipeline.EvalConfig
    from .models import parse_arch
    from .pipeline import EvalConfig
    from .train import TrainRecipe

    cuda = job.device.startswith("cuda")
    epochs = args.eval_epochs if args.eval_epochs is not None else (1000 if cuda else 300)
    return EvalConfig(
        runs=args.eval_runs,
        recipe=TrainRecipe(epochs=epochs, strategy=job.condense.strategy),
        arch=parse_arch(args.eval_arch) if args.eval_arch else None,
        seed=args.eval_seed,
    )


# ---------------------------------------------------------------- commands


def cmd_condense(args: argparse.Namespace) -> int:
    from .pipeline import evaluate_entry, obtain_proxy

    job = proxy_job(args)
    data, result = obtain_proxy(job)
    cfg, entry = job.condense, result.entry
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
        for line in evaluate_entry(job, data, entry, eval_config(args, job), baseline=True):
            print(f"accuracy {line}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .pipeline import evaluate_entry, obtain_proxy

    job = proxy_job(args)
    data, result = obtain_proxy(job)
    print(
        f"proxy set: {result.entry.key} ({'cached' if result.cache_hit else 'condensed now'}) at {result.entry.path}"
    )
    for line in evaluate_entry(
        job, data, result.entry, eval_config(args, job), baseline=not args.no_baseline
    ):
        print(line)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from .cache import Cache, default_cache_dir

    cache = Cache(Path(args.cache_dir).resolve() if args.cache_dir else default_cache_dir())
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


# ---------------------------------------------------------------- search stage (NNI only once one runs)


def add_workdir(p: argparse._ActionsContainer) -> None:
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="project folder for NNI experiments, search results, ground truth and reports "
        "(default: $DMNAS_WORKDIR or ./experiments)",
    )


def add_table(p: argparse._ActionsContainer) -> None:
    p.add_argument(
        "--table",
        default=None,
        metavar="PATH",
        help="ground-truth table to read full-data results from (default: the shipped benchmarks/ground_truth "
        "when present; 'none' for none)",
    )


def add_search_args(p: argparse.ArgumentParser) -> None:
    from .search.experiment import TUNERS
    from .search.pipeline import CONFIRM, FULL_EPOCHS, FULL_RECIPE, PROXY_EPOCHS
    from .search.space import available_spaces
    from .search.trial import PROXIES

    p.description = (
        "Train every candidate of a space briefly on a proxy inside an NNI experiment; "
        "report rank agreement with full data."
    )
    add_common(p)
    s = p.add_argument_group("search")
    s.add_argument(
        "--space",
        default="convnet_small",
        help=f"name in search_spaces/ ({', '.join(available_spaces())}) or a YAML/JSON file",
    )
    s.add_argument(
        "--proxy",
        default="dm",
        choices=PROXIES,
        help="dm: the DM set; random: a same-size random real subset; early: full-data training stopped at the "
        "image passes of one DM-proxy trial; synflow/naswot: zero-cost scores at initialisation; full: the whole split",
    )
    s.add_argument("--tuner", default="grid", help=f"one of {', '.join(TUNERS)}")
    s.add_argument(
        "--max-trials",
        type=int,
        default=None,
        help="default: the whole space (grid) / one iteration (hyperband, bohb) / 20 (other tuners)",
    )
    s.add_argument("--max-duration", default=None, help="NNI duration limit, e.g. 30m or 2h")
    s.add_argument("--concurrency", type=int, default=1, help="trials at once")
    s.add_argument("--port", type=int, default=8080, help="web UI port (the next free one if taken)")
    s.add_argument(
        "--keep-ui", action="store_true", help="keep the web UI up after the last trial until Ctrl-C"
    )
    s.add_argument("--epochs", type=int, default=PROXY_EPOCHS, help="training epochs on the proxy set")
    s.add_argument(
        "--full-epochs",
        type=int,
        default=None,
        help=f"epochs of full-data (ground-truth) training (default {FULL_EPOCHS['cpu']}: {FULL_RECIPE.describe()})",
    )
    s.add_argument(
        "--proxy-seeds",
        type=int,
        default=1,
        metavar="K",
        help="score every candidate at K seeds and rank by the mean",
    )
    s.add_argument(
        "--full-seeds",
        type=int,
        default=2,
        metavar="K",
        help="seeds of every full-data training (K >= 2 gives the noise ceiling)",
    )
    s.add_argument(
        "--recipe",
        type=Path,
        default=None,
        help="YAML with 'proxy:' and/or 'full:' training recipes (TrainRecipe fields)",
    )
    s.add_argument(
        "--ground-truth",
        type=int,
        default=None,
        metavar="N",
        help="afterwards train an unbiased sample of N architectures on full data (equal inclusion probability, "
        "spread over the proxy ranking; 0: only what the table and earlier runs know) and the proxy's top "
        "--confirm K; full-data results already known are reused",
    )
    s.add_argument(
        "--confirm",
        type=int,
        default=CONFIRM,
        metavar="K",
        help=f"with --ground-truth: the proxy's top K trained on full data to confirm the pick (default {CONFIRM})",
    )
    add_table(s)
    s.add_argument(
        "--test-split",
        action="store_true",
        help="also score proxy trials on the test split (full-data trials always are)",
    )
    s.add_argument(
        "--trial-seed",
        type=int,
        default=0,
        help="seed of every trial's initialisation and batches, and of the random, TPE, Hyperband and BOHB tuners",
    )
    s.add_argument(
        "--resume",
        default=None,
        metavar="ID",
        help="continue the interrupted search ID (grid tuner): architectures it already scored are kept, a new "
        "NNI experiment scores the rest; its own space, proxy, recipes and data are reused",
    )
    s.add_argument(
        "--training-service",
        choices=("local", "remote"),
        default="local",
        help="where trials run: this machine, or the --machines over SSH (NNI's remote training service)",
    )
    s.add_argument(
        "--machines",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --training-service remote: YAML list of machines (host, port, user, ssh_key_file, python, "
        "gpus, data_root; see the README)",
    )
    add_workdir(s)
    add_data_args(p)
    add_condense_args(p)
    p.set_defaults(func=cmd_search)


def workdir_of(args: argparse.Namespace) -> Path:
    from .search.pipeline import default_workdir

    return (args.workdir or default_workdir()).resolve()


def search_config(args: argparse.Namespace, job):  # noqa: ANN001, ANN201 - SearchConfig
    """``job`` is None when resuming: the search's saved recipes are used, these are placeholders."""
    from .search.pipeline import SearchConfig, recipes

    proxy_recipe, full_recipe = recipes(
        args.epochs,
        args.full_epochs,
        args.recipe,
        job.condense.strategy if job else "none",
        job.device if job else "cpu",
    )
    return SearchConfig(
        space=args.space,
        proxy=args.proxy,
        proxy_recipe=proxy_recipe,
        full_recipe=full_recipe,
        workdir=workdir_of(args),
        tuner=args.tuner,
        max_trials=args.max_trials,
        max_duration=args.max_duration,
        concurrency=args.concurrency,
        port=args.port,
        keep_ui=args.keep_ui,
        proxy_seeds=args.proxy_seeds,
        full_seeds=args.full_seeds,
        ground_truth=args.ground_truth,
        confirm=args.confirm,
        table=args.table,
        test_split=args.test_split,
        trial_seed=args.trial_seed,
        quiet=args.quiet,
        resume=args.resume,
        training_service=args.training_service,
        machines=args.machines,
    )


def cmd_search(args: argparse.Namespace) -> int:
    from .search.pipeline import run_search
    from .search.space import load_space

    if not args.resume:
        load_space(args.space)  # a mistyped space fails before anything about the proxy is said
    job = None if args.resume else proxy_job(args)  # a resumed search reuses its own proxy set
    run_search(search_config(args, job), job)
    return 0


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.description = "Rank agreement of finished searches with the full-data ground truth, side by side."
    add_common(p)
    p.add_argument("ids", nargs="+", help="search/experiment ids (see experiments/searches/)")
    p.add_argument(
        "--full-epochs",
        type=int,
        default=None,
        help="ground-truth recipe epochs (default: the first search's)",
    )
    p.add_argument(
        "--confirm",
        type=int,
        default=None,
        metavar="K",
        help="confirm each proxy's top K (default: the first search's)",
    )
    add_table(p)
    add_workdir(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from .search.pipeline import make_report

    if args.confirm is not None and args.confirm < 0:
        raise DmnasError(f"--confirm must be >= 0, got {args.confirm}")
    make_report(args.ids, workdir_of(args), args.quiet, args.full_epochs, args.table, args.confirm)
    return 0


def add_view_args(p: argparse.ArgumentParser) -> None:
    p.description = "Reopen a finished experiment's NNI web UI (read-only) until Ctrl-C."
    add_common(p)
    p.add_argument("id", help="experiment id printed by `dmnas search`")
    p.add_argument("--port", type=int, default=8080)
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    from .search.pipeline import view

    view(args.id, args.port)
    return 0


SEARCH_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "search": ("NNI search of a ConvNet space on a proxy, with a correlation report", add_search_args),
    "report": ("rank agreement of finished searches with full-data training", add_report_args),
    "view": ("reopen a finished experiment's NNI web UI", add_view_args),
}


# ---------------------------------------------------------------- parser and entry point


def _add_condense(p: argparse.ArgumentParser) -> None:
    from .cache import default_cache_dir
    from .data import dataset_names

    p.epilog = f"datasets: {', '.join(dataset_names())}. Cache: {default_cache_dir()}"
    add_common(p), add_data_args(p), add_condense_args(p), add_eval_args(p, runs_default=0)
    p.set_defaults(func=cmd_condense)


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    add_common(p), add_data_args(p), add_condense_args(p), add_eval_args(p, runs_default=3)
    p.add_argument("--no-baseline", action="store_true", help="skip the random-real-subset baseline")
    p.set_defaults(func=cmd_evaluate)


def _add_cache(p: argparse.ArgumentParser) -> None:
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


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "condense": ("build (or fetch from the cache) a DM proxy set", _add_condense),
    "evaluate": ("accuracy of ConvNets trained on the proxy set vs a random real subset", _add_evaluate),
    "cache": ("list, show or remove cached proxy sets", _add_cache),
    **SEARCH_COMMANDS,
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the invoked command's options are built. Building them imports what their
    help needs (dataset names, proxies, tuners: torch), so ``dmnas --help`` and a mistyped command
    stay instant while ``dmnas search --help`` still lists every choice."""
    args = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args if not a.startswith("-")), None)
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(
        prog="dmnas",
        description="Condense a dataset with Distribution Matching, then search ConvNets on the proxy with NNI.",
        epilog="`dmnas COMMAND --help` lists a command's options (datasets, spaces, proxies, tuners).",
        formatter_class=fmt,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, formatter_class=fmt)
        if name == chosen:
            add(p)
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
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    configure_logging(args)
    # `kill` gets the same clean stop as Ctrl-C: checkpoint, stop NNI and its trials.
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return int(args.func(args) or 0)
    except DmnasError as err:
        # Several independent problems (e.g. one per machine) are one line each.
        for line in str(err).splitlines() or [""]:
            print(f"dmnas: error: {line}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            "dmnas: interrupted; progress was checkpointed, rerun the same command to resume", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
