"""Atomic file writes: write a sibling temp file, then rename it over the target.

Readers (NNI trials, a second dmnas process) see the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import torch


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path`` (same folder, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(path: Path, obj: Any) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True)))


def torch_save_atomic(path: Path, obj: Any) -> Path:
    return write_atomic(path, lambda tmp: torch.save(obj, tmp))


def check_writable(folder: Path, what: str) -> None:
    """Raise DmnasError (one line) unless files can be created in ``folder``: a read-only or foreign
    workdir or cache is refused before minutes of work, not after. Creates nothing: a folder that
    does not exist yet is judged by the nearest folder above it that does."""
    import tempfile

    from dmnas.errors import DmnasError

    folder = Path(folder).absolute()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise DmnasError(f"{what} {folder}: {probe} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise DmnasError(f"{what} {folder} is not writable ({err.strerror or err})") from None
