"""How a candidate is scored: the training proxies (full data, DM set, random subset, early stopping)
and zero-cost scores, and :func:`run_trial`, which scores one architecture as a trial does.

Ordinary PyTorch code, tested without NNI; :mod:`dmnas.nas.trials.adapter` adapts it to NNI.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from dmnas.util.atomic import write_json_atomic
from dmnas.condensation.cache import Cache
from dmnas.condensation.evaluate import random_subset
from dmnas.data import DataConfig, Dataset, load_dataset
from dmnas.errors import DmnasError
from dmnas.groundtruth.store import GroundTruthStore
from dmnas.models import ConvNetSpec, build_convnet, count_parameters
from dmnas.util.registry import Registry
from dmnas.nas.trials.context import TrialContext, draw_context, trial_data_dir, trial_device, trial_threads
from dmnas.nas.trials.params import BUDGET_KEY, budget_epochs, spec_from_params
from dmnas.nas.trials.zero_cost import ZERO_COST, rankable
from dmnas.proxykinds import proxy_kind
from dmnas.train import TrainRecipe, accuracy, train_model

PEEK_IMAGES = 1000  # validation images behind each intermediate result

# Training proxies: (context, dataset) -> the images a candidate trains on.
TrainingSet = Callable[[TrialContext, Dataset], tuple[torch.Tensor, torch.Tensor]]
TRAINING_SETS: Registry[TrainingSet] = Registry("proxy")


@TRAINING_SETS.register("full")
def _full(ctx: TrialContext, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return data.train_x, data.train_y


@TRAINING_SETS.register("dm")
def _dm(ctx: TrialContext, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    entry = Cache(Path(ctx.cache_dir or "")).load(str(ctx.entry_key))  # checksum-verified
    return entry.images, entry.labels


@TRAINING_SETS.register("random")
def _random(ctx: TrialContext, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return random_subset(data, ctx.ipc, seed=ctx.seed + 1)


@TRAINING_SETS.register("early")
def _early(ctx: TrialContext, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``early_images`` of a seeded shuffle of the full split: trained for one epoch,
    this is full-data training stopped after as many image passes as one DM-proxy trial makes.
    (The recipe's schedule runs over that shortened run, so it ends annealed, not cut mid-way.)"""
    n = max(1, min(ctx.early_images, len(data.train_x)))
    pick = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(ctx.seed + 2))[:n]
    return data.train_x[pick], data.train_y[pick]




def zero_cost_batch(data: Dataset, n: int, seed: int) -> torch.Tensor:
    pick = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(seed))[:n]
    return data.train_x[pick]


