"""Get a condensed proxy set: take the :class:`~dmnas.condensation.job.ProxyJob`'s set from the
cache or condense it (resumably), say how far it moved, and evaluate it on request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from dmnas.condensation.cache import Cache, Entry, cache_key, describe_entry, new_manifest
from dmnas.condensation.embedding import REAL_BF16
from dmnas.condensation.job import EvalConfig, ProxyJob
from dmnas.condensation.dm import (
    CondenseConfig, CondenseState, Progress, RunOptions, check_ipc, condense,
)
from dmnas.condensation.movement import Movement, movement
from dmnas.data import DataConfig, Dataset, load_dataset

log = logging.getLogger(__name__)
# Below this mean change (in pixel standard deviations) a "DM set" is its random real initialisation
# in all but name: said wherever such a set is made or used.
# A set whose images changed by less than this median relative L2 is a random real subset in all but
# name (the CPU-default set: 3.9 %, 0.028 pixel sd; a set that moved 0.080 sd changed 11.2 %, no longer
# "a few per cent"). Judged on the relative change, which does not depend on the data's scale.
BARELY_MOVED_REL = 0.05


@dataclass(frozen=True)
class ProxySet:
    """A cached proxy set: what ``dmnas.condense()`` returns."""

    key: str
    path: Path
    images: torch.Tensor
    labels: torch.Tensor
    manifest: dict[str, Any]
    cache_hit: bool = False
    resumed_from: int = 0  # iteration a checkpoint was resumed from (0: a fresh run or a hit)
    evaluations: list[str] = field(default_factory=list)  # one summary line per evaluated set

    @property
    def grid_path(self) -> Path:
        return self.path / "grid.png"

    @property
    def movement(self) -> dict[str, Any] | None:
        """How far the images moved from their real initialisation (manifest ``movement``)."""
        return self.manifest.get("movement")

    @classmethod
    def of(cls, entry: Entry, cache_hit: bool, resumed_from: int) -> "ProxySet":
        return cls(entry.key, entry.path, entry.images, entry.labels, entry.manifest, cache_hit, resumed_from)


def movement_note(moved: dict[str, Any] | None) -> str:
    """One line on how far a set moved; plain about a set that DM has hardly touched."""
    if not moved:
        return "movement from its initialisation: not recorded"
    sd = float(moved["moved_sd"])
    rel = 100 * float(moved["median_relative_l2"])
    text = f"images moved {sd:.3f} pixel sd on average from their initialisation (median relative change {rel:.1f} %)"
    if moved["median_relative_l2"] < BARELY_MOVED_REL:
        # Measured for the CPU-default set only (IPC 50, 50 iterations, 0.028 sd): on the pooled tables
        # it ranked the top no better than a random subset and below early stopping
        # (benchmarks/results/proxy_ablation_pooled_extended.md); the note says which set that was.
        text += (
            ": within a few per cent of the real images it started from, close to a random real subset"
            " (the CPU-default set, which moved 0.028 sd, ranked the top of the shipped tables no better than"
            " --proxy random and below --proxy early)"
        )
    return text


def entry_key(data_cfg: DataConfig, cfg: CondenseConfig, fingerprint: str) -> str:
    return cache_key(describe_entry(cfg.to_dict(), data_cfg.key_dict(), fingerprint))


def grid_writer(images: torch.Tensor, data: Dataset, ipc: int) -> Callable[[Path], None]:
    """A PNG of the synthetic set, one row per class, in pixel space."""
    from torchvision.utils import save_image

    def write(path: Path) -> None:
        save_image(data.denormalise(images.float()), str(path), nrow=ipc, padding=1)

    return write


INDUCTOR_DIR = ".inductor"  # under the cache root: not key-shaped, so never listed as an entry


def keep_compiled_code(cache_root: Path) -> Path:
    """Point torch.compile's code cache into the proxy-set cache (unless the user set one), so that a
    second condensation on this machine, of any key, starts warm: compiling costs ~46 s cold and ~3 s
    warm (benchmarks/results/compile_break_even.md), and the temporary folder is often wiped."""
    import os

    folder = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(cache_root).resolve() / INDUCTOR_DIR)))
    log.debug("torch.compile code cache: %s", folder)
    return folder


def get_or_condense(
    data: Dataset,
    data_cfg: DataConfig,
    cfg: CondenseConfig,
    opts: RunOptions,
    cache: Cache,
    progress: Progress | None = None,
    force: bool = False,
) -> ProxySet:
    """Return the cached entry for this config, condensing (or resuming) it when missing; one
    process at a time condenses a key (:meth:`Cache.exclusive`)."""
    key = entry_key(data_cfg, cfg, data.fingerprint)
    if cache.exists(key) and not force:
        return cached_set(cache, key, data, cfg)
    check_ipc(data, cfg.ipc)
    cache.ensure_writable()
    with cache.exclusive(key):
        if cache.exists(key) and not force:  # another process made it while this one waited
            return cached_set(cache, key, data, cfg)
        return condense_into(cache, key, data, data_cfg, cfg, opts, progress, force)


def cached_set(cache: Cache, key: str, data: Dataset, cfg: CondenseConfig) -> ProxySet:
    entry = cache.load(key)
    if "movement" not in entry.manifest:  # sets made before it was recorded
        entry = replace_manifest(cache, entry, movement(data, cfg, entry.images))
    return ProxySet.of(entry, True, 0)


def condense_into(
    cache: Cache,
    key: str,
    data: Dataset,
    data_cfg: DataConfig,
    cfg: CondenseConfig,
    opts: RunOptions,
    progress: Progress | None,
    force: bool,
) -> ProxySet:
    """Condense ``key`` (resuming its checkpoint) and store it; the caller holds the key's lock."""
    if force and cache.exists(key):
        cache.remove(key)
    checkpoint = cache.load_checkpoint(key)
    resume = CondenseState.from_payload(checkpoint) if checkpoint is not None else None
    if resume is not None:
        log.info("resuming %s from its checkpoint at iteration %d", key, resume.iteration)
    log.info(
        "condensing %s: %d iterations at precision %s%s", key, cfg.iterations, cfg.precision,
        " (bf16 for the real images: this device has native bfloat16)" if cfg.precision == REAL_BF16 else "",
    )
    if opts.compile:
        keep_compiled_code(cache.root)
    state = condense(
        data,
        cfg,
        opts,
        resume=resume,
        checkpoint=lambda s: cache.save_checkpoint(key, s.to_payload()),
        progress=progress,
    )
    labels = torch.arange(data.num_classes).repeat_interleave(cfg.ipc)
    manifest = new_manifest(
        {"condense": cfg.to_dict(), "data": data_cfg.key_dict(), "run": opts.__dict__}, data, opts.device,
        state.seconds, state.iteration_seconds, resume.iteration if resume else 0, state.losses,
        movement(data, cfg, state.images).to_dict(),
    )  # fmt: skip
    cache.save(key, state.images, labels, manifest, grid_writer(state.images, data, cfg.ipc))
    cache.clear_checkpoint(key)
    return ProxySet.of(cache.load(key), False, resume.iteration if resume else 0)


