"""Screen every architecture of a space cheaply, to choose which ones the extended ground truth trains.

Each architecture trains once on a seeded shuffle of the full training split, stopped after
``--images`` image passes (one epoch over those images, cosine schedule, the table's recipe
otherwise), and is scored on the validation split. The screen's shuffle seed and its seed of
initialisation differ from the ``early`` proxy's (``ctx.seed + 2`` / ``ctx.seed``), so the screen
is a separate draw of early stopping, not the early proxy's own scores. It still is early
stopping: a top chosen by it favours what early stopping likes, which is why the extended table
also trains a uniform share and why ``extend_ground_truth.py`` records how the screen ranked the
uniformly sampled tables (its recall of their true top).

Records land in one file, ``benchmarks/screen/<fingerprint>/<screen key>.json`` (the screen's
settings under ``screen``, one record per architecture under ``records``), rewritten atomically as
each one finishes (commit it as it grows); rerun the same command to resume.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.screen_space --space convnet_bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import time
from dataclasses import replace
from pathlib import Path


import torch

from benchmarks.common import ROOT, command_line
from dmnas.util.atomic import write_json_atomic
from dmnas.util.keys import content_key
from dmnas.data import DataConfig, load_dataset
from dmnas.models import parse_arch
from dmnas.nas.config import FULL_RECIPE
from dmnas.nas.space import load_space
from dmnas.nas.trials.proxies import train_and_score

log = logging.getLogger("screen_space")
STORE = ROOT / "benchmarks" / "screen"
SCREEN_SEED = 1000  # init and shuffle seed: not a seed any proxy trial or table record uses


def screen_key(images: int, seed: int) -> str:
    recipe = replace(FULL_RECIPE, epochs=1)
    return content_key({"format": 1, "screen": {"images": images, "seed": seed, "recipe": recipe.to_dict()}})


def screen_file(fingerprint: str, images: int, seed: int, store: Path = STORE) -> Path:
    return store / fingerprint / f"{screen_key(images, seed)}.json"


def load_records(path: Path) -> dict[str, dict]:
    """arch -> the screen's record of it (empty when the file is missing or damaged)."""
    try:
        return dict(json.loads(path.read_text())["records"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def load_screen(path: Path) -> dict[str, float]:
    """arch -> screen validation accuracy, for every record present."""
    return {a: float(r["val_acc"]) for a, r in load_records(path).items() if "val_acc" in r}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="convnet_bench")
    ap.add_argument("--images", type=int, default=20_000, help="image passes per architecture")
    ap.add_argument("--seed", type=int, default=SCREEN_SEED)
    ap.add_argument("--store", type=Path, default=STORE)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    data = load_dataset(DataConfig())
    path = screen_file(data.fingerprint, args.images, args.seed, args.store)
    recipe = replace(FULL_RECIPE, epochs=1)
    command = command_line()
    settings = {"space": args.space, "images": args.images, "seed": args.seed, "recipe": recipe.to_dict(),
                "fingerprint": data.fingerprint, "command": command}  # fmt: skip
    records = load_records(path)
    pick = torch.randperm(len(data.train_x), generator=torch.Generator().manual_seed(args.seed))[: args.images]
    x, y = data.train_x[pick], data.train_y[pick]
    names = [s.name for s in load_space(args.space).specs()]
    todo = [a for a in names if a not in records]
    log.info("%d architectures, %d screened, %d to go", len(names), len(records), len(todo))
    t0 = time.perf_counter()
    for i, arch in enumerate(todo, 1):
        rec = train_and_score(parse_arch(arch), data, x, y, recipe, args.seed, torch.device("cpu"), test=False)
        rec.update(command=command, date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        records[arch] = rec
        write_json_atomic(path, {"screen": settings, "records": records})
        log.info("[%d/%d %.0fs] %s val %.4f", i, len(todo), time.perf_counter() - t0, arch, rec["val_acc"])


if __name__ == "__main__":
    main()
