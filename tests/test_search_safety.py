"""Searches that share a machine: ports claimed, not probed; a web UI that is not open to the network;
an exit status that tells the truth. Real NNI experiments on a tiny space."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("nni")
pytestmark = [pytest.mark.nni, pytest.mark.slow]

from cli_output import search_id  # noqa: E402

QUICK = ["--space", "convnet_tiny", "--proxy", "random", "--ipc", "2", "--epochs", "2", "--table", "none"]


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the TCP sockets listening on ``port``, read from /proc (no traffic is sent:
    a connection to the machine's own network address would leave the loopback range)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.split(":")
                if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                    if width == 32:  # IPv6: only the two addresses this test tells apart
                        found.add("::" if int(addr, 16) == 0 else "::1" if addr.endswith("01000000") else addr)
                    else:
                        found.add(".".join(str(int(addr[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def wait_for_running(proc: subprocess.Popen[str], seconds: float = 300) -> list[str]:
    seen: list[str] = []
    deadline = time.time() + seconds
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if "running" in line or time.time() > deadline:
            break
    return seen


@pytest.mark.parametrize("ui_host, expected", [(None, {"127.0.0.1"}), ("0.0.0.0", {"0.0.0.0", "::"})])
def test_web_ui_listens_on_loopback_unless_asked(
    nni_env: dict[str, str], start_dmnas: Callable[..., subprocess.Popen[str]], ui_host: str | None, expected: set[str]
) -> None:
    port = 18950 if ui_host is None else 18960
    extra = [] if ui_host is None else ["--ui-host", ui_host]
    proc = start_dmnas(nni_env, "search", *QUICK, "--epochs", "20000", "--port", str(port), *extra)
    try:
        wait_for_running(proc)
        found = listening_addresses(port)
        # every interface: 0.0.0.0 or, dual-stack, ::
        assert found and found <= expected, found
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)


def test_two_searches_on_one_port_finish_apart(nni_env: dict[str, str]) -> None:
    """Started together on the same port and workdir: each claims its own port, talks only to its
    own experiment and finishes with its own report; nothing is left running."""
    argv = [sys.executable, "-m", "dmnas", "search", *QUICK, "--max-trials", "2", "--port", "18970"]
    procs = [subprocess.Popen(argv, env=nni_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    ids = [search_id(out) for out, _ in outs]
    assert len(set(ids)) == 2
    work = Path(nni_env["DMNAS_WORKDIR"])
    urls = set()
    for i in ids:
        results = json.loads((work / "searches" / i / "results.json").read_text())
        assert results["succeeded"] == 2 and results["failed"] == 0 and results["experiment"] == i
        urls.add(results["url"])
        assert (work / "reports" / i / "report.json").is_file()
    assert len(urls) == 2  # two ports
    for _, err in outs:
        assert "Traceback" not in err
    time.sleep(2)
    left = subprocess.run(["pgrep", "-f", str(work)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes left behind: {left}"


def test_a_search_whose_trials_all_fail_exits_non_zero(nni_env: dict[str, str], tmp_path: Path) -> None:
    """Every trial killed mid-run: nothing to rank, so the search says so and exits 2."""
    work = nni_env["DMNAS_WORKDIR"]
    pattern = f"dmnas.nas.trials.adapter --context {work}"
    stop = threading.Event()

    def kill_trials() -> None:
        while not stop.is_set():
            found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
            for pid in map(int, found):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    killer = threading.Thread(target=kill_trials, daemon=True)
    killer.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dmnas", "search", *QUICK, "--max-trials", "2", "--port", "18980"],
            env=nni_env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        stop.set()
        killer.join(timeout=10)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("dmnas: error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
    assert "too few to rank" in errors[0] and "see " in errors[0]
