import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from dmnas.condensation.cache import Cache, cache_key
from dmnas.data import DataConfig
from dmnas.condensation.dm import CondenseConfig
from dmnas.errors import DmnasError
from dmnas.models import ConvNetSpec
from dmnas.condensation.cache import describe_entry
from dmnas.condensation.proxyset import entry_key


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
    assert describe_entry(cfg.to_dict(), DataConfig().key_dict(), "fp")["condense"]["embed"]["width"] == 128


def manifest_for(seed: int = 0) -> tuple[str, dict]:
    """A manifest as a real entry has it, and the key it describes."""
    cfg = CondenseConfig(seed=seed)
    d = describe_entry(cfg.to_dict(), DataConfig().key_dict(), "fp")
    manifest = {"config": {"condense": d["condense"], "data": d["data"], "run": {}}, "dataset": {"fingerprint": "fp"}}
    return entry_key(DataConfig(), cfg, "fp"), manifest


K1, M1 = manifest_for(0)


def save_one(cache: Cache, key: str = K1, manifest: dict | None = None) -> None:
    cache.save(key, torch.randn(4, 1, 3, 3), torch.arange(4), manifest or M1, lambda p: p.write_bytes(b"png"))


def test_save_load_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    save_one(cache)
    entry = cache.load(K1)
    assert entry.images.shape == (4, 1, 3, 3)
    assert "condense:" in (entry.path / "config.yaml").read_text()
    assert [r["key"] for r in cache.list()] == [K1]
    assert cache.resolve(K1[:4]) == K1
    cache.update_manifest(K1, evaluations={"a": 1})
    assert cache.load(K1).manifest["evaluations"] == {"a": 1}


def test_failed_write_leaves_no_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)

    def broken(path: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache.save(K1, torch.zeros(1), torch.zeros(1), M1, broken)
    assert not cache.exists(K1)
    assert list(tmp_path.iterdir()) == []  # temp folder cleaned up too


def test_concurrent_writer_keeps_the_first_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    save_one(cache)
    first = cache.load(K1).images
    save_one(cache)  # a second writer finishing later must not break or replace the entry
    assert torch.equal(cache.load(K1).images, first)


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "manifest", "edited_config"])
def test_corrupt_entries_are_detected(tmp_path: Path, damage: str) -> None:
    import json

    cache = Cache(tmp_path)
    save_one(cache)
    images = tmp_path / K1 / "images.pt"
    manifest = tmp_path / K1 / "manifest.json"
    if damage == "flip_byte":
        data = bytearray(images.read_bytes())
        data[len(data) // 2] ^= 0xFF
        images.write_bytes(bytes(data))
    elif damage == "truncate":
        images.write_bytes(images.read_bytes()[:10])
    elif damage == "manifest":
        manifest.write_text("{not json")
    else:  # a valid manifest whose configuration was edited (ipc 50 -> 2) is not a hit
        m = json.loads(manifest.read_text())
        m["config"]["condense"]["ipc"] = 2
        manifest.write_text(json.dumps(m))
    with pytest.raises(DmnasError, match="corrupt"):
        cache.load(K1)
    listed = cache.list()
    assert len(listed) == 1 and "error" in listed[0]  # `cache list` says so too


def test_rm_deletes_only_entries(tmp_path: Path) -> None:
    """A mistyped --cache-dir pointing at a home folder must not lose anything."""
    cache = Cache(tmp_path)
    thesis = tmp_path / "Documents" / "thesis"
    thesis.mkdir(parents=True)
    (thesis / "ch1.tex").write_text("x")
    fake = tmp_path / ("0" * 16)  # key-shaped, but not an entry
    (fake / "notes").mkdir(parents=True)
    for prefix in ("Doc", "Documents", "0" * 16, "0"):
        with pytest.raises(DmnasError):
            cache.remove(cache.resolve(prefix))
    with pytest.raises(DmnasError, match="not a cache key"):
        cache.remove("Documents")
    assert (thesis / "ch1.tex").read_text() == "x" and (fake / "notes").is_dir()
    assert cache.list() == []
    save_one(cache)
    cache.remove(cache.resolve(K1[:6]))
    assert not cache.exists(K1) and (thesis / "ch1.tex").exists()


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


def test_the_ground_truth_keys_do_not_follow_the_cache_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new proxy-set cache format re-keys the cache, never the shipped ground-truth tables."""
    from dmnas.condensation import cache as cache_module
    from dmnas.groundtruth.store import recipe_key
    from dmnas.catalog import TABLES_DIR
    from dmnas.nas.config import FULL_RECIPE

    shipped = {p.name for p in (TABLES_DIR / "shipped").glob("*/*") if p.is_dir()}
    assert recipe_key(FULL_RECIPE) in shipped  # the default recipe's records are where its key says
    before = (recipe_key(FULL_RECIPE), cache_module.cache_key({"x": 1}))
    monkeypatch.setattr(cache_module, "FORMAT_VERSION", cache_module.FORMAT_VERSION + 1)
    assert recipe_key(FULL_RECIPE) == before[0] and cache_module.cache_key({"x": 1}) != before[1]


def test_the_default_sets_keep_their_keys() -> None:
    """Refactoring must not re-key the cache: the CPU default set of Fashion-MNIST (fingerprint
    871d8195f3421db3) is 176b68a1ae79cfd7 in fp32 and 9e9f32c6906a376c with the real branch in bf16."""
    from dmnas.condensation.job import proxy_job

    for precision, key in (("fp32", "176b68a1ae79cfd7"), ("bf16-real", "9e9f32c6906a376c")):
        job = proxy_job(device="cpu", precision=precision)
        assert entry_key(job.data, job.condense, "871d8195f3421db3") == key


def test_one_process_condenses_a_key_and_a_second_waits_for_it(tmp_path: Path, tiny_data) -> None:  # noqa: ANN001
    """While a key's lock is held (another process condensing it), get_or_condense waits; it
    condenses once the lock is free. Two callers at once: one condenses, the other gets the cache."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from dmnas.condensation.dm import RunOptions
    from dmnas.condensation.proxyset import get_or_condense

    cfg = CondenseConfig(ipc=1, iterations=2, batch_real=4, strategy="none", embed=ConvNetSpec(depth=1, width=4))
    data_cfg = DataConfig(name="fashion_mnist")
    cache = Cache(tmp_path)
    key = entry_key(data_cfg, cfg, tiny_data.fingerprint)
    done = threading.Event()
    with cache.exclusive(key):
        worker = threading.Thread(
            target=lambda: (get_or_condense(tiny_data, data_cfg, cfg, RunOptions(), cache), done.set())
        )
        worker.start()
        time.sleep(0.5)
        assert not done.is_set() and not cache.exists(key)  # waiting on the lock
    worker.join(timeout=60)
    assert done.is_set() and cache.exists(key)

    other = Cache(tmp_path / "second")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: get_or_condense(tiny_data, data_cfg, cfg, RunOptions(), other), range(2)))
    assert sorted(r.cache_hit for r in runs) == [False, True]
    assert torch.equal(runs[0].images, runs[1].images)
