import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dmnas.cache import Cache, cache_key
from dmnas.data import DataConfig
from dmnas.dm import CondenseConfig
from dmnas.errors import DmnasError
from dmnas.models import ConvNetSpec
from dmnas.proxy import describe, entry_key


def test_key_is_stable_and_order_independent() -> None:
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    # Stable across processes and releases of Python: a pure function of the canonical JSON.
    assert cache_key({"a": 1}) == hashlib.sha256(b'{"a":1,"format":1}').hexdigest()[:16]


@pytest.mark.parametrize(
    "change",
    [
        {"ipc": 11},
        {"iterations": 5},
        {"lr_img": 0.5},
        {"momentum": 0.9},
        {"batch_real": 128},
        {"init": "noise"},
        {"strategy": "none"},
        {"embed": ConvNetSpec(width=64)},
        {"precision": "tf32"},
        {"seed": 1},
    ],
)
def test_key_changes_with_every_condense_field(change: dict) -> None:
    base = CondenseConfig()
    assert entry_key(DataConfig(), base, "fp") != entry_key(DataConfig(), replace(base, **change), "fp")


def test_key_changes_with_data_and_fingerprint() -> None:
    cfg = CondenseConfig()
    k = entry_key(DataConfig(), cfg, "fp")
    assert k != entry_key(DataConfig(), cfg, "other")
    assert k != entry_key(DataConfig(split_seed=1), cfg, "fp")
    assert k != entry_key(DataConfig(name="mnist"), cfg, "fp")
    assert describe(DataConfig(), cfg, "fp")["condense"]["embed"]["width"] == 128


def save_one(cache: Cache, key: str = "k1") -> None:
    cache.save(
        key, torch.randn(4, 1, 3, 3), torch.arange(4), {"config": {"x": 1}}, lambda p: p.write_bytes(b"png")
    )


def test_save_load_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    save_one(cache)
    entry = cache.load("k1")
    assert entry.images.shape == (4, 1, 3, 3)
    assert (entry.path / "config.yaml").read_text().strip() == "x: 1"
    assert [r["key"] for r in cache.list()] == ["k1"]
    assert cache.resolve("k") == "k1"
    cache.update_manifest("k1", evaluations={"a": 1})
    assert cache.load("k1").manifest["evaluations"] == {"a": 1}


def test_failed_write_leaves_no_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)

    def broken(path: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache.save("k2", torch.zeros(1), torch.zeros(1), {}, broken)
    assert not cache.exists("k2")
    assert list(tmp_path.iterdir()) == []  # temp folder cleaned up too


def test_concurrent_writer_keeps_the_first_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    save_one(cache)
    first = cache.load("k1").images
    save_one(cache)  # a second writer finishing later must not break or replace the entry
    assert torch.equal(cache.load("k1").images, first)


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "manifest"])
def test_corrupt_entries_are_detected(tmp_path: Path, damage: str) -> None:
    cache = Cache(tmp_path)
    save_one(cache)
    images = tmp_path / "k1" / "images.pt"
    if damage == "flip_byte":
        data = bytearray(images.read_bytes())
        data[len(data) // 2] ^= 0xFF
        images.write_bytes(bytes(data))
    elif damage == "truncate":
        images.write_bytes(images.read_bytes()[:10])
    else:
        (tmp_path / "k1" / "manifest.json").write_text("{not json")
    with pytest.raises(DmnasError, match="corrupt"):
        cache.load("k1")


def test_unwritable_cache_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DmnasError, match="not writable"):
        Cache(blocker / "cache").ensure_writable()


def test_checkpoint_round_trip_and_corrupt_checkpoint(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.save_checkpoint("k", {"iteration": 3})
    assert cache.load_checkpoint("k") == {"iteration": 3}
    (cache.partial_dir("k") / "checkpoint.pt").write_bytes(b"junk")
    assert cache.load_checkpoint("k") is None
    cache.clear_checkpoint("k")
    assert not cache.partial_dir("k").exists()
