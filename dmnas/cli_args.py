"""The command line's options. Each option's ``dest`` is the keyword of the Python API function
the command calls (``--max-trials`` -> ``max_trials``), and every device-dependent default is read
from :mod:`dmnas.defaults`, so ``--help`` says what the API does."""

from __future__ import annotations

import argparse
from pathlib import Path

from dmnas import catalog, defaults


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default once: not for options whose default is None (their help says what happens)
    nor where the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            action.default is None
            or action.default is argparse.SUPPRESS
            or "default" in text
            or action.default is False
        ):
            return text
        return super()._get_help_string(action) or text


def add_common(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final lines")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_cache_dir(p: argparse._ActionsContainer) -> None:
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="proxy-set cache (default: $DMNAS_CACHE or ./condensed_cache)",
    )


PROXY_SET_KEYS = "proxy_set_keys"  # the namespace attribute naming the options that pick the proxy set


def mark_proxy_set(p: argparse.ArgumentParser, group: argparse._ArgumentGroup) -> None:
    """Record ``group``'s options as the proxy set's (``dmnas condense``'s keywords, which
    :func:`dmnas.condensation.job.proxy_job` takes), so the CLI hands exactly those on."""
    keys = (*(p.get_default(PROXY_SET_KEYS) or ()), *(a.dest for a in group._group_actions))
    p.set_defaults(**{PROXY_SET_KEYS: keys})


def add_data_args(p: argparse.ArgumentParser) -> None:
    from dmnas.catalog import dataset_names

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="fashion_mnist", help=f"one of: {', '.join(dataset_names())}")
    g.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder with torchvision-layout data and the prepared tensors (default: $DMNAS_DATA or ~/.local/share/dmnas/data)",
    )
    g.add_argument(
        "--image-size", type=int, default=None, help="side of resized images (imagefolder only; default 32)"
    )
    g.add_argument(
        "--val-fraction", type=float, default=0.1, help="share of each training class held out for ranking"
    )
    g.add_argument("--split-seed", type=int, default=0, help="seed of the validation split")
    mark_proxy_set(p, g)


def add_condense_args(p: argparse.ArgumentParser) -> None:
    from dmnas.catalog import DEFAULT_IPC, DEFAULT_STRATEGY

    g = p.add_argument_group("distribution matching")
    g.add_argument("--ipc", type=int, default=DEFAULT_IPC, help="synthetic images per class")
    g.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"DM iterations (default: {defaults.CUDA_ITERATIONS} on CUDA, {defaults.CPU_ITERATIONS} on CPU)",
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
        "--match",
        default="mean",
        choices=catalog.MATCHES,
        help="what of each class's embeddings is matched: the mean (DM), mean and per-dimension variance, "
        "or a Gaussian-kernel MMD (M3D); neither ranked the top better than the mean in "
        "benchmarks/results/condense_variants.md",
    )
    g.add_argument(
        "--embed-pool",
        default=None,
        metavar="ARCHS",
        help="comma-separated embedding architectures, one drawn per iteration instead of --embed-arch "
        "(IDM-style; measured in benchmarks/results/proxy_ablation.md)",
    )
    g.add_argument(
        "--embed-space",
        default=None,
        metavar="SPACE",
        help="draw each iteration's embedding network from a search space (a name in search_spaces/ or a "
        "file; with `dmnas search`, 'search' = the space being searched): the set matches real features "
        "under the kinds of network it will rank (no better at the top than one network: "
        "benchmarks/results/condense_variants.md)",
    )
    g.add_argument(
        "--embed-queue",
        type=int,
        default=0,
        metavar="N",
        help="IDM-style trained embedding networks: a queue of N networks of --embed-arch, one drawn per "
        "iteration and then trained one SGD step on real images (0: a fresh random network per iteration, DM)",
    )
    g.add_argument(
        "--embed-retire",
        type=int,
        default=50,
        metavar="STEPS",
        help="with --embed-queue: training steps after which a network is replaced by a fresh one",
    )
    g.add_argument(
        "--precision",
        default=None,
        choices=["fp32", "tf32", "bf16", "bf16-real"],
        help=f"bf16-real: the real images' embedding in bfloat16, the rest fp32 (default: "
        f"{defaults.PRECISION['cuda']} on CUDA; on a CPU {defaults.CPU_NATIVE_BF16_PRECISION} where it has native "
        f"bfloat16, else {defaults.PRECISION['cpu']})",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the synthetic set")
    mark_proxy_set(p, g)
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help=f"one of {', '.join(defaults.DEVICES)}")
    add_cache_dir(r)
    r.add_argument(
        "--checkpoint-every", type=int, default=50, help="iterations between resumable checkpoints"
    )
    r.add_argument(
        "--real-chunk",
        type=int,
        default=None,
        help=f"real images per forward; 0 = all classes at once (default: {defaults.CPU_REAL_CHUNK} on CPU, "
        f"{defaults.AMX_BF16_REAL_CHUNK} with the real branch in bf16 on an AMX CPU, 0 on CUDA)",
    )
    r.add_argument("--force", action="store_true", help="recompute even if the entry is cached (or corrupt)")
    r.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "on", "off"],
        help=f"torch.compile the embedding net; auto = on for CPU runs of >= {defaults.COMPILE_MIN_ITERATIONS} "
        "iterations (compiling takes 10-30 s once per run on a 2-core CPU)",
    )
    mark_proxy_set(p, r)


