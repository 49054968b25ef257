"""A warm worker: one long-lived process per concurrency slot that holds torch, the dataset and the
proxy set in memory and scores the architectures its slot's trials send, one after another
(``python -m dmnas.nas.trials.worker``; started by :mod:`dmnas.nas.trials.warm_workers`, never by hand).

A trial whose process goes away (NNI killed it, the user stopped it in the web UI) is abandoned at
the next epoch; a Python error fails only that trial (the message goes back to it). The worker
exits when its owner (the ``dmnas search`` process) is gone, after ``--idle-timeout`` seconds
without a trial, or on SIGTERM/SIGINT, and removes its socket and pid file.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from dmnas.nas.processes import pid_alive, when_gone
from dmnas.nas.trials.warm_workers import messages, send

log = logging.getLogger(__name__)


class Abandoned(Exception):
    """The trial's process is gone: nobody waits for this score."""


def peer_closed(sock: socket.socket) -> bool:
    """The client hung up (its socket reads end-of-file) without blocking."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def serve_one(conn: socket.socket, ctx: Any, prepared: Any, served: int, started_s: float) -> bool:
    """Score the one request on ``conn`` and answer it; False if there was none (a readiness probe)."""
    from dmnas.nas.trials.proxies import run_trial

    request = next(messages(conn), None)
    if request is None or request.get("op") != "score":
        return False
    trial_id = str(request.get("trial_id", "?"))

    def check() -> None:
        if peer_closed(conn):
            raise Abandoned(trial_id)

    def report(value: float) -> None:
        check()
        send(conn, {"type": "intermediate", "value": value})

    timings = dict(request.get("timings") or {})
    timings["worker_trial_index"] = served  # 0: this worker's first trial
    if served == 0:
        timings["worker_imports_and_data"] = started_s
    t0 = time.perf_counter()
    try:
        record = run_trial(
            request["params"], ctx, report=report, trial_id=trial_id, extra_timings=timings,
            prepared=prepared, every_epoch=check,
        )
    except Abandoned:
        log.warning("trial %s abandoned: its trial process ended", trial_id)
        return True
    except Exception as err:  # the trial fails; the worker and its warm state stay
        log.error("trial %s failed:\n%s", trial_id, traceback.format_exc())
        with contextlib.suppress(OSError):
            send(conn, {"type": "error", "message": f"{type(err).__name__}: {err}"})
        return True
    log.info("trial %s scored %s: %.4f in %.1fs", trial_id, record["arch"], record["score"], time.perf_counter() - t0)
    with contextlib.suppress(OSError):
        send(conn, {"type": "final", "record": record})
    return True


def serve(ctx_path: Path, sock_path: Path, pidfile: Path, owner_pid: int, idle_timeout: float) -> None:
    t_start = time.perf_counter()
    from dmnas.util.allocator import keep_freed_memory
    from dmnas.nas.trials.context import TrialContext
    from dmnas.nas.trials.proxies import prepare

    keep_freed_memory()
    ctx = TrialContext.load(ctx_path)
    prepared = prepare(ctx)  # once for every trial this worker runs
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        sock_path.unlink()
    server.bind(str(sock_path))
    server.listen(4)
    server.settimeout(1.0)
    pidfile.write_text(str(os.getpid()))
    started_s = time.perf_counter() - t_start
    log.info("worker %d ready in %.1fs (%s, owner %d)", os.getpid(), started_s, ctx_path, owner_pid)
    watch_owner(owner_pid)
    served, idle_since = 0, time.monotonic()
    try:
        while True:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                if not pid_alive(owner_pid):
                    log.info("owner %d is gone: exiting", owner_pid)
                    return
                if time.monotonic() - idle_since > idle_timeout:
                    log.info("idle for %.0fs: exiting", idle_timeout)
                    return
                continue
            with conn:
                conn.settimeout(None)
                served += serve_one(conn, ctx, prepared, served, started_s)
            idle_since = time.monotonic()
    finally:
        server.close()
        for path in (sock_path, pidfile):
            with contextlib.suppress(FileNotFoundError):
                if path != pidfile or path.read_text().strip() == str(os.getpid()):
                    path.unlink()


def watch_owner(owner_pid: int, poll_s: float = 1.0) -> threading.Thread:
    """A daemon thread that SIGTERMs this worker once ``owner_pid`` is gone, also mid-trial: a
    SIGKILLed search must not leave a worker training for minutes (the idle check above only runs
    between trials)."""

    def stop() -> None:
        log.info("owner %d is gone: stopping", owner_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    return when_gone(owner_pid, stop, poll_s, "owner-watch")


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    ap = argparse.ArgumentParser(description="dmnas warm worker (started by a search's trials)")
    ap.add_argument("--context", type=Path, required=True)
    ap.add_argument("--socket", type=Path, required=True)
    ap.add_argument("--pidfile", type=Path, required=True)
    ap.add_argument("--owner-pid", type=int, required=True)
    ap.add_argument("--idle-timeout", type=float, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    serve(args.context, args.socket, args.pidfile, args.owner_pid, args.idle_timeout)


if __name__ == "__main__":
    main()
