"""NNI's tuner process, tied to its manager: ``python -m dmnas.nas.nni.guard ARGS`` runs
``python -m nni ARGS`` and exits as soon as the manager that started it is gone.

NNI 3.0's tuner reconnects to ``ws://localhost:PORT`` for as long as it lives. A manager killed
outright (SIGKILL, the OOM killer) leaves its tuner behind, and the next experiment on that port
-- a ``--resume`` of the same search, typically -- got the old tuner's answers: an exhausted grid
ended the resumed search after one trial. dmnas's manager preload (``patch/manager_preload.js``)
starts the tuner through this module with ``DMNAS_MANAGER_PID`` set to the manager's pid.
"""

from __future__ import annotations

import os
import runpy
import sys

from dmnas.nas.processes import when_gone  # light: neither torch nor nni

POLL_S = 0.5


def exit_with(pid: int) -> None:
    """End this process as soon as ``pid`` is gone (no cleanup to do: the manager that would read
    the tuner's answers is gone)."""
    when_gone(pid, lambda: os._exit(0), POLL_S, "manager-watch")


def main() -> None:
    pid = int(os.environ.get("DMNAS_MANAGER_PID") or 0)
    if pid > 0:
        exit_with(pid)
    sys.argv = ["nni", *sys.argv[1:]]
    runpy.run_module("nni", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
