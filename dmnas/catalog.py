"""What the command line names and lists -- datasets, proxies, schedules, spaces, tables, the cache
folder -- importable without torch, so that ``dmnas search --help`` answers at once.

The registries stay the source of truth for the names: ``tests/test_catalog.py`` checks that each
list here is its registry's, so a new dataset or proxy that is not added here fails a test.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

DATASETS = ("fashion_mnist", "mnist", "cifar10", "cifar100", "svhn")  # dmnas.data.sources.RAW_LOADERS
IMAGEFOLDER_PREFIX = "imagefolder:"
SCHEDULES = ("step", "cosine")  # dmnas.train.SCHEDULES
MATCHES = ("mean", "mean_var", "mmd")  # dmnas.condensation.losses.MATCHINGS
# Images per class of the proxy set: at the same image passes per candidate, IPC 50 trained 40 epochs
# ranked both shipped tables better than IPC 10 trained 200 (benchmarks/results/proxy_ablation*.md);
# a random real subset of IPC 50 ranks about as well, which those files say too.
DEFAULT_IPC = 50
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"  # DSA's siamese augmentation (dmnas.augment)


def dataset_names() -> list[str]:
    return [*DATASETS, f"{IMAGEFOLDER_PREFIX}PATH"]


def _spaces_dir() -> Path:
    """The checkout's search_spaces/ when running from one; else the copy installed as package data."""
    checkout = Path(__file__).resolve().parents[1] / "search_spaces"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("dmnas.spaces")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else checkout


SPACES_DIR = _spaces_dir()


def available_spaces(folder: Path = SPACES_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


TABLES_DIR = Path(__file__).resolve().parent / "groundtruth" / "tables"
DEFAULT_TABLE = "shipped"  # the 48-architecture uniform sample of convnet_bench


def table_names() -> list[str]:
    return sorted(p.name for p in TABLES_DIR.iterdir() if (p / "table.json").is_file()) if TABLES_DIR.is_dir() else []


def default_cache_dir() -> Path:
    return Path(os.environ.get("DMNAS_CACHE") or "condensed_cache").resolve()
