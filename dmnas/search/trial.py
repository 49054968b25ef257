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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..atomic import write_json_atomic
from ..cache import Cache
from ..data import DataConfig, load_dataset
from ..evaluate import random_subset
from ..models import ConvNetSpec, build_convnet, count_parameters, parse_arch
from ..train import TrainRecipe, accuracy, train_model
from .ground_truth import GroundTruthStore
from .space import DEFAULTS

log = logging.getLogger(__name__)

PROXIES = ("dm", "random", "full")


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
    ipc: int = 10
    reports: int = 5  # intermediate results per trial
    threads: int = 0  # CPU threads per trial (0 = torch's default); oversubscribed OpenMP crawls

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> "TrialContext":
        return cls(**json.loads(path.read_text()))


def spec_from_params(params: dict[str, Any]) -> ConvNetSpec:
    """NNI parameters -> spec: either the five fields (defaults fill gaps) or ``{'arch': name}``."""
    if "arch" in params:
        return parse_arch(str(params["arch"]))
    return ConvNetSpec.from_dict({**DEFAULTS, **params})


def training_set(ctx: TrialContext, data) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    if ctx.proxy == "full":
        return data.train_x, data.train_y
    if ctx.proxy == "random":
        return random_subset(data, ctx.ipc, seed=ctx.seed + 1)
    entry = Cache(Path(ctx.cache_dir or "")).load(str(ctx.entry_key))  # checksum-verified
    return entry.images, entry.labels


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
) -> dict[str, Any]:
    """Train a fresh ``spec`` on ``(x, y)`` with ``recipe``; accuracies on the validation and test
    splits. Initialisation and batch order depend only on ``seed``. Shared by trials and the
    ground-truth table builder, so a shipped record and a ``--proxy full`` trial are one recipe."""
    gen = torch.Generator().manual_seed(seed)
    model = build_convnet(spec, data.image_shape, data.num_classes, generator=gen)
    every = max(1, recipe.epochs // max(1, reports))

    def on_epoch(epoch: int, m: torch.nn.Module) -> None:
        if epoch % every == 0 and epoch < recipe.epochs:
            report(accuracy(m, data.val_x, data.val_y, device))

    result = train_model(model, x, y, recipe, gen, device, on_epoch=on_epoch)
    val_acc = accuracy(model, data.val_x, data.val_y, device)
    test_acc = accuracy(model, data.test_x, data.test_y, device)
    return {
        "default": val_acc,  # NNI ranks on validation accuracy, never on the test split
        "val_acc": val_acc, "test_acc": test_acc,
        "train_seconds": round(result.seconds, 3), "params": count_parameters(model),
        "arch": spec.name, **spec.to_dict(), "seed": seed, "images": len(x), "fingerprint": data.fingerprint,
        "device": str(device), "threads": torch.get_num_threads(),
    }


def run_trial(
    params: dict[str, Any],
    ctx: TrialContext,
    report: Callable[[float], None] = lambda acc: None,
    trial_id: str = "standalone",
) -> dict[str, Any]:
    """Train the architecture ``params`` on the context's proxy; return the final result dict."""
    spec = spec_from_params(params)
    device = torch.device(ctx.device)
    if ctx.threads > 0:
        torch.set_num_threads(ctx.threads)
    data = load_dataset(DataConfig(**ctx.data), Path(ctx.data_dir) if ctx.data_dir else None)
    x, y = training_set(ctx, data)
    recipe = TrainRecipe(**ctx.recipe)
    record = {**train_and_score(spec, data, x, y, recipe, ctx.seed, device, report, ctx.reports),
              "proxy": ctx.proxy, "trial_id": trial_id}
    write_json_atomic(Path(ctx.results_dir) / f"{spec.name}__{trial_id}.json", record)
    if ctx.proxy == "full":
        GroundTruthStore(Path(ctx.ground_truth_dir)).put(data.fingerprint, spec.name, recipe, ctx.seed, record)
    return record


def main() -> None:
    import nni

    ap = argparse.ArgumentParser(description="dmnas NNI trial (launched by `dmnas search`)")
    ap.add_argument("--context", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx = TrialContext.load(args.context)
    params = nni.get_next_parameter() or {}
    params = {k: v for k, v in params.items() if not k.startswith("_")}
    trial_id = os.environ.get("NNI_TRIAL_JOB_ID", "standalone")
    t0 = time.perf_counter()
    record = run_trial(params, ctx, report=nni.report_intermediate_result, trial_id=trial_id)
    log.info("trial %s trained %s: val %.4f test %.4f in %.1fs", trial_id, record["arch"], record["val_acc"],
             record["test_acc"], time.perf_counter() - t0)
    nni.report_final_result(record)


if __name__ == "__main__":
    main()