def score_zero_cost(
    name: str,
    spec: ConvNetSpec,
    data: Dataset,
    seed: int,
    batch_size: int,
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
    data: Dataset,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: TrainRecipe,
    seed: int,
    device: torch.device,
    report: Callable[[float], None] = lambda acc: None,
    reports: int = 5,
    test: bool = True,
    every_epoch: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Train a fresh ``spec`` on ``(x, y)`` with ``recipe``; accuracy on the validation split (and
    the test split when ``test``). Initialisation and batch order depend only on ``seed``. Shared
    by trials and the ground-truth table builder, so a shipped record and a ``--proxy full`` trial
    are one recipe. ``every_epoch()`` runs after each epoch (a warm worker checks there that its
    trial is still wanted)."""
    gen = torch.Generator().manual_seed(seed)
    model = build_convnet(spec, data.image_shape, data.num_classes, generator=gen)
    every = max(1, recipe.epochs // max(1, reports))
    # Intermediate results only draw NNI's curves: a fixed seeded subset of the validation split
    # keeps them cheap (the final result always uses the whole split).
    peek = torch.randperm(len(data.val_x), generator=torch.Generator().manual_seed(0))[:PEEK_IMAGES]

    peek_seconds = 0.0

    def on_epoch(epoch: int, m: torch.nn.Module) -> None:
        nonlocal peek_seconds
        if every_epoch is not None:
            every_epoch()
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


@dataclass(frozen=True)
class Prepared:
    """What every trial of one context shares: loaded once per process (a warm worker keeps it)."""

    data: Dataset
    device: torch.device
    # The training set of each draw of the proxy (empty for a zero-cost proxy).
    sets: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    timings: dict[str, float]  # seconds spent preparing


def prepare(ctx: TrialContext) -> Prepared:
    """Device, threads, the dataset and the training set of each of the context's draws."""
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
    sets: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
    if proxy_kind(ctx.proxy).trains:
        t0 = time.perf_counter()
        make = TRAINING_SETS.get(ctx.proxy)
        sets = tuple(make(draw_context(ctx, d), data) for d in range(max(1, ctx.draws)))
        timings["training_set"] = time.perf_counter() - t0
    return Prepared(data, device, sets, timings)


def draw_seeds(ctx: TrialContext, job_seed: int | None) -> list[list[int]]:
    """The training (or init) seeds of each draw: ``[[seed .. seed+K-1], [seed+K .. seed+2K-1], ...]``
    for K = ``ctx.seeds``; a ground-truth job's own seed alone when the plan names one."""
    if job_seed is not None:
        return [[job_seed]]
    k = max(1, ctx.seeds)
    return [[draw_context(ctx, d).seed + i for i in range(k)] for d in range(max(1, ctx.draws))]


@dataclass(frozen=True)
class Scored:
    """One architecture scored: the trial's record (``score`` is what NNI and the report rank by)
    and each seed's own result (a full-data one is a ground-truth record)."""

    record: dict[str, Any]
    runs: list[dict[str, Any]]


def score(
    params: dict[str, Any],
    ctx: TrialContext,
    report: Callable[[float], None] = lambda acc: None,
    trial_id: str = "standalone",
    extra_timings: dict[str, float] | None = None,
    prepared: Prepared | None = None,
    every_epoch: Callable[[], None] | None = None,
) -> Scored:
    """Score the architecture ``params`` with the context's proxy, averaged over its draws and
    seeds; nothing is written (benchmarks score through this too). A warm worker passes what it
    ``prepared`` once; otherwise it is prepared here."""
    params = dict(params)
    budget = params.pop(BUDGET_KEY, None)
    spec, job_seed = spec_from_params(params)
    fresh = prepared is None
    prepared = prepare(ctx) if prepared is None else prepared
    data, device = prepared.data, prepared.device
    timings = dict(prepared.timings) if fresh else {"data_load": 0.0, "training_set": 0.0}
    per_draw = draw_seeds(ctx, job_seed)
    seeds = [s for group in per_draw for s in group]
    kind = proxy_kind(ctx.proxy)
    if not kind.trains:
        runs = [score_zero_cost(ctx.proxy, spec, data, s, ctx.zero_cost_batch, device) for s in seeds]
        accs = {}
    else:
        recipe = TrainRecipe(**ctx.recipe)
        if budget is not None:  # a multi-fidelity tuner's budget is proxy epochs (see dmnas.nas.tuners.TUNERS)
            recipe = replace(recipe, epochs=budget_epochs(budget, recipe.epochs))
        # Intermediate results only from the first seed: NNI plots one curve per trial.
        runs = [
            train_and_score(
                spec,
                data,
                *prepared.sets[d],
                recipe,
                s,
                device,
                report if (d, i) == (0, 0) else (lambda acc: None),
                ctx.reports,
                test=kind.full_data or ctx.test_split,
                every_epoch=every_epoch,
            )
            for d, group in enumerate(per_draw)
            for i, s in enumerate(group)
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
    k = len(per_draw[0])  # every draw has as many seeds; the runs are in draw order
    draw_scores = [sum(r["score"] for r in runs[d * k : (d + 1) * k]) / k for d in range(len(per_draw))]
    record: dict[str, Any] = {
        **runs[0],
        **accs,
        "default": score,
        "score": score,  # NNI ranks on `default`, never on the test split
        "seed_scores": [r["score"] for r in runs],
        "seeds": seeds,
        # Each draw's own score (the mean of its seeds): the report's spread over draws.
        **({"draw_scores": draw_scores} if len(per_draw) > 1 else {}),
        "train_seconds": round(sum(r["train_seconds"] for r in runs), 4),
        "proxy": ctx.proxy,
        "trial_id": trial_id,
        "budget_epochs": None if budget is None or not kind.trains else recipe.epochs,
        # Where the trial's seconds went (the NNI adapter adds start-up and parameter fetch).
        "timings": {k: round(v, 4) for k, v in {**timings, **(extra_timings or {})}.items()},
    }
    return Scored(record, runs)


def run_trial(
    params: dict[str, Any],
    ctx: TrialContext,
    report: Callable[[float], None] = lambda acc: None,
    trial_id: str = "standalone",
    extra_timings: dict[str, float] | None = None,
    prepared: Prepared | None = None,
    every_epoch: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """:func:`score` as a trial does it: the record written to the search's trials folder (before
    NNI hears of it) and, for full data, each seed's result into the ground-truth store."""
    scored = score(params, ctx, report, trial_id, extra_timings, prepared, every_epoch)
    record = scored.record
    write_json_atomic(Path(ctx.results_dir) / f"{record['arch']}__{trial_id}.json", record)
    if proxy_kind(ctx.proxy).full_data:  # full-data results are ground truth: every later search reuses them
        store = GroundTruthStore(Path(ctx.ground_truth_dir))
        for r in scored.runs:
            store.put(record["fingerprint"], record["arch"], TrainRecipe(**ctx.recipe), r["seed"],
                      {**r, "proxy": "full", "trial_id": trial_id})  # fmt: skip
    return record
