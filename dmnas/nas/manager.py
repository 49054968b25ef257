"""NNI's manager process on this machine: the port it gets (claimed, so that two dmnas searches
never share one), the address it listens on (NNI 3.0 binds every interface; dmnas preloads a
one-function patch so that it binds 127.0.0.1), and whose experiment answers on that port."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from dmnas.errors import DmnasError

log = logging.getLogger(__name__)


def port_is_free(port: int, host: str = "") -> bool:
    """Nothing listens on ``port`` on any interface (NNI's manager would bind them all)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def lock_dir() -> Path:
    """Per-machine folder of port claims (every user's dmnas looks in the same one)."""
    folder = Path(tempfile.gettempdir()) / "dmnas-ports"
    folder.mkdir(mode=0o1777, exist_ok=True)
    try:
        folder.chmod(0o1777)  # sticky and shared, like /tmp: anyone may claim, none may steal
    except OSError:
        pass
    return folder


@dataclass
class PortClaim:
    """A port this process holds (an exclusive lock on ``<tmp>/dmnas-ports/<port>.lock``) until it
    ends or :meth:`release`: two dmnas searches never pick the same port, even started together."""

    port: int
    handle: Any = None

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def try_claim(port: int) -> PortClaim | None:
    import fcntl

    path = lock_dir() / f"{port}.lock"
    handle = open(path, "a+")  # kept open: the lock lives as long as the handle
    try:
        os.chmod(path, 0o666)
    except OSError:
        pass
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    if not port_is_free(port):  # claimed by us, but something else (not dmnas) listens there
        handle.close()
        return None
    return PortClaim(port, handle)


def claim_port(port: int, tries: int = 50) -> PortClaim:
    """``port`` if free and unclaimed, else the next such one (the caller says so)."""
    if not 1024 <= port <= 65535:
        raise DmnasError(f"--port must be between 1024 and 65535, got {port}")
    for candidate in range(port, min(port + tries, 65536)):
        claim = try_claim(candidate)
        if claim is not None:
            return claim
    raise DmnasError(f"ports {port}..{port + tries - 1} are all in use; pick another with --port")


def choose_port(port: int, tries: int = 50) -> int:
    """A free port now (probed, not held): for callers that start something at once."""
    claim = claim_port(port, tries)
    claim.release()
    return claim.port


BIND_PRELOAD = Path(__file__).resolve().parent / "nni_patch" / "bind_host.js"


def manager_host(ui_host: str, remote: bool) -> str:
    """Where NNI's manager listens: --ui-host; a remote search also needs its workers to reach it,
    so there it listens on every interface (said in the log)."""
    if remote and ui_host not in ("0.0.0.0", ""):
        log.warning("remote search: NNI's manager listens on every interface (its workers connect back to it)")
        return "0.0.0.0"
    return ui_host or "0.0.0.0"


@contextlib.contextmanager
def manager_env(host: str) -> Iterator[None]:
    """NNI 3.0's REST server binds every interface; its manager (a Node.js process started by
    ``Experiment.start`` with this process's environment) preloads dmnas's one-function patch,
    which makes a port-only listen() use ``host``. The environment is restored right after."""
    if host == "0.0.0.0":
        yield
        return
    saved = {k: os.environ.get(k) for k in ("NODE_OPTIONS", "DMNAS_BIND_HOST")}
    os.environ["NODE_OPTIONS"] = f"{saved['NODE_OPTIONS'] or ''} --require {BIND_PRELOAD}".strip()
    os.environ["DMNAS_BIND_HOST"] = host
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def serving_experiment(port: int) -> str | None:
    """The id of the experiment whose manager answers on ``port`` (None: none answers)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/experiment", timeout=10) as r:
            return str(json.loads(r.read().decode()).get("id"))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def check_owner(port: int, exp_id: str) -> None:
    """NNI's launcher takes any manager answering on its port for the one it started; if ours
    failed to bind, another search's manager answers. Stop here, before touching it."""
    serving = serving_experiment(port)
    if serving != exp_id:
        raise DmnasError(
            f"port {port} is served by another NNI experiment ({serving or 'unknown'}), not {exp_id}: "
            "its manager could not bind the port; nothing was changed, start again with another --port"
        )


def stop_own_manager(exp: Any) -> None:
    """Stop the manager process this experiment started (if any) without a REST call, which could
    reach another experiment's manager on the same port."""
    proc = getattr(exp, "_proc", None)
    if proc is not None and getattr(proc, "poll", lambda: 0)() is None:
        proc.kill()
        proc.wait()
    exp._proc = None  # NNI's atexit stop() would otherwise send a REST "stop" to whoever holds the port
    exp.port = None
