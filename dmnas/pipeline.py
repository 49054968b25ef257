"""The condensation stage as one call: data -> DM proxy set (cached) -> optional evaluation.

Takes only typed configs (the command line parses its options into them once, in
:mod:`dmnas.cli`); the search stage (:mod:`dmnas.search.pipeline`) starts from the same
:class:`ProxyJob`, so ``condense``, ``evaluate`` and ``search`` share one path to a proxy set.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import Cache
from .data import DataConfig, Dataset
from .dm import CondenseConfig, RunOptions
from .errors import DmnasError
from .models import ConvNetSpec
from .train import TrainRecipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProxyJob:
    """Which proxy set to get (data + DM config), and how to run and where to cache it."""

    data: DataConfig
    data_root: Path | None
    condense: CondenseConfig
    run: RunOptions
    cache_dir: Path
    force: bool = False  # recompute even if cached (or corrupt)
    quiet: bool = False  # no progress line

    @property
    def device(self) -> str:
        return self.run.device

    def cache(self) -> Cache:
        return Cache(self.cache_dir)


@dataclass(frozen=True)
class EvalConfig:
    """How a proxy set is evaluated: ``runs`` networks of ``arch`` trained with ``recipe``."""

    runs: int
    recipe: TrainRecipe
    arch: ConvNetSpec | None = None  # None: the embedding network
    seed: int = 0


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


def load_data(cfg: DataConfig, root: Path | None) -> Dataset:
    from .data import load_dataset

    return load_dataset(cfg, root)


def obtain_proxy(job: ProxyJob, data: Dataset | None = None) -> tuple[Dataset, Any]:
    """The dataset (loaded unless given) and the cached or freshly condensed entry
    (a :class:`dmnas.proxy.ProxyResult`)."""
    from .progress import ProgressBar
    from .proxy import get_or_condense

    data = data if data is not None else load_data(job.data, job.data_root)
    bar = ProgressBar(f"condense {data.name} ipc={job.condense.ipc}", enabled=not job.quiet)
    result = get_or_condense(
        data, job.data, job.condense, job.run, job.cache(), progress=bar, force=job.force
    )
    return data, result


def evaluate_entry(job: ProxyJob, data: Dataset, entry: Any, ev: EvalConfig, baseline: bool) -> list[str]:
    """Evaluate a cached set (and optionally the random-subset baseline); store results in its manifest."""
    import torch

    from .evaluate import evaluate_images, random_subset

    spec = ev.arch or job.condense.embed
    dev = torch.device(job.device)
    lines, evaluations = [], dict(entry.manifest.get("evaluations", {}))
    sets = [("dm", entry.images, entry.labels)]
    if baseline:
        sets.append(("random_real", *random_subset(data, job.condense.ipc, seed=job.condense.seed + 1)))
    for name, x, y in sets:
        res = evaluate_images(name, x, y, data, spec, ev.recipe, ev.runs, ev.seed, dev)
        evaluations[f"{name}/{spec.name}/e{ev.recipe.epochs}/s{ev.seed}x{ev.runs}"] = res.to_dict()
        lines.append(res.summary())
    job.cache().update_manifest(entry.key, evaluations=evaluations)
    return lines
