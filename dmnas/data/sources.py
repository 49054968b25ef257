"""Where a dataset's images come from: the raw loaders (IDX files such as Debian's Fashion-MNIST,
torchvision's downloads, SVHN, an image folder), each returning uint8 :class:`RawSplits`, in the
``RAW_LOADERS`` registry that :mod:`dmnas.data` prepares from.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dmnas.errors import DmnasError
from dmnas.util.registry import Registry

log = logging.getLogger(__name__)

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class RawSplits:
    """uint8 images (N, C, H, W) and int64 labels straight from the source."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    source: str



RawLoader = Callable[[Path, bool], RawSplits]
RAW_LOADERS: Registry[RawLoader] = Registry("dataset")


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
        test_mask = stratified_mask(y, len(classes), test_fraction, seed)
        train_x, train_y, test_x, test_y = x[~test_mask], y[~test_mask], x[test_mask], y[test_mask]
    return RawSplits(train_x, train_y, test_x, test_y, classes, f"image folder {path}")



def stratified_mask(labels: torch.Tensor, num_classes: int, fraction: float, seed: int) -> torch.Tensor:
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


