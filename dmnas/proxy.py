"""Get a condensed proxy set: from the cache when it is there, otherwise condense (resumably)."""

from __future__ import annotations

import logging
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .cache import Cache, Entry, cache_key
from .data import DataConfig, Dataset
from .dm import CondenseConfig, CondenseState, Progress, RunOptions, check_ipc, condense

log = logging.getLogger(__name__)


def describe(data_cfg: DataConfig, cfg: CondenseConfig, fingerprint: str) -> dict[str, Any]:
    """Everything that determines the synthetic set; hashed into the cache key."""
    return {"condense": cfg.to_dict(), "data": data_cfg.key_dict(), "fingerprint": fingerprint}


def entry_key(data_cfg: DataConfig, cfg: CondenseConfig, fingerprint: str) -> str:
    return cache_key(describe(data_cfg, cfg, fingerprint))


def grid_writer(images: torch.Tensor, data: Dataset, ipc: int):  # noqa: ANN201 - a small closure
    """A PNG of the synthetic set, one row per class, in pixel space."""
    from torchvision.utils import save_image

    def write(path: Path) -> None:
        save_image(data.denormalise(images.float()), str(path), nrow=ipc, padding=1)

    return write


@dataclass(frozen=True)
class ProxyResult:
    entry: Entry
    cache_hit: bool
    resumed_from: int  # iteration a checkpoint was resumed from (0 = fresh run)


def get_or_condense(
    data: Dataset,
    data_cfg: DataConfig,
    cfg: CondenseConfig,
    opts: RunOptions,
    cache: Cache,
    progress: Progress | None = None,
    force: bool = False,
) -> ProxyResult:
    """Return the cached entry for this config, condensing (or resuming) it when missing."""
    key = entry_key(data_cfg, cfg, data.fingerprint)
    if cache.exists(key) and not force:
        return ProxyResult(cache.load(key), True, 0)
    check_ipc(data, cfg.ipc)
    cache.ensure_writable()
    if force and cache.exists(key):
        cache.remove(key)
    checkpoint = cache.load_checkpoint(key)
    resume = CondenseState.from_payload(checkpoint) if checkpoint is not None else None
    if resume is not None:
        log.info("resuming %s from its checkpoint at iteration %d", key, resume.iteration)
    state = condense(
        data,
        cfg,
        opts,
        resume=resume,
        checkpoint=lambda s: cache.save_checkpoint(key, s.to_payload()),
        progress=progress,
    )
    labels = torch.arange(data.num_classes).repeat_interleave(cfg.ipc)
    manifest = {
        "config": {"condense": cfg.to_dict(), "data": data_cfg.key_dict(), "run": opts.__dict__},
        "dataset": {
            "name": data.name,
            "fingerprint": data.fingerprint,
            "source": data.source,
            "classes": data.classes,
            "image_shape": list(data.image_shape),
            "mean": data.mean.tolist(),
            "std": data.std.tolist(),
        },
        "dmnas_version": __version__,
        "torch_version": torch.__version__,
        "device": opts.device,
        "host": platform.node(),
        "wall_seconds": round(state.seconds, 3),
        "seconds_per_iteration": round(state.seconds / max(1, cfg.iterations), 4),
        # The median leaves out one-off costs (compilation, warm-up) of the first iterations.
        "median_seconds_per_iteration": round(statistics.median(state.iteration_seconds), 4)
        if state.iteration_seconds
        else None,
        "resumed_from_iteration": resume.iteration if resume else 0,
        "loss_history": state.losses,
        "evaluations": {},
    }
    cache.save(key, state.images, labels, manifest, grid_writer(state.images, data, cfg.ipc))
    cache.clear_checkpoint(key)
    return ProxyResult(cache.load(key), False, resume.iteration if resume else 0)
