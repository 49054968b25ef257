"""The NNI trial: a thin adapter from ``nni.get_next_parameter()`` to :func:`run_trial`.

``run_trial`` is ordinary PyTorch code and is tested without NNI. The final result reports the
architecture the trial really trained (NNI 3.0 can show another one with concurrency > 1, #5726)
and is also written to the search's results folder, so dmnas never depends on NNI's records.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from ..atomic import write_json_atomic
from ..errors import DmnasError
from ..cache import Cache
from ..data import DataConfig, load_dataset
from ..dm import DEFAULT_IPC
from ..evaluate import random_subset
from ..registry import Registry
from ..models import ConvNetSpec, build_convnet, count_parameters, parse_arch
from ..train import TrainRecipe, accuracy, train_model
from .ground_truth import GroundTruthStore
from .space import DEFAULTS
from .zero_cost import ZERO_COST, rankable

log = logging.getLogger(__name__)

PEEK_IMAGES = 1000  # validation images behind each intermediate result
BUDGET_KEY = "TRIAL_BUDGET"  # what NNI's Hyperband adds to a trial's parameters


def budget_epochs(budget: object, full_epochs: int) -> int:
    """A Hyperband budget (proxy epochs, up to the full recipe's) as whole epochs."""
    try:
        epochs = round(float(budget))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DmnasError(f"trial budget {budget!r} is not a number") from None
    return max(1, min(full_epochs, epochs))


# Training proxies: (context, dataset) -> the images a candidate trains on.
TrainingSet = Callable[["TrialContext", Any], tuple[torch.Tensor, torch.Tensor]]
TRAINING_SETS: Registry[TrainingSet] = Registry("proxy")


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one search shares; written once as JSON next to the experiment."""

    proxy: str
    data: dict[str, Any]
    data_dir: str | None
    recipe: dict[str, Any]
    device: str
    seed: int
    results_dir: str
    ground_truth_dir: str
    entry_key: str | None = None
    cache_dir: str | None = None
    ipc: int = DEFAULT_IPC  # images per class of a `random` proxy set (the search sets it: its --ipc)
    reports: int = 5  # intermediate results per trial
    threads: int = 0  # CPU threads per trial (0 = torch's default); oversubscribed OpenMP crawls
    seeds: int = 1  # a proxy score is the mean over seeds seed..seed+seeds-1
    early_images: int = 0  # image passes of an `early` trial: those of one DM-proxy trial
    zero_cost_batch: int = 128  # real images a zero-cost proxy scores on
    test_split: bool = False  # also score proxy trials on the test split (full-data trials always are)
    # Remote machines (NNI's remote service): paths above are relative to the uploaded trial folder,
    # the data root is the first of these that exists where the trial runs ("" = that machine's
    # default), the dataset must have this fingerprint, and `device` may be "auto".
    data_dirs: tuple[str, ...] = ()
    fingerprint: str | None = None
    trials_per_machine: int = 0  # > 0: share the machine's cores among this many trials

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> "TrialContext":
        raw = json.loads(path.read_text())
        if "data_dirs" in raw:
            raw["data_dirs"] = tuple(raw["data_dirs"])
        return cls(**raw)


def trial_device(ctx: TrialContext) -> torch.device:
    if ctx.device == "auto":  # a remote machine: its GPU (NNI sets CUDA_VISIBLE_DEVICES) or its CPU
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(ctx.device)


def trial_data_dir(ctx: TrialContext) -> Path | None:
    """Where this machine keeps the dataset: the context's own folder, or on a remote machine the
    first configured data root that exists here."""
    if not ctx.data_dirs:
        return Path(ctx.data_dir) if ctx.data_dir else None
    for root in ctx.data_dirs:
        if not root:
            return None  # this machine's default data folder
        if Path(root).is_dir():
            return Path(root)
    raise DmnasError(
        f"machine {socket.gethostname()}: none of the data roots {', '.join(ctx.data_dirs)} exists here; "
        "set this machine's data_root in the machines file"
    )


def trial_threads(ctx: TrialContext, device: torch.device) -> int:
    """CPU threads for this trial (0: leave torch's default)."""
    if ctx.trials_per_machine > 0 and device.type == "cpu":
        return max(1, (os.cpu_count() or 1) // ctx.trials_per_machine)
    return ctx.threads


def parse_job(job: str) -> tuple[str, int]:
    """``'<arch>/seed<k>'``: one full-data training of the ground-truth experiment."""
    arch, sep, seed = job.rpartition("/seed")
    if not sep or not seed.isdigit():
        raise DmnasError(f"trial job {job!r} is not of the form <arch>/seed<k>")
    return arch, int(seed)


def job_name(arch: str, seed: int) -> str:
    return f"{arch}/seed{seed}"


def spec_from_params(params: dict[str, Any]) -> tuple[ConvNetSpec, int | None]:
    """NNI parameters -> (spec, seed or None for the context's): the five fields (defaults fill
    gaps), ``{'arch': name}`` or ``{'job': '<arch>/seed<k>'}``. No parameters at all means NNI
    gave this trial nothing to do: training the default network then would be a silent lie."""
    if not params:
        raise DmnasError("the trial received no parameters (was it started outside an NNI experiment?)")
    if "job" in params:
        arch, seed = parse_job(str(params["job"]))
        return parse_arch(arch), seed
    if "arch" in params:
        return parse_arch(str(params["arch"])), None
    return ConvNetSpec.from_dict({**DEFAULTS, **params}), None


@TRAINING_SETS.register("full")
def _full(ctx: TrialContext, data) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    return data.train_x, data.train_y


@TRAINING_SETS.register("dm")
def _dm(ctx: TrialContext, data) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    entry = Cache(Path(ctx.cache_dir or "")).load(str(ctx.entry_key))  # checksum-verified
    return entry.images, entry.labels


@TRAINING_SETS.register("random")
def _random(ctx: TrialContext, data) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    return random_subset(data, ctx.ipc, seed=ctx.seed + 1)


@TRAINING_SETS.register("early")
def _early(ctx: TrialContext, data) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """The first ``early_images`` of a seeded shuffle of the full split: trained for one epoch,
    this is full-data training stopped after as many image passes as one DM-proxy trial makes.
    (The recipe's schedule runs over that shortened run, so it ends annealed, not cut mid-way.)"""
    n = max(1, min(ctx.early_images, len(data.train_x)))
    pick = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(ctx.seed + 2))[:n]
    return data.train_x[pick], data.train_y[pick]


PROXIES = (*TRAINING_SETS.names(), *ZERO_COST.names())


def zero_cost_batch(data, n: int, seed: int) -> torch.Tensor:  # noqa: ANN001
    pick = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))[:n]
    return data.train_x[pick]


