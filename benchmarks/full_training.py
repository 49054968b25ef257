"""Resumable full-data training of (architecture, seed, recipe) jobs into a ground-truth store.

Shared by ``study_full_epochs.py`` and ``build_ground_truth_table.py``. Each job trains through
``dmnas.nas.trials.proxies.train_and_score`` -- the code path of a ``--proxy full`` trial -- and is
written as soon as it finishes, so an interrupted run loses at most the jobs in flight and a
rerun trains only what is missing. Small ConvNets use two cores badly from one process, so jobs
run in ``--processes`` single-threaded workers (measured: 2 x 1 thread gives ~1.3x the
throughput of 1 x 2 threads on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


from benchmarks.common import ROOT, machine
from dmnas.data import DataConfig, load_dataset
from dmnas.groundtruth.store import GroundTruthStore
from dmnas.nas.space import load_space
from dmnas.train import TrainRecipe

log = logging.getLogger("full_training")
TABLE_STORE = ROOT / "dmnas" / "groundtruth" / "tables" / "shipped"


@dataclass(frozen=True)
class Job:
    arch: str
    seed: int
    recipe: TrainRecipe



def sample_archs(space: str, n: int, seed: int) -> list[str]:
    """A seeded random order of the space's architectures, first ``n`` kept (all when n <= 0)."""
    names = [s.name for s in load_space(space).specs()]
    order = np.random.default_rng(seed).permutation(len(names))
    picked = [names[i] for i in order]
    return picked if n <= 0 else picked[:n]


def _run_one(job: Job, store_root: str, data_cfg: dict, threads: int, command: str) -> tuple[str, float]:
    import torch

    from dmnas.models import parse_arch
    from dmnas.nas.trials.proxies import train_and_score

    torch.set_num_threads(threads)
    data = load_dataset(DataConfig(**data_cfg))
    store = GroundTruthStore(Path(store_root))
    done = store.get(data.fingerprint, job.arch, job.recipe, job.seed)
    if done is not None:  # another builder (the study and the table share records) got there first
        return job.arch, done["val_acc"]
    record = train_and_score(
        parse_arch(job.arch), data, data.train_x, data.train_y, job.recipe, job.seed, torch.device("cpu")
    )
    record.update(
        proxy="full",
        machine=machine(),
        command=command,
        date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    store.put(data.fingerprint, job.arch, job.recipe, job.seed, record)
    return job.arch, record["val_acc"]


def missing_jobs(jobs: list[Job], store: GroundTruthStore, fingerprint: str) -> list[Job]:
    have: dict[str, set[tuple[str, int]]] = {}
    out = []
    for job in jobs:
        key = job.recipe.to_dict().__repr__()
        if key not in have:
            have[key] = {(a, s) for a, seeds in store.all(fingerprint, job.recipe).items() for s in seeds}
        if (job.arch, job.seed) not in have[key]:
            out.append(job)
    return out


def run_jobs(
    jobs: list[Job], store: GroundTruthStore, data_cfg: DataConfig, processes: int, command: str
) -> None:
    fingerprint = load_dataset(data_cfg).fingerprint
    todo = missing_jobs(jobs, store, fingerprint)
    log.info(
        "%d jobs, %d already stored, %d to train in %d processes",
        len(jobs),
        len(jobs) - len(todo),
        len(todo),
        processes,
    )
    if not todo:
        return
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked OpenMP pools
    with ctx.Pool(processes, maxtasksperchild=8) as pool:
        pending = [
            pool.apply_async(_run_one, (j, str(store.root), data_cfg.__dict__, 1, command)) for j in todo
        ]
        for i, (job, res) in enumerate(zip(todo, pending, strict=True), 1):
            arch, acc = res.get()
            log.info(
                "[%d/%d %.0fs] %s seed %d %d ep: val %.4f",
                i,
                len(todo),
                time.perf_counter() - t0,
                arch,
                job.seed,
                job.recipe.epochs,
                acc,
            )


def table_fields(
    recipe: TrainRecipe, recs: dict, done: list[tuple[str, int]], planned: int, command: str, old: dict
) -> dict:
    """What every table.json says about its recipe, progress, provenance and dates."""
    from dmnas.groundtruth.store import recipe_key

    return {
        "recipe": recipe.to_dict(),
        "recipe_key": recipe_key(recipe),
        "recipe_text": recipe.describe(),
        "records": len(done),
        "planned": planned,
        "complete": len(done) == planned,
        "train_seconds": round(sum(recs[a][s]["train_seconds"] for a, s in done), 1),
        "command": command,
        "machine": machine(),
        "started": old.get("started", dt.date.today().isoformat()),
        "updated": dt.date.today().isoformat(),
    }


def base_parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument(
        "--store",
        type=Path,
        default=TABLE_STORE,
        help="ground-truth store to fill (default: the shipped table)",
    )
    ap.add_argument("--processes", type=int, default=2, help="single-threaded training processes")
    ap.add_argument("--space", default="convnet_bench")
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of the architecture order")
    return ap