def add_eval_args(p: argparse.ArgumentParser, runs_default: int) -> None:
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-runs", type=int, default=runs_default, help="networks trained per evaluated set")
    g.add_argument(
        "--eval-epochs",
        type=int,
        default=None,
        help=f"epochs per network (default: {defaults.EVAL_EPOCHS['cuda']} on CUDA, {defaults.EVAL_EPOCHS['cpu']} on CPU)",
    )
    g.add_argument(
        "--eval-arch", default=None, help="architecture to evaluate with (default: the embedding net)"
    )
    g.add_argument("--eval-seed", type=int, default=0, help="first seed of the evaluation runs")


def add_workdir(p: argparse._ActionsContainer) -> None:
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="project folder for NNI experiments, search results, ground truth and reports "
        "(default: $DMNAS_WORKDIR or ./experiments)",
    )


def add_table(p: argparse._ActionsContainer) -> None:
    from dmnas.catalog import DEFAULT_TABLE, table_names

    p.add_argument(
        "--table",
        default=None,
        nargs="+",
        metavar="TABLE",
        help=f"ground-truth table(s) to read full-data results from: shipped ones ({', '.join(table_names())}) or "
        f"folders; several of one recipe are pooled; 'none' for none (default: {DEFAULT_TABLE})",
    )


def add_ui_host(p: argparse._ActionsContainer) -> None:
    p.add_argument(
        "--ui-host",
        default="127.0.0.1",
        choices=["127.0.0.1", "0.0.0.0"],
        help="where the NNI web UI and its REST API listen: this machine only, or every interface (anyone who "
        "reaches the machine can then read the experiment and stop or change it)",
    )


