"""Warm workers, the light side: slots, sockets, starting and stopping workers, and the client a
thin NNI trial uses to have its architecture scored. Imports neither torch nor nni, so a trial
process starts in a fraction of a second (the heavy side is :mod:`dmnas.nas.trials.worker`).

One search folder's workers live in ``<folder>/workers/``. Slot ``k`` of a device (``cpu``, or the
GPUs NNI gave the trial in ``CUDA_VISIBLE_DEVICES``) is a lock file, a pid file, a log and a Unix
socket. A trial takes the first free slot's lock (waiting while all are busy), starts that slot's
worker if none answers, sends its parameters and relays what comes back; the lock is released
when the trial process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from dmnas.nas.processes import pid_alive
from dmnas.errors import DmnasError

log = logging.getLogger(__name__)

TRIAL_MODES = ("worker", "process")
IDLE_TIMEOUT_S = 120.0  # a worker nobody asks for this long exits (e.g. its search was SIGKILLed)
START_TIMEOUT_S = 300.0  # importing torch and loading the data on a loaded machine
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, fewer on others
WORKER_MODULE = "dmnas.nas.trials.worker"


# In worker mode NNI runs one trial more than there are workers per slot: it waits at its worker's
# lock and starts the moment the previous trial's result is in, so NNI's own launch and collection
# of a trial process (3.85 s per trial in process mode, 0.65 s in worker mode:
# benchmarks/results/trial_overhead.md) overlaps training.
WAITING_PER_WORKER = 1


def worker_slots(concurrency: int, use_gpu: bool, trials_per_gpu: int) -> int:
    """Workers per device key: ``concurrency`` on the CPU; on a GPU as many as share it."""
    return min(concurrency, trials_per_gpu) if use_gpu else concurrency


def nni_trials(workers: int) -> int:
    """NNI's concurrency (or per-GPU trial cap) for this many workers."""
    return workers * (1 + WAITING_PER_WORKER)


def trial_argv(context: Path, mode: str, workers: int, owner_pid: int) -> list[str]:
    """The local trial command of ``mode`` as an argument list: with ``sys.executable``, so NNI's
    PATH does not matter."""
    base = [sys.executable, "-m", "dmnas.nas.trials.adapter", "--context", str(context)]
    if mode == "process":
        return base
    return [*base, "--mode", "worker", "--workers", str(workers), "--owner-pid", str(owner_pid)]


def trial_command(context: Path, mode: str, workers: int, owner_pid: int) -> str:
    """:func:`trial_argv` as the one shell line NNI wants, every word quoted: a workdir or venv path
    with spaces, quotes, ``$`` or backticks stays one word and is never run."""
    return shlex.join(trial_argv(context, mode, workers, owner_pid))


def workers_dir(trial_folder: Path) -> Path:
    """Where the workers of the experiment whose context lives in ``trial_folder`` keep their state."""
    return Path(trial_folder) / "workers"


def device_key(environ: dict[str, str] | None = None) -> str:
    """The devices a trial was given: NNI sets ``CUDA_VISIBLE_DEVICES`` for GPU trials, and a worker
    keeps the devices it started with, so each GPU set has its own slots."""
    env = os.environ if environ is None else environ
    gpus = env.get("CUDA_VISIBLE_DEVICES")
    return "cpu" if gpus is None else "gpu" + (gpus.replace(",", "-") or "none")


