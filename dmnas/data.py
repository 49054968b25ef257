"""Datasets as ready tensors: registry, raw loading, normalisation, seeded splits, fingerprint.

Every dataset is reduced once to uint8 image tensors plus labels, split into train / val / test,
and stored under the dmnas data folder; later loads read that one file and normalise it in a
single vectorised step. The validation split is carved from the training split with a fixed
seed: architectures are ranked on it, the test split is kept for final reporting.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dmnas.util.atomic import torch_save_atomic
from dmnas.catalog import IMAGEFOLDER_PREFIX, dataset_names
from dmnas.errors import DmnasError
from dmnas.util.fieldcheck import check_field_types
from dmnas.util.registry import Registry

log = logging.getLogger(__name__)

PREPARED_FORMAT = 1
SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
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
class RawSplits:
    """uint8 images (N, C, H, W) and int64 labels straight from the source."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    source: str


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


def default_data_dir() -> Path:
    """``DMNAS_DATA`` or the per-user dmnas data folder."""
    env = os.environ.get("DMNAS_DATA")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "dmnas" / "data"


# ---------------------------------------------------------------- raw sources

RawLoader = Callable[[Path, bool], RawSplits]
RAW_LOADERS: Registry[RawLoader] = Registry("dataset")
FLIP_UNSAFE = {"mnist", "svhn"}  # digits: a mirrored 2 is not a 2


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) without torchvision's MD5 check."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DmnasError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise DmnasError(f"{path} is truncated or corrupt ({len(data)} bytes, expected {expected})")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(dims))


def _idx_dir_splits(folder: Path, classes: list[str], source: str) -> RawSplits | None:
    def find(stem: str) -> Path | None:
        for suffix in ("", ".gz"):
            p = folder / f"{stem}{suffix}"
            if p.is_file():
                return p
        return None

    stems = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    paths = [find(s) for s in stems]
    if any(p is None for p in paths):
        return None
    arrays = [torch.from_numpy(read_idx(p).copy()) for p in paths]  # type: ignore[arg-type]
    return RawSplits(
        train_x=arrays[0].unsqueeze(1),
        train_y=arrays[1].long(),
        test_x=arrays[2].unsqueeze(1),
        test_y=arrays[3].long(),
        classes=classes,
        source=source,
    )


def _torchvision_error(name: str, root: Path, err: Exception, extra: str = "") -> DmnasError:
    return DmnasError(
        f"{name} not found under {root}{extra} and could not be downloaded ({type(err).__name__}); "
        f"put torchvision's {name} files under {root} (--data-root or DMNAS_DATA) or run once with internet access"
    )


def _mnist_like(name: str, tv_class: str, classes: list[str]) -> RawLoader:
    def load(root: Path, download: bool) -> RawSplits:
        from torchvision import datasets

        local = _idx_dir_splits(root / tv_class / "raw", classes, str(root / tv_class / "raw"))
        if local is not None:
            return local
        if name == "fashion_mnist":
            system = _idx_dir_splits(SYSTEM_FASHION_MNIST, classes, str(SYSTEM_FASHION_MNIST))
            if system is not None:
                return system
        if not download:
            raise DmnasError(f"{name} not found under {root}")
        try:
            getattr(datasets, tv_class)(str(root), train=True, download=True)
            getattr(datasets, tv_class)(str(root), train=False, download=True)
        except Exception as err:  # any download failure means "no data"
            hint = ""
            if name == "fashion_mnist":
                hint = f" or {SYSTEM_FASHION_MNIST} (apt-get install dataset-fashion-mnist)"
            raise _torchvision_error(name, root, err, hint) from err
        result = _idx_dir_splits(root / tv_class / "raw", classes, f"torchvision download into {root}")
        assert result is not None
        return result

    return load


FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
RAW_LOADERS.add("fashion_mnist", _mnist_like("fashion_mnist", "FashionMNIST", FASHION_CLASSES))
RAW_LOADERS.add("mnist", _mnist_like("mnist", "MNIST", [str(i) for i in range(10)]))


def _cifar(name: str, tv_class: str) -> RawLoader:
    def load(root: Path, download: bool) -> RawSplits:
        from torchvision import datasets

        try:
            train = getattr(datasets, tv_class)(str(root), train=True, download=download)
            test = getattr(datasets, tv_class)(str(root), train=False, download=download)
        except Exception as err:
            raise _torchvision_error(name, root, err) from err
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        return RawSplits(
            to_t(train.data),
            torch.tensor(train.targets),
            to_t(test.data),
            torch.tensor(test.targets),
            list(train.classes),
            f"torchvision {tv_class} in {root}",
        )

    return load


