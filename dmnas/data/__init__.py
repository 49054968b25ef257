"""Datasets as ready tensors: normalisation, seeded splits, fingerprint, the prepared file (the raw
loaders are in :mod:`dmnas.data.sources`).

Every dataset is reduced once to uint8 image tensors plus labels, split into train / val / test,
and stored under the dmnas data folder; later loads read that one file and normalise it in a
single vectorised step. The validation split is carved from the training split with a fixed
seed: architectures are ranked on it, the test split is kept for final reporting.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dmnas.util.atomic import torch_save_atomic
from dmnas.catalog import IMAGEFOLDER_PREFIX, dataset_names
from dmnas.errors import DmnasError
from dmnas.util.fieldcheck import check_field_types
from dmnas.data.sources import RAW_LOADERS, RawSplits, load_imagefolder, stratified_mask

log = logging.getLogger(__name__)

PREPARED_FORMAT = 1
IMAGEFOLDER_SIZE = 32
MIN_IMAGE_SIZE = 4  # the smallest side a depth-1 ConvNet with pooling can take


@dataclass(frozen=True)
class DataConfig:
    """Which dataset and how it is split. Part of every cache key."""

    name: str = "fashion_mnist"
    val_fraction: float = 0.1  # of each class of the training split, held out for ranking
    split_seed: int = 0
    image_size: int | None = None  # imagefolder datasets only (default 32); the others have a fixed size

    def __post_init__(self) -> None:
        check_field_types(self)
        if not 0.0 < self.val_fraction < 1.0:
            raise DmnasError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        if self.name.startswith(IMAGEFOLDER_PREFIX):
            if not self.name[len(IMAGEFOLDER_PREFIX) :]:
                raise DmnasError("imagefolder needs a path: imagefolder:/path/to/images")
            size = IMAGEFOLDER_SIZE if self.image_size is None else self.image_size
            if size < MIN_IMAGE_SIZE:
                raise DmnasError(f"--image-size must be >= {MIN_IMAGE_SIZE}, got {size}")
            object.__setattr__(self, "image_size", size)  # keys of sets made before None was allowed
        else:
            if self.name not in RAW_LOADERS:
                raise DmnasError(f"unknown dataset {self.name!r}; valid: {', '.join(dataset_names())}")
            if self.image_size is not None:
                log.warning("--image-size applies to imagefolder datasets only; %s keeps its own size", self.name)

    def key_dict(self) -> dict[str, object]:
        """The fields that change the prepared tensors (image_size only for image folders)."""
        d = asdict(self)
        if not self.name.startswith(IMAGEFOLDER_PREFIX):
            d.pop("image_size")
        return d


@dataclass(frozen=True)
class Dataset:
    """Normalised float tensors of the three splits plus what is needed to undo normalisation."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor  # (C,)
    std: torch.Tensor  # (C,)
    classes: list[str]
    fingerprint: str
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    def class_indices(self) -> list[torch.Tensor]:
        """Indices of the training split for each class."""
        return [torch.nonzero(self.train_y == c).flatten() for c in range(self.num_classes)]

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.std.view(1, -1, 1, 1) + self.mean.view(1, -1, 1, 1)).clamp(0, 1)


FLIP_UNSAFE = {"mnist", "svhn"}  # digits: a mirrored 2 is not a 2


def default_data_dir() -> Path:
    """``DMNAS_DATA`` or the per-user dmnas data folder."""
    env = os.environ.get("DMNAS_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "dmnas" / "data"


# ---------------------------------------------------------------- preparation


def _fingerprint(cfg: DataConfig, tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256(repr(sorted(cfg.key_dict().items())).encode())
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def prepare(cfg: DataConfig, raw: RawSplits) -> dict[str, object]:
    """Split, compute normalisation statistics and fingerprint; returns the on-disk payload."""
    val_mask = stratified_mask(raw.train_y, len(raw.classes), cfg.val_fraction, cfg.split_seed)
    train_x, train_y = raw.train_x[~val_mask], raw.train_y[~val_mask]
    val_x, val_y = raw.train_x[val_mask], raw.train_y[val_mask]
    # Statistics of the training split only, in float64 to avoid summation drift over 50k images.
    scaled = train_x.double().div_(255.0)
    mean = scaled.mean(dim=(0, 2, 3)).float()
    std = scaled.std(dim=(0, 2, 3)).float()
    tensors = [train_x, train_y, val_x, val_y, raw.test_x, raw.test_y]
    return {
        "format": PREPARED_FORMAT,
        "config": cfg.key_dict(),
        "train_x": train_x,
        "train_y": train_y,
        "val_x": val_x,
        "val_y": val_y,
        "test_x": raw.test_x,
        "test_y": raw.test_y,
        "mean": mean,
        "std": std,
        "classes": raw.classes,
        "source": raw.source,
        "fingerprint": _fingerprint(cfg, tensors),
    }


def _normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0).sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))


def _prepared_path(cfg: DataConfig, data_dir: Path) -> Path:
    key = hashlib.sha256(repr(sorted(cfg.key_dict().items())).encode()).hexdigest()[:12]
    safe = "".join(ch if ch.isalnum() else "_" for ch in cfg.name)[:40]
    return data_dir / "prepared" / f"{safe}-{key}-v{PREPARED_FORMAT}.pt"


def _load_raw(cfg: DataConfig, data_dir: Path) -> RawSplits:
    if cfg.name.startswith(IMAGEFOLDER_PREFIX):
        return load_imagefolder(Path(cfg.name[len(IMAGEFOLDER_PREFIX) :]).expanduser(), cfg.image_size)
    return RAW_LOADERS.get(cfg.name)(data_dir, True)


def load_dataset(cfg: DataConfig, data_dir: Path | None = None) -> Dataset:
    """Return the normalised splits, preparing (and storing) them on first use."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    path = _prepared_path(cfg, data_dir)
    payload: dict[str, object] | None = None
    if path.is_file():
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("format") != PREPARED_FORMAT or payload.get("config") != cfg.key_dict():
                payload = None
        except Exception as err:  # a derived file: rebuild rather than fail
            log.warning("prepared data %s is unreadable (%s); rebuilding it", path, err)
            payload = None
    if payload is None:
        raw = _load_raw(cfg, data_dir)
        payload = prepare(cfg, raw)
        try:
            torch_save_atomic(path, payload)
            log.info("prepared %s from %s -> %s", cfg.name, raw.source, path)
        except OSError as err:
            log.warning("could not store prepared data in %s (%s); it will be rebuilt next time", path, err)
    mean, std = payload["mean"], payload["std"]
    return Dataset(
        name=cfg.name,
        train_x=_normalise(payload["train_x"], mean, std),
        train_y=payload["train_y"],
        val_x=_normalise(payload["val_x"], mean, std),
        val_y=payload["val_y"],
        test_x=_normalise(payload["test_x"], mean, std),
        test_y=payload["test_y"],
        mean=mean,
        std=std,
        classes=list(payload["classes"]),
        fingerprint=str(payload["fingerprint"]),
        source=str(payload["source"]),
    )

