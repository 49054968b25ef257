"""The fault-and-bad-input probe's cases, each as a test: paths a shell would misread, planted
symlinks, a SIGKILLed owner, two runs of one search, reports of searches without common truth,
wrong types through the Python API, read-only folders. Fast unit tests first; the real NNI
searches below them are marked slow (CI runs them)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dmnas
from dmnas.util.atomic import check_writable
from dmnas.errors import DmnasError

HOSTILE = 'my project/W $(touch PWNED) `touch PWNED2` "q" \'s\' é'


# --- 1. commands are argument lists, quoted once for NNI's shell


def test_trial_command_keeps_a_hostile_path_one_word(tmp_path: Path) -> None:
    from dmnas.nas.trials.warm_workers import trial_argv, trial_command

    context = tmp_path / HOSTILE / "context.json"
    for mode in ("worker", "process"):
        line = trial_command(context, mode, 2, 123)
        assert shlex.split(line) == trial_argv(context, mode, 2, 123)
        out = subprocess.run(["bash", "-c", f"set -- {line}; printf '%s\\n' \"$5\""], cwd=tmp_path,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert out.stdout.strip() == str(context)
    assert not list(tmp_path.glob("PWNED*"))


def test_remote_trial_command_never_expands_a_python_path(tmp_path: Path) -> None:
    from dmnas.nas.remote import MachineList, remote_trial_command

    class Fake(MachineList):  # only the interpreters matter here
        def __init__(self) -> None:
            pass

        def pythons(self) -> list[str]:
            return [f"{tmp_path}/v $(touch {tmp_path}/PWNED)/bin/python"]

    subprocess.run(["bash", "-c", remote_trial_command(Fake())], cwd=tmp_path, capture_output=True)
    assert not (tmp_path / "PWNED").exists()


def test_node_require_quotes_a_path_with_spaces_and_quotes() -> None:
    from dmnas.nas.nni.manager import node_require

    assert node_require(Path('/a b/c"d\\e.js')) == '--require "/a b/c\\"d\\\\e.js"'


def test_manager_preload_quotes_the_tuner_command(tmp_path: Path) -> None:
    """NNI runs its tuner as spawn(python, args, {shell: true}); with the preload a path with a
    space and a `$(...)` stays one word and is not run."""
    nni_node = next(Path(p) for p in sys.path if (Path(p) / "nni_node" / "node").exists()) / "nni_node" / "node"
    from dmnas.nas.nni.manager import MANAGER_PRELOAD

    script = tmp_path / "spawn.js"
    target = tmp_path / "my dir $(touch PWNED)"
    target.mkdir()
    (target / "echo").write_text("#!/bin/sh\nprintf '%s|' \"$@\"\n")
    (target / "echo").chmod(0o755)
    script.write_text(
        "const cp = require('child_process');\n"
        f"const p = cp.spawn({json.dumps(str(target / 'echo'))}, ['-m', 'a b'], {{shell: true}});\n"
        "p.stdout.on('data', d => process.stdout.write(d));\n"
    )
    env = dict(os.environ, NODE_OPTIONS=f'--require "{MANAGER_PRELOAD}"')
    out = subprocess.run([str(nni_node), str(script)], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert out.stdout == "-m|a b|", (out.stdout, out.stderr)
    assert not (tmp_path / "PWNED").exists()


# --- 2. port locks: private folder, no symlink followed, nothing chmodded, nothing left behind


def test_port_lock_never_follows_a_symlink_nor_changes_a_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmnas.nas.nni import manager

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = manager.lock_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    victim = tmp_path / "victim.txt"
    victim.write_text("secret")
    victim.chmod(0o600)
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    (folder / f"{port}.lock").symlink_to(victim)
    assert manager.try_claim(port) is None  # refused, not followed
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600 and victim.read_text() == "secret"
    (folder / f"{port}.lock").unlink()
    claim = manager.try_claim(port)
    assert claim is not None and (folder / f"{port}.lock").exists()
    assert manager.try_claim(port) is None  # held
    claim.release()
    assert not (folder / f"{port}.lock").exists()  # no lock files pile up


def test_a_lock_folder_open_to_others_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmnas.nas.nni import manager

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "dmnas-ports").mkdir(mode=0o777)
    (tmp_path / "dmnas-ports").chmod(0o777)
    with pytest.raises(DmnasError, match="not a private folder"):
        manager.lock_dir()


def test_a_lock_folder_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dmnas.nas.nni import manager

    if os.getuid() != 0:
        pytest.skip("making a folder owned by another user needs root")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "dmnas-ports").mkdir(mode=0o700)
    os.chown(tmp_path / "dmnas-ports", 65534, 65534)
    with pytest.raises(DmnasError, match="not a private folder"):
        manager.lock_dir()


def test_time_wait_sockets_do_not_make_a_port_busy() -> None:
    from dmnas.nas.nni.manager import port_is_free

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Node.js (NNI's manager) listens
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.listen(1)
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the side that closes first keeps TIME-WAIT
    client.close()
    server.close()
    assert port_is_free(port)


# --- 4. one run per search


def test_a_running_search_cannot_be_run_twice(tmp_path: Path) -> None:
    from dmnas.nas.folder import lock_search

    held = lock_search(tmp_path)
    with pytest.raises(DmnasError, match=f"still running \\(pid {os.getpid()}\\)"):
        lock_search(tmp_path)
    held.close()
    lock_search(tmp_path).close()  # free again once its holder is gone


# --- 5. paired comparisons with nothing in common


def test_paired_delta_without_common_architectures_is_nan() -> None:
    import numpy as np

    from dmnas.reporting.stats import paired_delta

    d = paired_delta(np.array([]), np.array([]), np.array([]))
    assert d.n == 0 and np.isnan(d.delta)


# --- 6. read-only and unusable folders: one line before any work


def test_unwritable_folders_are_refused_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DmnasError, match="is not a folder"):
        check_writable(a_file / "work", "--workdir")
    check_writable(tmp_path / "new" / "deeper", "--workdir")  # judged by its parent, created by nobody
    assert not (tmp_path / "new").exists()

    import tempfile

    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(DmnasError, match="--workdir .* is not writable \\(Read-only file system\\)"):
        check_writable(tmp_path, "--workdir")


def test_a_read_only_workdir_is_refused_by_the_cli(tmp_path: Path) -> None:
    if os.getuid() == 0:
        pytest.skip("root writes into a 0555 folder")
    work = tmp_path / "ro"
    work.mkdir(mode=0o555)
    out = subprocess.run(
        [sys.executable, "-m", "dmnas", "search", "--space", "convnet_tiny", "--workdir", str(work)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "not writable" in out.stderr and "Traceback" not in out.stderr


# --- 7. wrong types through the Python API: one DmnasError, nothing written


@pytest.mark.parametrize(
    "call, kwargs, message",
    [
        ("condense", {"ipc": 1.5}, "--ipc must be an integer"),
        ("condense", {"lr_img": "x"}, "--lr-img must be a finite number"),
        ("condense", {"lr_img": float("nan")}, "--lr-img must be a finite number"),
        ("condense", {"iterations": 2.5}, "--iterations must be an integer"),
        ("condense", {"seed": True}, "--seed must be an integer"),
        ("search", {"concurrency": "2"}, "--concurrency must be an integer"),
        ("search", {"max_trials": 1.5}, "--max-trials must be an integer"),
        ("search", {"epochs": 1.5}, "--epochs must be an integer"),
        ("search", {"port": "8080"}, "--port must be an integer"),
    ],
)
def test_api_rejects_wrong_types_before_any_work(
    call: str, kwargs: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DMNAS_CACHE", str(tmp_path / "cache"))
    args = {"space": "convnet_tiny", "workdir": tmp_path / "work", **kwargs} if call == "search" else kwargs
    with pytest.raises(DmnasError, match=message):
        getattr(dmnas, call)(**args)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# --- 8. messages that point the right way


def test_a_zombie_worker_is_not_still_running() -> None:
    from dmnas.nas.processes import pid_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(100):
        if Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.05)
    assert not pid_alive(child.pid)  # exited, not yet reaped
    child.wait()


def test_interrupt_hint_names_the_right_way_to_continue() -> None:
    from dmnas.cli import RESUME_HINT

    assert "--resume" in RESUME_HINT["search"]
    assert "rerun the same command" in RESUME_HINT["condense"]


def test_duration_parsing() -> None:
    from dmnas.nas.config import duration_seconds

    assert duration_seconds("5s") == 5 and duration_seconds("1.5m") == 90 and duration_seconds("2h") == 7200


# --- 11. smaller points


def test_a_table_folder_without_manifest_is_refused(tmp_path: Path) -> None:
    from dmnas.groundtruth.tables import table_stores

    with pytest.raises(DmnasError, match="nor a folder with table.json"):
        table_stores([str(tmp_path)])


def test_invalid_machines_yaml_is_one_line(tmp_path: Path) -> None:
    from dmnas.nas.remote import load_machines

    bad = tmp_path / "m.yaml"
    bad.write_text("machines:\n  - host: [a\n")
    with pytest.raises(DmnasError) as err:
        load_machines(bad)
    assert "\n" not in str(err.value) and "line" in str(err.value)


def test_cache_rm_leaves_a_foreign_partial_folder_alone(tmp_path: Path) -> None:
    from dmnas.condensation.cache import Cache

    cache = Cache(tmp_path)
    key = "0123456789abcdef"
    partial = cache.partial_dir(key)
    partial.mkdir(parents=True)
    (partial / "thesis.tex").write_text("years of work")
    with pytest.raises(DmnasError, match="left alone"):
        cache.remove(key)
    assert (partial / "thesis.tex").exists()


# --- real NNI searches (slow)

QUICK = ["--space", "convnet_tiny", "--proxy", "random", "--ipc", "2", "--epochs", "1", "--table", "none"]


def run_dmnas(env: dict[str, str], cwd: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dmnas", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def search_id_of(stderr: str) -> str:
    return next(ln.split("NNI experiment ")[1].split(":")[0] for ln in stderr.splitlines() if "NNI experiment " in ln)


@pytest.mark.slow
@pytest.mark.nni
def test_hostile_workdir_and_venv_path_search_and_report_side_by_side(nni_env: dict[str, str], tmp_path: Path) -> None:
    """1, 5, 10: a workdir with spaces, quotes, `$(...)`, backticks and non-ASCII, run through a venv
    whose path has a space; two searches in a row on one port keep the port; `report A B` and
    `report A A` work."""
    project = tmp_path / HOSTILE
    project.mkdir(parents=True)
    venv = tmp_path / "my venv"
    venv.symlink_to(Path(sys.prefix))  # the same environment, reached through a path with a space
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in nni_env.items() if k != "DMNAS_WORKDIR"}
    ids = []
    for _ in range(2):
        out = subprocess.run([python, "-m", "dmnas", "search", *QUICK, "--max-trials", "2", "--port", "18721",
                              "--workdir", "W"], env=env, cwd=project, capture_output=True, text=True, timeout=400)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        assert "2 succeeded, 0 failed" in out.stderr and "is in use" not in out.stderr
        ids.append(search_id_of(out.stderr))
    assert not list(tmp_path.rglob("PWNED*"))
    for pair in (ids, [ids[0], ids[0]]):
        out = subprocess.run([python, "-m", "dmnas", "report", *pair, "--workdir", "W"], env=env, cwd=project,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
    report = dmnas.report(*ids, workdir=project / "W")
    assert report is not None


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append(f"{proc.name} {cmd[:160]}")
    return found


def is_nni_manager(pid: int) -> bool:
    try:
        return b"nni_node" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def nni_manager_pids(home: str) -> list[int]:
    index = Path(home) / "nni-experiments" / ".experiment"
    if not index.exists():
        return []
    return [int(e["pid"]) for e in json.loads(index.read_text()).values() if e.get("pid")]


@pytest.mark.slow
@pytest.mark.nni
def test_sigkill_of_a_search_leaves_no_manager_and_no_worker(nni_env: dict[str, str], tmp_path: Path) -> None:
    """3, 4: while it runs, `--resume ID` is refused in one line; after SIGKILL neither NNI's manager
    nor a worker outlives it by more than 10 s; `dmnas view ID` then answers in one line."""
    work = tmp_path / "work"
    env = dict(nni_env, DMNAS_WORKDIR=str(work))
    proc = subprocess.Popen([sys.executable, "-m", "dmnas", "search", *QUICK, "--epochs", "400", "--max-trials", "6",
                             "--concurrency", "2", "--port", "18731"], env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    search = None
    assert proc.stderr is not None
    deadline = time.time() + 300
    for line in proc.stderr:
        if "NNI experiment " in line and search is None:
            search = line.split("NNI experiment ")[1].split(":")[0]
        if " running" in line or time.time() > deadline:
            break
    assert search is not None
    time.sleep(2)
    # 4. a second run of the same search is refused before it touches anything
    meta_before = (work / "searches" / search / "search.json").read_text()
    again = run_dmnas(env, tmp_path, "search", "--resume", search, "--port", "18741", timeout=120)
    assert again.returncode == 2 and "still running" in again.stderr, again.stderr
    assert len([ln for ln in again.stderr.splitlines() if ln.startswith("dmnas: error")]) == 1
    assert (work / "searches" / search / "search.json").read_text() == meta_before  # not marked resumed
    managers = [p for p in nni_manager_pids(env["HOME"]) if Path(f"/proc/{p}").exists()]
    assert managers, "NNI's manager should be running"
    assert processes_mentioning(str(work)), "trials or workers should be running"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    while time.time() - t0 < 10 and (processes_mentioning(str(work)) or any(map(is_nni_manager, managers))
                                     or processes_mentioning("dmnas.nas.nni.guard")):  # fmt: skip
        time.sleep(0.5)
    assert not processes_mentioning(str(work)), processes_mentioning(str(work))
    assert not [p for p in managers if is_nni_manager(p)], "NNI's manager outlived its owner"
    assert not processes_mentioning("dmnas.nas.nni.guard"), "NNI's tuner outlived its manager"
    # the killed experiment reopens read-only, or says in one line why not; never a traceback
    # SIGINT acts as Ctrl-C even when the suite runs from a backgrounded shell (conftest.start_dmnas)
    view = subprocess.Popen([sys.executable, "-m", "dmnas", "view", search, "--port", "18751"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        seen = wait_for_line(view, ("http://", "dmnas: error"), 120)
    finally:
        view.send_signal(signal.SIGINT)
        view.wait(timeout=60)
    assert "Traceback" not in seen and ("http://" in seen or seen.count("dmnas: error") == 1), seen


def wait_for_line(proc: subprocess.Popen[str], needles: tuple[str, ...], seconds: float) -> str:
    seen = ""
    deadline = time.time() + seconds
    assert proc.stdout is not None
    for line in proc.stdout:
        seen += line
        if any(n in line for n in needles) or time.time() > deadline:
            break
    return seen


def test_the_tuner_guard_exits_when_its_manager_is_gone(tmp_path: Path) -> None:
    """A manager killed outright must not leave NNI's tuner answering the next experiment on its port."""
    manager = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # a stand-in for NNI's tuner that would otherwise run for a minute
    code = f"import time; from dmnas.nas.nni.guard import exit_with; exit_with({manager.pid}); time.sleep(60)"
    tuner = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(1.0)
    assert tuner.poll() is None  # alive while its manager is
    manager.kill()
    manager.wait()
    assert tuner.wait(timeout=10) == 0


