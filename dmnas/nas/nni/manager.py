"""NNI's manager process on this machine: the port it gets (claimed, so that two dmnas searches
never share one), the address it listens on (NNI 3.0 binds every interface; dmnas preloads a
one-function patch so that it binds 127.0.0.1), and whose experiment answers on that port."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from dmnas.errors import DmnasError
from dmnas.util.locks import open_lock

log = logging.getLogger(__name__)


def port_is_free(port: int, host: str = "") -> bool:
    """Nothing listens on ``port`` on any interface (NNI's manager would bind them all). With
    SO_REUSEADDR, as NNI's own server binds: the TIME-WAIT sockets an earlier search left on the
    port do not count as busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def lock_dir() -> Path:
    """This user's private folder of port claims: ``$XDG_RUNTIME_DIR/dmnas-ports`` or
    ``<tmp>/dmnas-ports-<uid>``, mode 0700. A folder another user could have made (a symlink, not
    ours, open to others) is refused rather than used: lock files in it could point anywhere."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
    folder = base / ("dmnas-ports" if runtime and base == Path(runtime) else f"dmnas-ports-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise DmnasError(
            f"port lock folder {folder} is not a private folder of this user (a symlink, another owner, "
            "or open to others); remove it or set XDG_RUNTIME_DIR to a private folder"
        )
    return folder


@dataclass
class PortClaim:
    """A port this process holds (an exclusive lock on ``<lock_dir>/<port>.lock``) until it ends or
    :meth:`release`: two dmnas searches never pick the same port, even started together."""

    port: int
    handle: Any = None
    path: Path | None = None

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def release(self) -> None:
        if self.handle is not None:
            if self.path is not None:  # removed while still locked: no lock files pile up
                with contextlib.suppress(OSError):
                    self.path.unlink()
            self.handle.close()
            self.handle = None


def try_claim(port: int) -> PortClaim | None:
    path = lock_dir() / f"{port}.lock"
    try:
        handle = open_lock(path)
    except OSError as err:  # e.g. ELOOP: a symlink planted at the lock's name
        log.warning("port %d: lock file %s not usable (%s); trying the next port", port, path, err.strerror)
        return None
    if handle is None:
        return None
    claim = PortClaim(port, handle, path)
    if not port_is_free(port):  # claimed by us, but something else (not dmnas) listens there
        claim.release()
        return None
    return claim


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


MANAGER_PRELOAD = Path(__file__).resolve().parent / "patch" / "manager_preload.js"
MANAGER_ENV_KEYS = ("NODE_OPTIONS", "DMNAS_BIND_HOST", "DMNAS_OWNER_PID")


def manager_host(ui_host: str, remote: bool) -> str:
    """Where NNI's manager listens: --ui-host; a remote search also needs its workers to reach it,
    so there it listens on every interface (said in the log)."""
    if remote and ui_host not in ("0.0.0.0", ""):
        log.warning("remote search: NNI's manager listens on every interface (its workers connect back to it)")
        return "0.0.0.0"
    return ui_host or "0.0.0.0"


def node_require(path: Path) -> str:
    """``--require PATH`` for NODE_OPTIONS, which splits on spaces unless a value is double-quoted
    (backslash escapes inside): a package installed under "my project/" still loads."""
    quoted = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'--require "{quoted}"'


def manager_environ(host: str, owner_pid: int, base: dict[str, str | None]) -> dict[str, str | None]:
    """The variables NNI's manager is started with (None: unset): dmnas's preload, the address to
    bind (none for every interface) and the process whose death stops the manager."""
    return {
        "NODE_OPTIONS": f"{base.get('NODE_OPTIONS') or ''} {node_require(MANAGER_PRELOAD)}".strip(),
        "DMNAS_BIND_HOST": None if host == "0.0.0.0" else host,
        "DMNAS_OWNER_PID": str(owner_pid),
    }


@contextlib.contextmanager
def manager_env(host: str) -> Iterator[None]:
    """NNI's manager is a Node.js process started by ``Experiment.start`` with this process's
    environment; it preloads dmnas's patch (``patch/manager_preload.js``: bind ``host``, quote the
    tuner's command, stop when this process is gone). The
    environment is restored right after."""
    saved = {k: os.environ.get(k) for k in MANAGER_ENV_KEYS}
    for key, value in manager_environ(host, os.getpid(), saved).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
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
