import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmnas.data import DataConfig, load_dataset
from dmnas.data.sources import load_imagefolder, read_idx
from dmnas.data.sources import stratified_mask as _stratified_mask
from dmnas.errors import DmnasError


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trip_and_truncation(tmp_path: Path) -> None:
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    (tmp_path / "b").write_bytes(raw[:-3])
    with pytest.raises(DmnasError, match="truncated"):
        read_idx(tmp_path / "b")


def test_stratified_split_is_seeded_and_per_class() -> None:
    labels = torch.arange(4).repeat_interleave(50)
    m1, m2 = _stratified_mask(labels, 4, 0.1, 0), _stratified_mask(labels, 4, 0.1, 0)
    assert torch.equal(m1, m2)
    assert not torch.equal(m1, _stratified_mask(labels, 4, 0.1, 1))
    assert torch.bincount(labels[m1]).tolist() == [5, 5, 5, 5]


def make_folder(root: Path, classes: int = 3, per_class: int = 6, mode: str = "L") -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            shape = (20, 20) if mode == "L" else (20, 20, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / f"class{c}" / f"{i}.png"
            )


@pytest.mark.parametrize("mode,channels", [("L", 1), ("RGB", 3)])
def test_imagefolder_is_loaded_split_normalised_and_cached(tmp_path: Path, mode: str, channels: int) -> None:
    make_folder(tmp_path / "imgs", mode=mode)
    cfg = DataConfig(name=f"imagefolder:{tmp_path / 'imgs'}", image_size=16)
    data = load_dataset(cfg, tmp_path / "data")
    assert data.image_shape == (channels, 16, 16)
    assert data.num_classes == 3
    total = len(data.train_x) + len(data.val_x) + len(data.test_x)
    assert total == 18 and len(data.val_x) > 0 and len(data.test_x) > 0
    # normalised with the training split's own statistics
    assert data.train_x.mean().abs() < 1e-4 and (data.train_x.std() - 1).abs() < 0.05
    again = load_dataset(cfg, tmp_path / "data")
    assert again.fingerprint == data.fingerprint and torch.equal(again.train_x, data.train_x)
    other = load_dataset(DataConfig(name=cfg.name, image_size=16, split_seed=1), tmp_path / "data")
    assert other.fingerprint != data.fingerprint


def test_empty_imagefolder_and_unknown_dataset(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DmnasError, match="empty|no images"):
        load_dataset(DataConfig(name=f"imagefolder:{tmp_path / 'empty'}"), tmp_path / "data")
    with pytest.raises(DmnasError, match="valid: fashion_mnist, mnist, cifar10, cifar100, svhn"):
        DataConfig(name="imagenet")


def test_corrupt_prepared_file_is_rebuilt(tmp_path: Path) -> None:
    make_folder(tmp_path / "imgs")
    cfg = DataConfig(name=f"imagefolder:{tmp_path / 'imgs'}", image_size=8)
    first = load_dataset(cfg, tmp_path / "data")
    prepared = next((tmp_path / "data" / "prepared").glob("*.pt"))
    prepared.write_bytes(b"garbage")
    assert load_dataset(cfg, tmp_path / "data").fingerprint == first.fingerprint


def test_imagefolder_reads_one_file_at_a_time_and_names_a_broken_one(tmp_path: Path) -> None:
    """600 images under `ulimit -n 256`: holding every file open at once would fail."""
    import subprocess
    import sys

    make_folder(tmp_path / "imgs", classes=3, per_class=200)
    script = (
        f"from pathlib import Path; from dmnas.data.sources import load_imagefolder; "
        f"r = load_imagefolder(Path({str(tmp_path / 'imgs')!r}), 8); print(len(r.train_x) + len(r.test_x))"
    )
    proc = subprocess.run(
        ["bash", "-c", f'ulimit -n 256 && {sys.executable} -c "{script}"'], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "600", proc.stderr[-2000:]
    (tmp_path / "imgs" / "class1" / "7.png").write_bytes(b"not a png")
    with pytest.raises(DmnasError, match=r"cannot read image .*class1/7\.png"):
        load_imagefolder(tmp_path / "imgs", 8)
