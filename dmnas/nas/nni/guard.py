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
import threading
import time

from dmnas.nas.trials.warm_workers import pid_alive  # light: neither torch nor nni

POLL_S = 0.5


def watch(pid: int, poll_s: float = POLL_S) -> None:
    while pid_alive(pid):
        time.sleep(poll_s)
    os._exit(0)  # no cleanup to do: the manager that would read our answers is gone


def main() -> None:
    pid = int(os.environ.get("DMNAS_MANAGER_PID") or 0)
    if pid > 0:
        threading.Thread(target=watch, args=(pid,), name="manager-watch", daemon=True).start()
    sys.argv = ["nni", *sys.argv[1:]]
    runpy.run_module("nni", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
