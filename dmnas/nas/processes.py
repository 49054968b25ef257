"""The processes of a search watching each other: whether a pid still runs, and a daemon thread
that acts once a process is gone (a warm worker stops when its ``dmnas search`` is gone, NNI's
tuner when its manager is). Light: neither torch nor nni."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable


def pid_alive(pid: int) -> bool:
    """``pid`` runs. A zombie does not: a worker SIGKILLed under the trial that started it stays one
    until that trial reaps it, and must not read "still running"."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust the signal
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def when_gone(pid: int, act: Callable[[], None], poll_s: float, name: str) -> threading.Thread:
    """Start a daemon thread that polls ``pid`` every ``poll_s`` seconds and calls ``act()`` once
    it is gone (``act`` typically ends this process)."""

    def watch() -> None:
        while pid_alive(pid):
            time.sleep(poll_s)
        act()

    thread = threading.Thread(target=watch, name=name, daemon=True)
    thread.start()
    return thread