def add_search_args(p: argparse.ArgumentParser) -> None:
    from dmnas.nas.config import FULL_RECIPE, SEARCH
    from dmnas.catalog import available_spaces
    from dmnas.proxykinds import proxy_names
    from dmnas.nas.tuners import TUNERS

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
        choices=proxy_names(),
        help="dm: the DM set; random: a same-size random real subset; early: full-data training stopped at the "
        "image passes of one DM-proxy trial; synflow/naswot: zero-cost scores at initialisation; params: the "
        "parameter count (the baseline to beat); full: the whole split",
    )
    s.add_argument("--tuner", default="grid", help=f"one of {', '.join(TUNERS)}")
    s.add_argument(
        "--max-trials",
        type=int,
        default=SEARCH.max_trials,
        help="default: the whole space (grid) / one iteration (hyperband, bohb) / 20 (other tuners)",
    )
    s.add_argument(
        "--max-duration",
        default=SEARCH.max_duration,
        help="NNI duration limit, e.g. 30m or 2h (default: none)",
    )
    s.add_argument("--concurrency", type=int, default=SEARCH.concurrency, help="trials at once")
    s.add_argument("--port", type=int, default=SEARCH.port, help="web UI port (the next free one if taken)")
    add_ui_host(s)
    s.add_argument(
        "--trials-per-gpu",
        type=int,
        default=SEARCH.trials_per_gpu,
        help="trials sharing one GPU, NNI's max_trial_number_per_gpu (ignored on CPU)",
    )
    s.add_argument(
        "--trial-mode",
        choices=("worker", "process"),
        default=SEARCH.trial_mode,
        help="worker: one warm process per slot scores trial after trial (NNI still sees one trial per "
        "architecture); process: every trial imports torch and loads the data itself",
    )
    s.add_argument(
        "--keep-ui",
        action="store_true",
        default=SEARCH.keep_ui,
        help="keep the web UI up after the last trial until Ctrl-C",
    )
    s.add_argument("--epochs", type=int, default=SEARCH.epochs, help="training epochs on the proxy set")
    s.add_argument(
        "--full-epochs",
        type=int,
        default=SEARCH.full_epochs,
        help=f"epochs of full-data (ground-truth) training "
        f"(default {defaults.FULL_EPOCHS['cpu']}: {FULL_RECIPE.describe()})",
    )
    s.add_argument(
        "--proxy-seeds",
        type=int,
        default=SEARCH.proxy_seeds,
        metavar="K",
        help="score every candidate at K seeds and rank by the mean",
    )
    s.add_argument(
        "--proxy-draws",
        type=int,
        default=SEARCH.proxy_draws,
        metavar="D",
        help="score every candidate at D independent draws of the proxy (a DM set condensed at each of D seeds, a "
        "random subset, shuffle or init per draw, each at --proxy-seeds seeds); rank by the mean, and the report "
        "gives every measure's mean and spread over the draws (one draw is not a verdict)",
    )
    s.add_argument(
        "--full-seeds",
        type=int,
        default=SEARCH.full_seeds,
        metavar="K",
        help="seeds of full-data training (K >= 2: the noise ceiling)",
    )
    s.add_argument(
        "--recipe",
        type=Path,
        default=SEARCH.recipe,
        help="YAML with 'proxy:' and/or 'full:' training recipes (TrainRecipe fields)",
    )
    s.add_argument(
        "--ground-truth",
        type=int,
        default=SEARCH.ground_truth,
        metavar="N",
        help="afterwards train an unbiased sample of N architectures on full data (equal inclusion probability, "
        "spread over the proxy ranking; 0: only what the table and earlier runs know) and the proxy's top "
        "--confirm K; full-data results already known are reused (default: no ground-truth phase)",
    )
    s.add_argument(
        "--confirm",
        type=int,
        default=SEARCH.confirm,
        metavar="K",
        help="with --ground-truth: the proxy's top K trained on full data to confirm the pick",
    )
    add_table(s)
    s.add_argument(
        "--test-split",
        action="store_true",
        default=SEARCH.test_split,
        help="also score proxy trials on the test split (full-data trials always are)",
    )
    s.add_argument(
        "--trial-seed",
        type=int,
        default=SEARCH.trial_seed,
        help="seed of every trial's initialisation and batches, and of the random, TPE, Hyperband and BOHB tuners",
    )
    s.add_argument(
        "--resume",
        default=SEARCH.resume,
        metavar="ID",
        help="continue the interrupted search ID (grid tuner): architectures it already scored are kept, a new "
        "NNI experiment scores the rest; its own space, proxy, recipes and data are reused",
    )
    s.add_argument(
        "--training-service",
        choices=("local", "remote"),
        default=SEARCH.training_service,
        help="where trials run: this machine, or the --machines over SSH (NNI's remote training service)",
    )
    s.add_argument(
        "--machines",
        type=Path,
        default=SEARCH.machines,
        metavar="FILE",
        help="with --training-service remote: YAML list of machines (host, port, user, ssh_key_file, python, "
        "gpus, data_root; see docs/scale.md)",
    )
    add_workdir(s)
    add_data_args(p)
    add_condense_args(p)


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Rank agreement of finished searches with the full-data ground truth, side by side and paired."
    )
    add_common(p)
    p.add_argument("ids", nargs="+", help="search ids (see experiments/searches/)")
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


def add_view_args(p: argparse.ArgumentParser) -> None:
    p.description = "Reopen a finished experiment's NNI web UI (read-only) until Ctrl-C."
    add_common(p)
    p.add_argument(
        "id", help="NNI experiment id printed by `dmnas search` (the search id, or <id>_gt / <id>_r1)"
    )
    p.add_argument("--port", type=int, default=8080, help="web UI port (the next free one if taken)")
    add_ui_host(p)


def add_cache_args(p: argparse.ArgumentParser) -> None:
    add_common(p)
    add_cache_dir(p)
    csub = p.add_subparsers(dest="cache_cmd", required=True)
    for name, text in (
        ("list", "one line per entry, each verified"),
        ("show", "manifest of one entry (verifies it)"),
        ("rm", "remove an entry and its checkpoint (entries only)"),
        ("verify", "check every entry"),
    ):
        sp = csub.add_parser(name, help=text, formatter_class=HelpFormatter)
        # `dmnas cache list --cache-dir X` as well as `dmnas cache --cache-dir X list` (SUPPRESS: an
        # absent one here leaves the one given before the subcommand)
        sp.add_argument("--cache-dir", type=Path, default=argparse.SUPPRESS, help="as before the subcommand")
        if name in ("show", "rm"):
            sp.add_argument("key", help="key or unique prefix")
