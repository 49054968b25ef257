"""NNI's remote (SSH) training service for real: an sshd on a loopback port with a throw-away key,
and a `dmnas search` whose trials (proxy and full-data) run through it."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from cli_output import search_id  # noqa: E402

pytest.importorskip("nni")
pytestmark = [pytest.mark.nni, pytest.mark.slow]

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An sshd on 127.0.0.1 that accepts one throw-away key for the current user."""
    if not SSHD.is_file() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("openssh-server / openssh-client not installed (.ci/setup installs them)")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    remote_home = tmp_path / "remote_home"  # where NNI's worker writes (~/nni-experiments there)
    remote_home.mkdir()
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\n"  # NNI uploads the trial folder over SFTP
        f"PermitRootLogin prohibit-password\nPidFile {d / 'sshd.pid'}\nSetEnv HOME={remote_home}\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "sshd.log", "w"),  # noqa: SIM115 - closed with the process
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.skip(f"sshd did not start: {(d / 'sshd.log').read_text()[-500:]}")
    try:
        yield {"port": str(port), "key": str(d / "client_key"), "dir": str(d), "home": str(remote_home)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def dmnas(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the CLI; ``stdout`` of the result holds everything it said (report and log lines)."""
    proc = subprocess.run(
        [sys.executable, "-m", "dmnas", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    proc.stdout = proc.stdout + proc.stderr
    return proc


def machines_file(path: Path, sshd: dict[str, str], **extra: object) -> Path:
    machine = {
        "host": "127.0.0.1",
        "port": int(sshd["port"]),
        "user": getpass.getuser(),
        "ssh_key_file": sshd["key"],
        "python": sys.executable,
        **extra,
    }
    path.write_text(json.dumps({"known_hosts": str(Path(sshd["dir"]) / "known_hosts"), "machines": [machine]}))
    return path


def image_folder(root: Path) -> Path:
    """3 classes x 12 random 8x8 images: full-data trials take seconds."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / f"c{c}" / f"{i}.png")
    return root


def test_search_runs_its_trials_on_another_machine_over_ssh(
    nni_env: dict[str, str], sshd: dict[str, str], tmp_path: Path
) -> None:
    # The remote login has none of this environment: it finds the data through its data root.
    machines = machines_file(tmp_path / "machines.yaml", sshd, data_root=nni_env["DMNAS_DATA"])
    bad = machines_file(tmp_path / "bad.yaml", sshd, data_root=str(tmp_path / "nowhere"))
    space = tmp_path / "space.yaml"
    space.write_text("depth: {_type: choice, _value: [1, 2]}\nwidth: {_type: choice, _value: [4, 8]}\n")
    data = ["--dataset", f"imagefolder:{image_folder(tmp_path / 'imgs')}", "--image-size", "8"]
    proxy = ["--ipc", "2", "--iterations", "2", "--batch-real", "8", "--embed-arch", "d1_w8_relu_instancenorm_avgpooling",
             "--epochs", "4", "--full-epochs", "1"]  # fmt: skip
    common = ["--space", str(space), *data, *proxy, "--training-service", "remote", "--port", "18900"]

    # Checked over ssh before anything runs: one line naming the machine and the missing path.
    proc = dmnas(nni_env, "search", *common, "--machines", str(bad), timeout=300)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("dmnas: error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert f"127.0.0.1:{sshd['port']}" in errors[0] and "nowhere does not exist" in errors[0]

    gt = ["--ground-truth", "3", "--confirm", "1", "--full-seeds", "1", "--table", "none"]
    proc = dmnas(nni_env, "search", *common, "--machines", str(machines), *gt)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "machines: 1 ready" in out and "travels with the trials" in out
    assert "4 succeeded, 0 failed" in out and "ground truth (1 ep" in out
    assert "| dm ipc2 4ep (" in out  # the same report as a local search
    exp_id = search_id(out)
    work = Path(nni_env["DMNAS_WORKDIR"])
    results = json.loads((work / "searches" / exp_id / "results.json").read_text())
    assert len(results["trials"]) == 4 and all(t["record"] for t in results["trials"])
    # The trials ran in the remote login's folders and their records came back through NNI.
    assert list(Path(sshd["home"]).glob("nni-experiments/*/environments/*/trials/*/trial.stdout"))
    assert len(list((work / "searches" / exp_id / "trials").glob("*.json"))) == 4
    report = json.loads((work / "reports" / exp_id / "report.json").read_text())
    assert report["rows"][0]["estimate"]["n"] >= 3
    assert list((work / "ground_truth").rglob("*__seed0.json"))  # full-data results adopted here