def score_zero_cost(
    name: str,
    spec: ConvNetSpec,
    data,
    seed: int,
    batch_size: int,  # noqa: ANN001
    device: torch.device,
) -> dict[str, Any]:
    """A zero-cost score of a freshly initialised ``spec`` (seeded init and batch); no training."""
    t0 = time.perf_counter()
    model = build_convnet(
        spec, data.image_shape, data.num_classes, generator=torch.Generator().manual_seed(seed)
    ).to(device)
    score = ZERO_COST.get(name)(model, zero_cost_batch(data, batch_size, seed).to(device))
    return {
        "score": rankable(score),
        "raw_score": repr(score),
        "train_seconds": round(time.perf_counter() - t0, 4),
        "params": count_parameters(model),
        "arch": spec.name,
        **spec.to_dict(),
        "seed": seed,
        "images": batch_size,
        "fingerprint": data.fingerprint,
        "device": str(device),
    }


def train_and_score(
    spec: ConvNetSpec,
    data,  # noqa: ANN001 - a dmnas.data.Dataset
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: TrainRecipe,
    seed: int,
    device: torch.device,
    report: Callable[[float], None] = lambda acc: None,
    reports: int = 5,
    test: bool = True,
) -> dict[str, Any]:
    """Train a fresh ``spec`` on ``(x, y)`` with ``recipe``; accuracy on the validation split (and
    the test split when ``test``). Initialisation and batch order depend only on ``seed``. Shared
    by trials and the ground-truth table builder, so a shipped record and a ``--proxy full`` trial
    are one recipe."""
    gen = torch.Generator().manual_seed(seed)
    model = build_convnet(spec, data.image_shape, data.num_classes, generator=gen)
    every = max(1, recipe.epochs // max(1, reports))
    # Intermediate results only draw NNI's curves: a fixed seeded subset of the validation split
    # keeps them cheap (the final result always uses the whole split).
    peek = torch.randperm(len(data.val_x), generator=torch.Generator().manual_seed(0))[:PEEK_IMAGES]

    peek_seconds = 0.0

    def on_epoch(epoch: int, m: torch.nn.Module) -> None:
        nonlocal peek_seconds
        if epoch % every == 0 and epoch < recipe.epochs:
            t = time.perf_counter()
            report(accuracy(m, data.val_x[peek], data.val_y[peek], device))
            peek_seconds += time.perf_counter() - t

    result = train_model(model, x, y, recipe, gen, device, on_epoch=on_epoch)
    t_eval = time.perf_counter()
    val_acc = accuracy(model, data.val_x, data.val_y, device)
    test_acc = accuracy(model, data.test_x, data.test_y, device) if test else None
    return {
        "default": val_acc,  # NNI ranks on validation accuracy, never on the test split
        "val_acc": val_acc,
        "test_acc": test_acc,
        "train_seconds": round(result.seconds, 3),  # includes the intermediate evaluations
        "peek_seconds": round(peek_seconds, 3),
        "final_eval_seconds": round(time.perf_counter() - t_eval, 3),
        "params": count_parameters(model),
        "arch": spec.name,
        **spec.to_dict(),
        "seed": seed,
        "images": len(x),
        "fingerprint": data.fingerprint,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def run_trial(
    params: dict[str, Any],
    ctx: TrialContext,
    report: Callable[[float], None] = lambda acc: None,
    trial_id: str = "standalone",
    extra_timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Score the architecture ``params`` with the context's proxy, averaged over its seeds;
    return the final result dict (``score`` is what NNI and the report rank by)."""
    params = dict(params)
    budget = params.pop(BUDGET_KEY, None)
    spec, job_seed = spec_from_params(params)
    device = trial_device(ctx)
    threads = trial_threads(ctx, device)
    if threads > 0:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    data = load_dataset(DataConfig(**ctx.data), trial_data_dir(ctx))
    if ctx.fingerprint and data.fingerprint != ctx.fingerprint:
        raise DmnasError(
            f"machine {socket.gethostname()}: its {data.name} differs from the search's "
            f"(fingerprint {data.fingerprint}, expected {ctx.fingerprint}); ranks would not be comparable"
        )
    timings = {"data_load": time.perf_counter() - t0}
    first = ctx.seed if job_seed is None else job_seed
    seeds = [first] if job_seed is not None else [ctx.seed + i for i in range(max(1, ctx.seeds))]
    if ctx.proxy in ZERO_COST:
        runs = [score_zero_cost(ctx.proxy, spec, data, s, ctx.zero_cost_batch, device) for s in seeds]
        accs = {}
    else:
        t0 = time.perf_counter()
        x, y = TRAINING_SETS.get(ctx.proxy)(ctx, data)
        timings["training_set"] = time.perf_counter() - t0
        recipe = TrainRecipe(**ctx.recipe)
        if budget is not None:  # a multi-fidelity tuner's budget is proxy epochs (see experiment.TUNERS)
            recipe = replace(recipe, epochs=budget_epochs(budget, recipe.epochs))
        # Intermediate results only from the first seed: NNI plots one curve per trial.
        runs = [
            train_and_score(
                spec,
                data,
                x,
                y,
                recipe,
                s,
                device,
                report if i == 0 else (lambda acc: None),
                ctx.reports,
                test=ctx.proxy == "full" or ctx.test_split,
            )
            for i, s in enumerate(seeds)
        ]
        for r in runs:
            r["score"] = r["val_acc"]
        timings["peeks"] = sum(r["peek_seconds"] for r in runs)
        timings["training"] = sum(r["train_seconds"] for r in runs) - timings["peeks"]
        timings["final_eval"] = sum(r["final_eval_seconds"] for r in runs)
        accs = {
            "val_acc": sum(r["val_acc"] for r in runs) / len(runs),
            "test_acc": None if runs[0]["test_acc"] is None else sum(r["test_acc"] for r in runs) / len(runs),
        }
    score = sum(r["score"] for r in runs) / len(runs)
    record: dict[str, Any] = {
        **runs[0],
        **accs,
        "default": score,
        "score": score,  # NNI ranks on `default`, never on the test split
        "seed_scores": [r["score"] for r in runs],
        "seeds": seeds,
        "train_seconds": round(sum(r["train_seconds"] for r in runs), 4),
        "proxy": ctx.proxy,
        "trial_id": trial_id,
        "budget_epochs": None if budget is None or ctx.proxy in ZERO_COST else recipe.epochs,
        # Where the trial's seconds went (the NNI adapter adds start-up and parameter fetch).
        "timings": {k: round(v, 4) for k, v in {**timings, **(extra_timings or {})}.items()},
    }
    write_json_atomic(Path(ctx.results_dir) / f"{spec.name}__{trial_id}.json", record)
    if ctx.proxy == "full":
        store = GroundTruthStore(Path(ctx.ground_truth_dir))
        for r in runs:
            store.put(
                data.fingerprint,
                spec.name,
                TrainRecipe(**ctx.recipe),
                r["seed"],
                {**r, "proxy": "full", "trial_id": trial_id},
            )
    return record


def seconds_since_process_start() -> float | None:
    """Wall seconds since this process was created (Linux /proc): interpreter start and imports."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def main() -> None:
    startup = seconds_since_process_start()
    t0 = time.perf_counter()
    import nni

    ap = argparse.ArgumentParser(description="dmnas NNI trial (launched by `dmnas search`)")
    ap.add_argument("--context", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = TrialContext.load(args.context)
    nni_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    params = nni.get_next_parameter() or {}
    params = {k: v for k, v in params.items() if not k.startswith("_")}
    extra = {"startup_and_imports": (startup or 0.0) + nni_import, "nni_parameters": time.perf_counter() - t1}
    trial_id = os.environ.get("NNI_TRIAL_JOB_ID", "standalone")
    record = run_trial(
        params, ctx, report=nni.report_intermediate_result, trial_id=trial_id, extra_timings=extra
    )
    log.info(
        "trial %s scored %s: %s %.4f in %.1fs",
        trial_id,
        record["arch"],
        ctx.proxy,
        record["score"],
        time.perf_counter() - t0,
    )
    nni.report_final_result(record)  # a synchronous HTTP PUT to NNI's trial channel: delivered now
    # The result is delivered and the record written atomically; what is left is Python's own
    # shutdown, which takes ~2 s once torch is imported (measured on the 2-core CPU: 1.9-2.2 s vs
    # 0.15 s without it) and would be charged to every trial. Flush and leave.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