@dataclass(frozen=True)
class Slot:
    folder: Path
    name: str  # e.g. "cpu-0"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"

    @property
    def pidfile(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    @property
    def socket(self) -> Path:
        path = self.folder / f"{self.name}.sock"
        if len(str(path.resolve())) <= SOCKET_PATH_MAX:
            return path
        # A deep search folder: the socket goes to a short temp path named after the folder.
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"dmnas-{os.getuid()}-{digest}.sock"


def slots(folder: Path, count: int, key: str) -> list[Slot]:
    return [Slot(folder, f"{key}-{i}") for i in range(max(1, count))]


@contextlib.contextmanager
def take_slot(candidates: list[Slot], poll_s: float = 0.02) -> Iterator[tuple[Slot, float]]:
    """Hold the first free slot's lock (waiting while all are busy); yields (slot, seconds waited).
    The lock is the kernel's: it is released when this process ends, even by SIGKILL."""
    candidates[0].folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    while True:
        for slot in candidates:
            handle = open(slot.lock, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield slot, time.perf_counter() - t0
            finally:
                handle.close()
            return
        time.sleep(poll_s)


def is_worker_process(pid: int) -> bool:
    """``pid`` is a dmnas worker (not a process that reused a dead worker's pid)."""
    try:
        return WORKER_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid_alive(pid) and not Path("/proc").is_dir()  # no /proc: trust the pid file


def read_pid(slot: Slot) -> int | None:
    try:
        return int(slot.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def connect(slot: Slot, timeout: float | None = None) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(slot.socket))
    except OSError:
        sock.close()
        return None
    sock.settimeout(timeout)
    return sock


def start_worker(slot: Slot, context: Path, owner_pid: int, idle_timeout: float = IDLE_TIMEOUT_S) -> int:
    """Start the slot's worker (in its own session, so a Ctrl-C meant for the search's terminal or
    NNI's SIGINT to a trial does not reach it) and return its pid once it answers on its socket."""
    with contextlib.suppress(FileNotFoundError):
        slot.socket.unlink()  # a dead worker's socket
    logf = open(slot.log, "ab")
    cmd = [
        sys.executable, "-m", WORKER_MODULE,
        "--context", str(context), "--socket", str(slot.socket), "--pidfile", str(slot.pidfile),
        "--owner-pid", str(owner_pid), "--idle-timeout", str(idle_timeout),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
    logf.close()
    slot.pidfile.write_text(str(proc.pid))  # at once: a search stopped while it starts still finds it
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DmnasError(f"the worker of slot {slot.name} exited at start (code {proc.returncode}); see {slot.log}")
        sock = connect(slot)
        if sock is not None:
            sock.close()
            return proc.pid
        time.sleep(0.05)
    proc.kill()
    raise DmnasError(f"the worker of slot {slot.name} did not answer within {START_TIMEOUT_S:.0f} s; see {slot.log}")


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


def messages(sock: socket.socket) -> Iterator[dict[str, Any]]:
    """Newline-delimited JSON messages until the peer closes."""
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def worker_exit_note(slot: Slot, pid: int | None) -> str:
    time.sleep(0.2)  # let a dying worker's last log lines land
    state = "still running" if pid and pid_alive(pid) else "gone"
    tail = ""
    with contextlib.suppress(OSError):
        lines = [ln for ln in slot.log.read_text(errors="replace").splitlines() if ln.strip()]
        tail = f"; its last log line: {lines[-1][:200]}" if lines else ""
    return f"worker pid {pid} ({state}); log {slot.log}{tail}"


def score_in_worker(
    params: dict[str, Any],
    trial_id: str,
    context: Path,
    count: int,
    owner_pid: int,
    on_intermediate: Callable[[float], None],
    extra_timings: dict[str, float],
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> dict[str, Any]:
    """Have a warm worker of this search score ``params``; returns the trial's final record.
    Raises DmnasError (with the worker's log) if the worker fails or dies mid-trial."""
    folder = workers_dir(context.parent)
    with take_slot(slots(folder, count, device_key())) as (slot, waited):
        t0 = time.perf_counter()
        sock = connect(slot)
        pid = read_pid(slot)
        started = 0.0
        if sock is None or pid is None or not pid_alive(pid):
            if sock is not None:
                sock.close()
            if pid is not None and pid_alive(pid) and is_worker_process(pid):
                os.kill(pid, signal.SIGKILL)  # alive but not answering: replace it
            pid = start_worker(slot, context, owner_pid, idle_timeout)
            started = time.perf_counter() - t0
            sock = connect(slot)
            if sock is None:
                raise DmnasError(f"the worker of slot {slot.name} stopped answering; {worker_exit_note(slot, pid)}")
        timings = {**extra_timings, "slot_wait": waited, "worker_start": started}
        with sock:
            send(sock, {"op": "score", "params": params, "trial_id": trial_id, "timings": timings})
            for msg in messages(sock):
                if msg["type"] == "intermediate":
                    on_intermediate(float(msg["value"]))
                elif msg["type"] == "final":
                    return msg["record"]
                elif msg["type"] == "error":
                    raise DmnasError(f"trial {trial_id} failed in worker {slot.name}: {msg['message']}")
        raise DmnasError(
            f"trial {trial_id}: the worker of slot {slot.name} died while scoring it; {worker_exit_note(slot, pid)}"
        )


def stop_workers(folder: Path, wait_s: float = 10.0) -> int:
    """SIGTERM every live worker of ``folder`` (then SIGKILL what is left after ``wait_s``); returns
    how many were stopped. Called when an experiment ends, however it ends."""
    pids = []
    for pidfile in sorted(Path(folder).glob("*.pid")):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if pid_alive(pid) and is_worker_process(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + wait_s
    while any(pid_alive(p) and is_worker_process(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid) and is_worker_process(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if pids:
        log.debug("stopped %d workers in %s", len(pids), folder)
    return len(pids)


def live_workers(folder: Path) -> list[int]:
    out = []
    for pidfile in Path(folder).glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if pid_alive(pid) and is_worker_process(pid):
                out.append(pid)
    return out