RAW_LOADERS.add("cifar10", _cifar("cifar10", "CIFAR10"))
RAW_LOADERS.add("cifar100", _cifar("cifar100", "CIFAR100"))


def _svhn(root: Path, download: bool) -> RawSplits:
    from torchvision import datasets

    try:
        train = datasets.SVHN(str(root), split="train", download=download)
        test = datasets.SVHN(str(root), split="test", download=download)
    except Exception as err:
        raise _torchvision_error("svhn", root, err) from err
    return RawSplits(
        torch.from_numpy(train.data),
        torch.from_numpy(train.labels).long(),
        torch.from_numpy(test.data),
        torch.from_numpy(test.labels).long(),
        [str(i) for i in range(10)],
        f"torchvision SVHN in {root}",
    )


RAW_LOADERS.add("svhn", _svhn)


def _image_mode(path: str) -> str:
    from PIL import Image

    try:
        with Image.open(path) as im:  # reads the header only
            return im.mode
    except (OSError, ValueError) as err:
        raise DmnasError(f"cannot read image {path}: {err}") from None


def load_imagefolder(path: Path, image_size: int, test_fraction: float = 0.2, seed: int = 0) -> RawSplits:
    """An ImageFolder tree; ``train/`` and ``test/`` subfolders are used when both exist."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    if not path.exists():
        raise DmnasError(f"image folder {path} does not exist")
    if not path.is_dir():
        raise DmnasError(f"image folder {path} is a file, not a folder of class subfolders")

    def read(folder: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        try:
            ds = ImageFolder(str(folder), loader=_image_mode)  # the loader is never called here
        except (FileNotFoundError, RuntimeError) as err:
            raise DmnasError(f"image folder {folder} has no images in class subfolders ({err})") from err
        if len(ds.samples) == 0:
            raise DmnasError(f"image folder {folder} is empty")
        if len(ds.classes) < 2:
            raise DmnasError(
                f"image folder {folder} has {len(ds.classes)} class folder(s) ({', '.join(ds.classes)}); "
                "ranking needs at least two classes"
            )
        # One file open at a time (a folder of thousands under `ulimit -n 1024` must work): a first
        # pass reads only headers to choose grayscale or RGB, the second decodes straight into one
        # preallocated uint8 array, so no list of decoded images sits beside it.
        gray = all(_image_mode(p) in ("L", "1", "I", "I;16") for p, _ in ds.samples)
        mode = "L" if gray else "RGB"
        out = np.empty((len(ds.samples), image_size, image_size) + (() if gray else (3,)), dtype=np.uint8)
        for i, (p, _) in enumerate(ds.samples):
            try:
                with Image.open(p) as im:
                    out[i] = np.asarray(im.convert(mode).resize((image_size, image_size), Image.BILINEAR))
            except (OSError, ValueError) as err:
                raise DmnasError(f"cannot read image {p}: {err}") from None
        x = torch.from_numpy(out)
        x = x.unsqueeze(1) if gray else x.permute(0, 3, 1, 2)
        return x.contiguous(), torch.tensor([t for _, t in ds.samples]), list(ds.classes)

    if (path / "train").is_dir() and (path / "test").is_dir():
        train_x, train_y, classes = read(path / "train")
        test_x, test_y, test_classes = read(path / "test")
        if test_classes != classes:
            raise DmnasError(f"{path}: train/ and test/ have different class folders")
        if test_x.shape[1] != train_x.shape[1]:
            test_x = test_x.expand(-1, train_x.shape[1], -1, -1).contiguous()
    else:
        x, y, classes = read(path)
        test_mask = _stratified_mask(y, len(classes), test_fraction, seed)
        train_x, train_y, test_x, test_y = x[~test_mask], y[~test_mask], x[test_mask], y[test_mask]
    return RawSplits(train_x, train_y, test_x, test_y, classes, f"image folder {path}")


# ---------------------------------------------------------------- preparation


def _stratified_mask(labels: torch.Tensor, num_classes: int, fraction: float, seed: int) -> torch.Tensor:
    """Boolean mask choosing ``fraction`` of every class (at least one), reproducibly."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(num_classes):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < 2:
            continue
        k = max(1, int(round(fraction * len(idx))))
        mask[idx[torch.randperm(len(idx), generator=gen)[:k]]] = True
    return mask


def _fingerprint(cfg: DataConfig, tensors: list[torch.Tensor]) -> str:
    h = hashlib.sha256(repr(sorted(cfg.key_dict().items())).encode())
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def prepare(cfg: DataConfig, raw: RawSplits) -> dict[str, object]:
    """Split, compute normalisation statistics and fingerprint; returns the on-disk payload."""
    val_mask = _stratified_mask(raw.train_y, len(raw.classes), cfg.val_fraction, cfg.split_seed)
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