@pytest.mark.slow
@pytest.mark.nni
def test_max_duration_stops_the_running_trials_and_says_so(nni_env: dict[str, str], tmp_path: Path) -> None:
    """9: the limit ends the search, its running trials included, and the user is told."""
    env = dict(nni_env, DMNAS_WORKDIR=str(tmp_path / "work"))
    t0 = time.time()
    out = run_dmnas(env, tmp_path, "search", *QUICK, "--epochs", "3000", "--max-trials", "4", "--max-duration", "20s",
                    "--port", "18771", timeout=300)  # fmt: skip
    took = time.time() - t0
    assert "stopped by --max-duration 20s" in out.stderr, out.stderr[-2000:]
    assert took < 150, f"the search ran {took:.0f} s past a 20 s limit"
    assert not processes_mentioning(str(tmp_path / "work"))


def test_a_data_error_leaves_no_workdir_behind(tmp_path: Path) -> None:
    """11: a search refused before any work creates nothing."""
    work = tmp_path / "work"
    out = subprocess.run([sys.executable, "-m", "dmnas", "search", "--space", "convnet_tiny", "--dataset",
                          f"imagefolder:{tmp_path / 'missing'}", "--workdir", str(work)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("dmnas: error") == 1, out.stderr
    assert not work.exists()
