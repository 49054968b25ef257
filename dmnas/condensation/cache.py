"""Content-addressed store of condensed proxy sets (``condensed_cache/``).

An entry is a folder named by the hash of (format version, resolved condensation config,
dataset config and fingerprint). It holds ``images.pt`` (synthetic images and labels),
``manifest.json`` (config, fingerprint, version, device, wall time, loss history, evaluations,
and the SHA-256 of ``images.pt``), ``config.yaml`` (the resolved config, for people) and
``grid.png``. Entries are built in a temporary folder and renamed into place, so concurrent
readers (NNI trials) see a whole entry or none. Interrupted runs keep a checkpoint in
``<key>.partial/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import yaml

from dmnas.util.atomic import torch_save_atomic, write_json_atomic
from dmnas.errors import DmnasError
from dmnas.util.keys import content_key, is_key
from dmnas.util.locks import open_lock

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
IMAGES = "images.pt"
MANIFEST = "manifest.json"
GRID = "grid.png"
CONFIG = "config.yaml"
CHECKPOINT = "checkpoint.pt"


def cache_key(description: dict[str, Any]) -> str:
    """The key of everything that determines an entry, tagged with this cache's format version."""
    return content_key({"format": FORMAT_VERSION, **description})


def describe_entry(condense: dict[str, Any], data: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """Everything that determines a synthetic set, as hashed into its key: the DM config, the data
    config and the dataset's fingerprint (the one layout the key and a manifest's check share)."""
    return {"condense": condense, "data": data, "fingerprint": fingerprint}


def key_of_manifest(manifest: dict[str, Any]) -> str | None:
    """The key an entry's manifest describes (None when it lacks the fields): an entry whose folder
    name differs was edited or moved, and is not what its manifest says."""
    try:
        cfg = manifest["config"]
        return cache_key(describe_entry(cfg["condense"], cfg["data"], manifest["dataset"]["fingerprint"]))
    except (KeyError, TypeError):
        return None


def new_manifest(
    config: dict[str, Any],
    data: Any,
    device: str,
    seconds: float,
    iteration_seconds: list[float],
    resumed_from: int,
    losses: list[float],
    moved: dict[str, Any],
) -> dict[str, Any]:
    """What an entry's ``manifest.json`` says besides what :meth:`Cache.save` adds (format, key,
    checksum): ``config`` (condense, data, run), the dataset (a :class:`dmnas.data.Dataset`), the
    versions and host, the timings, the loss history, how far the set moved, its evaluations."""
    import platform
    import statistics

    from dmnas import __version__

    return {
        "config": config,
        "dataset": {
            "name": data.name,
            "fingerprint": data.fingerprint,
            "source": data.source,
            "classes": data.classes,
            "image_shape": list(data.image_shape),
            "mean": data.mean.tolist(),
            "std": data.std.tolist(),
        },
        "dmnas_version": __version__,
        "torch_version": torch.__version__,
        "device": device,
        "host": platform.node(),
        "wall_seconds": round(seconds, 3),
        "seconds_per_iteration": round(seconds / max(1, int(config["condense"]["iterations"])), 4),
        # The median leaves out one-off costs (compilation, warm-up) of the first iterations.
        "median_seconds_per_iteration": round(statistics.median(iteration_seconds), 4) if iteration_seconds else None,
        # Every iteration's wall time: the first ones show the one-off compile and warm-up.
        "iteration_seconds": [round(t, 4) for t in iteration_seconds],
        "resumed_from_iteration": resumed_from,
        "loss_history": losses,
        "movement": moved,
        "evaluations": {},
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    images: torch.Tensor
    labels: torch.Tensor
    manifest: dict[str, Any]

    @property
    def grid_path(self) -> Path:
        return self.path / GRID


class Cache:
    """One cache folder. Library code raises :class:`DmnasError`; it never prints."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe-"):
                pass
        except OSError as err:
            raise DmnasError(
                f"cache dir {self.root} is not writable ({err.strerror}); pick another with --cache-dir or DMNAS_CACHE"
            ) from None

    def path(self, key: str) -> Path:
        return self.root / key

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        """Hold ``key``'s lock (``.locks/<key>``, :func:`dmnas.util.locks.open_lock`): one process
        condenses an entry at a time, so two searches or commands asking for the same set do not both
        resume its checkpoint; the second waits and then finds the entry cached."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        handle = open_lock(locks / key)
        if handle is None:
            log.info("another process is condensing %s; waiting for it", key)
            handle = open_lock(locks / key, wait=True)
        if handle is None:
            raise DmnasError(f"cannot lock {locks / key}: it kept being replaced while this process waited")
        with handle:
            yield

    def exists(self, key: str) -> bool:
        return self.path(key).is_dir()

    def load(self, key: str) -> Entry:
        """Load and verify an entry; a missing, truncated or altered file raises DmnasError."""
        folder = self.path(key)
        if not folder.is_dir():
            raise DmnasError(f"no cache entry {key!r} in {self.root}; `dmnas cache list` shows the entries")
        hint = f"remove it with `dmnas cache rm {key}` (or rerun with --force)"
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as err:
            raise DmnasError(f"cache entry {key} is corrupt: unreadable {MANIFEST} ({err}); {hint}") from None
        if manifest.get("format") != FORMAT_VERSION:
            raise DmnasError(
                f"cache entry {key} has format {manifest.get('format')}, this dmnas reads {FORMAT_VERSION}; {hint}"
            )
        if key_of_manifest(manifest) != key:
            raise DmnasError(
                f"cache entry {key} is corrupt: its {MANIFEST} describes another configuration (edited?); {hint}"
            )
        images_path = folder / IMAGES
        if not images_path.is_file() or sha256_file(images_path) != manifest.get("images_sha256"):
            raise DmnasError(
                f"cache entry {key} is corrupt: {IMAGES} is missing or does not match its checksum; {hint}"
            )
        payload = torch.load(images_path, map_location="cpu", weights_only=True)
        return Entry(key, folder, payload["images"], payload["labels"], manifest)

    def save(
        self,
        key: str,
        images: torch.Tensor,
        labels: torch.Tensor,
        manifest: dict[str, Any],
        write_grid: Callable[[Path], None] | None = None,
    ) -> Path:
        """Write an entry atomically: build it in a temp folder, then rename it into place."""
        self.ensure_writable()
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".tmp-{key}-"))
        try:
            torch.save({"images": images.cpu(), "labels": labels.cpu()}, tmp / IMAGES)
            full = {
                **manifest,
                "format": FORMAT_VERSION,
                "key": key,
                "images_sha256": sha256_file(tmp / IMAGES),
            }
            (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=True))
            (tmp / CONFIG).write_text(yaml.safe_dump(full.get("config", {}), sort_keys=True))
            if write_grid is not None:
                write_grid(tmp / GRID)
            try:
                os.rename(tmp, self.path(key))
            except OSError:
                # Another process finished the same entry first; theirs is equivalent.
                log.info("cache entry %s appeared concurrently; keeping the existing one", key)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.path(key)

    def update_manifest(self, key: str, **fields: Any) -> dict[str, Any]:
        manifest = self.load(key).manifest
        manifest.update(fields)
        write_json_atomic(self.path(key) / MANIFEST, manifest)
        return manifest

    def entry_folders(self) -> list[Path]:
        """Folders that are entries: a key-shaped name with a manifest. Anything else under the
        root (a mistyped --cache-dir may point at a home folder) is never listed or removed."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and is_key(p.name) and (p / MANIFEST).is_file())

    def list(self, verify: bool = True) -> list[dict[str, Any]]:
        """Manifests of all entries; with ``verify``, each is checked as :meth:`load` checks it
        (checksum, configuration) and a bad one appears with an ``error`` field."""
        rows = []
        for folder in self.entry_folders():
            try:
                rows.append(self.load(folder.name).manifest if verify else json.loads((folder / MANIFEST).read_text()))
            except DmnasError as err:
                rows.append({"key": folder.name, "error": str(err).split(": ", 1)[-1].split("; remove")[0]})
            except (OSError, ValueError) as err:
                rows.append({"key": folder.name, "error": f"unreadable manifest ({err})"})
        return rows

    def remove(self, key: str) -> None:
        """Remove an entry and its checkpoint; only folders that are entries (or checkpoints of one)."""
        if not is_key(key):
            raise DmnasError(f"{key!r} is not a cache key; `dmnas cache list` shows the entries")
        entry, partial = self.path(key), self.partial_dir(key)
        targets = [p for p in (entry, partial) if p.exists()]
        if not targets:
            raise DmnasError(f"no cache entry {key!r} in {self.root}; `dmnas cache list` shows the entries")
        if entry.exists() and not (entry / MANIFEST).is_file() and not (entry / IMAGES).is_file():
            raise DmnasError(f"{entry} has no {MANIFEST} or {IMAGES}: not a cache entry, left alone")
        listed = list(partial.iterdir()) if partial.is_dir() else []
        foreign = [p for p in listed if p.name != CHECKPOINT and not p.name.endswith(".tmp")]
        if partial.exists() and (partial.is_symlink() or foreign):
            raise DmnasError(f"{partial} holds more than a condensation checkpoint: not dmnas's, left alone")
        for p in targets:
            shutil.rmtree(p)

    # --- checkpoints of unfinished runs
    def partial_dir(self, key: str) -> Path:
        return self.root / f"{key}.partial"

    def save_checkpoint(self, key: str, payload: dict[str, Any]) -> None:
        torch_save_atomic(self.partial_dir(key) / CHECKPOINT, payload)

    def load_checkpoint(self, key: str) -> dict[str, Any] | None:
        path = self.partial_dir(key) / CHECKPOINT
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any unreadable checkpoint is treated alike
            log.warning("checkpoint %s is unreadable (%s); starting from scratch", path, err)
            return None

    def clear_checkpoint(self, key: str) -> None:
        shutil.rmtree(self.partial_dir(key), ignore_errors=True)

    def resolve(self, prefix: str) -> str:
        """A full key from a unique prefix (as git does for commits)."""
        partial = [p.name[: -len(".partial")] for p in self.root.glob("*.partial") if is_key(p.name[: -len(".partial")])]
        names = sorted({p.name for p in self.entry_folders()} | set(partial))
        matches = [n for n in names if prefix and n.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise DmnasError(
                f"no cache entry {prefix!r} in {self.root}; `dmnas cache list` shows the entries"
            )
        raise DmnasError(f"cache key prefix {prefix!r} is ambiguous: {', '.join(matches)}")
