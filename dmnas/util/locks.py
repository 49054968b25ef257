"""Advisory file locks (``flock``): released by the kernel when the holder ends, even by SIGKILL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def open_lock(path: Path, wait: bool = False) -> Any | None:
    """``path`` locked exclusively (None: someone holds it and ``wait`` is false; with ``wait``,
    blocks until it is free). Never follows a symlink, never changes a mode; a lock file removed by
    its holder between our open and our lock is tried again."""
    import fcntl

    mode = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        handle = os.fdopen(fd, "r+")
        try:
            fcntl.flock(handle, mode)
        except OSError:
            handle.close()
            return None
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # we locked a file its holder had just removed
    return None