def replace_manifest(cache: Cache, entry: Entry, moved: Movement) -> Entry:
    """Add the movement to an older entry's manifest (a read-only cache keeps it unrecorded)."""
    try:
        manifest = cache.update_manifest(entry.key, movement=moved.to_dict())
    except OSError:
        return entry
    return Entry(entry.key, entry.path, entry.images, entry.labels, manifest)


def obtain_proxy(job: ProxyJob, data: Dataset | None = None, progress: Progress | None = None) -> tuple[Dataset, ProxySet]:
    """The dataset (loaded unless given) and the cached or freshly condensed set."""
    data = data if data is not None else load_dataset(job.data, job.data_root)
    if progress is None and not job.quiet:
        from dmnas.util.progress import ProgressBar

        progress = ProgressBar(f"condense {data.name} ipc={job.condense.ipc}")
    proxy = get_or_condense(data, job.data, job.condense, job.run, job.cache(), progress=progress, force=job.force)
    log.info("proxy set %s: %s", proxy.key, movement_note(proxy.movement))
    return data, proxy


def evaluate_entry(job: ProxyJob, data: Dataset, entry: ProxySet, ev: EvalConfig, baseline: bool) -> list[str]:
    """Evaluate a cached set (and optionally the random-subset baseline); store results in its manifest."""
    from dmnas.condensation.evaluate import evaluate_images, random_subset

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
