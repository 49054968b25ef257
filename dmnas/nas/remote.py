"""Other machines for NNI's remote (SSH) training service: the ``machines.yaml`` file, the checks
made before NNI starts, and the trial command that finds each machine's own interpreter.

NNI itself only needs host, user and a key; what a dmnas trial needs besides is on the machine:
a Python that imports dmnas (and the same NNI as here), and the dataset under a data root. Each
is checked over ``ssh`` before the experiment starts, one line per problem, because NNI's own
failure for any of them is a trial that never reports or a worker stuck in its log.
"""

from __future__ import annotations

import json
import logging
import shlex
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dmnas.errors import DmnasError

log = logging.getLogger(__name__)

MACHINE_KEYS = {"host", "port", "user", "ssh_key_file", "python", "gpus", "data_root"}
TOP_KEYS = {"machines", "manager_ip", "known_hosts"}
SSH_TIMEOUT_S = 20


@dataclass(frozen=True)
class Machine:
    """One SSH worker. ``python`` is the interpreter's absolute path there (NNI's ``python_path``,
    the folder, is derived from it): a bare ``python3`` can resolve to another environment."""

    host: str
    user: str
    python: str
    port: int = 22
    ssh_key_file: str = "~/.ssh/id_rsa"
    gpus: tuple[int, ...] = ()
    data_root: str | None = None  # dmnas's data folder there (default: that machine's own default)

    @property
    def label(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class MachineList:
    machines: tuple[Machine, ...]
    path: Path
    manager_ip: str | None = None  # the address the machines reach this one at
    known_hosts: str | None = None  # ssh's known_hosts file for these machines (default: ssh's own)

    def data_roots(self) -> tuple[str, ...]:
        """Every machine's data root, "" (the machine's default) last: a trial takes the first
        that exists where it runs."""
        roots = [m.data_root for m in self.machines if m.data_root]
        return tuple(dict.fromkeys(roots)) + (("",) if len(roots) < len(self.machines) else ())

    @property
    def use_gpu(self) -> bool:
        return bool(self.machines[0].gpus)

    def pythons(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.python for m in self.machines))


def _machine(raw: Any, index: int, path: Path) -> Machine:
    where = f"{path}: machine {index + 1}"
    if not isinstance(raw, dict):
        raise DmnasError(f"{where} is not a mapping (host, user, python, ...)")
    if "password" in raw or "password_env" in raw:
        # NNI 3.0 hands a password to its web UI in plain text (its own warning says so), wherever
        # dmnas would read it from: keys only. `ssh-copy-id -i KEY user@host` needs the password once.
        raise DmnasError(
            f"{where}: SSH passwords are not supported (NNI 3.0 shows them in plain text in its web UI); "
            "give ssh_key_file (install the key there once with `ssh-copy-id -i KEY user@host`)"
        )
    unknown = set(raw) - MACHINE_KEYS
    if unknown:
        raise DmnasError(
            f"{where}: unknown key(s) {sorted(unknown)}; valid: {', '.join(sorted(MACHINE_KEYS))}"
        )
    missing = [k for k in ("host", "user", "python") if not raw.get(k)]
    if missing:
        raise DmnasError(f"{where}: missing {', '.join(missing)}")
    python = str(raw["python"])
    if not python.startswith("/"):
        raise DmnasError(
            f"{where}: python must be the interpreter's absolute path on that machine, got {python!r}"
        )
    port = raw.get("port", 22)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise DmnasError(f"{where}: port must be an integer in 1..65535, got {port!r}")
    gpus = raw.get("gpus") or []
    if not isinstance(gpus, list) or not all(isinstance(g, int) and g >= 0 for g in gpus):
        raise DmnasError(f"{where}: gpus must be a list of GPU indices, got {gpus!r}")
    key = str(Path(str(raw.get("ssh_key_file") or "~/.ssh/id_rsa")).expanduser())
    if not Path(key).is_file():
        raise DmnasError(f"{where}: ssh_key_file {key} does not exist")
    return Machine(
        host=str(raw["host"]),
        user=str(raw["user"]),
        python=python,
        port=port,
        ssh_key_file=key,
        gpus=tuple(gpus),
        data_root=str(raw["data_root"]) if raw.get("data_root") else None,
    )


def load_machines(path: Path) -> MachineList:
    """Parse and check the shape of a machines file (nothing is contacted yet)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise DmnasError(f"--machines {path} does not exist") from None
    except OSError as err:
        raise DmnasError(f"cannot read --machines {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:  # PyYAML's message spans several lines: keep where and what
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DmnasError(f"--machines {path} is not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(raw, dict) or not raw.get("machines"):
        raise DmnasError(f"{path}: expected a 'machines:' list (see the README's 'Across machines')")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise DmnasError(f"{path}: unknown key(s) {sorted(unknown)}; valid: {', '.join(sorted(TOP_KEYS))}")
    if not isinstance(raw["machines"], list):
        raise DmnasError(f"{path}: 'machines' must be a list")
    machines = tuple(_machine(m, i, path) for i, m in enumerate(raw["machines"]))
    if len({bool(m.gpus) for m in machines}) > 1:
        # NNI asks every trial for a GPU or none: a machine without one would never get a trial.
        raise DmnasError(f"{path}: give gpus for every machine or for none")
    known = raw.get("known_hosts")
    return MachineList(
        machines, Path(path), raw.get("manager_ip"), str(Path(str(known)).expanduser()) if known else None
    )


def manager_ip(machines: MachineList) -> str:
    """The address NNI's workers connect back to: the file's ``manager_ip``, 127.0.0.1 when every
    machine is this one, else the local address that routes to the first machine."""
    if machines.manager_ip:
        return str(machines.manager_ip)
    if all(m.host in ("127.0.0.1", "localhost", "::1") for m in machines.machines):
        return "127.0.0.1"
    first = machines.machines[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((first.host, first.port))  # UDP: nothing is sent, only the route is chosen
            return s.getsockname()[0]
        except OSError as err:
            raise DmnasError(f"machine {first.label}: no route to it ({err.strerror})") from None


def nni_machine_list(machines: MachineList, per_gpu: list[int] | None = None) -> list[Any]:
    """NNI's ``RemoteMachineConfig`` list (NNI's ``python_path`` is the interpreter's folder);
    ``per_gpu``: each machine's ``max_trial_number_per_gpu`` (GPU machines)."""
    from nni.experiment.config import RemoteMachineConfig

    shares = per_gpu or [1] * len(machines.machines)
    return [
        RemoteMachineConfig(
            host=m.host,
            port=m.port,
            user=m.user,
            ssh_key_file=m.ssh_key_file,
            python_path=str(Path(m.python).parent),
            gpu_indices=list(m.gpus) or None,
            use_active_gpu=bool(m.gpus),
            max_trial_number_per_gpu=share,
        )
        for m, share in zip(machines.machines, shares, strict=True)
    ]


def remote_trial_command(machines: MachineList, context: str = "context.json") -> str:
    """One bash command for every machine (NNI has one trial command): each machine's interpreter
    is tried in the file's order and the first that imports dmnas runs the trial, so machines
    with different Python paths share the experiment."""
    pythons = " ".join(shlex.quote(p) for p in machines.pythons())
    return (
        f'for py in {pythons}; do if [ -x "$py" ] && "$py" -c "import dmnas" 2>/dev/null; then '
        f'exec "$py" -m dmnas.nas.trials.adapter --context {shlex.quote(context)}; fi; done; '
        # the list stays outside the double quotes: a quoted path with `$(...)` is never expanded
        f'echo "dmnas: no Python with dmnas on $(hostname) among:" {pythons} >&2; exit 1'
    )


# What each machine is asked (run with its own interpreter): versions, and the dataset's fingerprint
# under its data root -- the same split and images as here, or the ranks would not be comparable.
PROBE = """
import json, sys
out = {"python": sys.version.split()[0]}
try:
    import dmnas, nni, torch
    out.update(dmnas=dmnas.__version__, nni=nni.__version__, torch=torch.__version__,
               cuda=torch.cuda.device_count())
    from pathlib import Path
    from dmnas.data import DataConfig, load_dataset
    spec = json.loads(sys.argv[1])
    root = spec["root"]
    if root and not Path(root).is_dir():
        out["data_error"] = f"{root} does not exist"
    else:
        try:
            out["fingerprint"] = load_dataset(DataConfig(**spec["data"]), Path(root) if root else None).fingerprint
        except Exception as err:
            out["data_error"] = (str(err).splitlines() or [repr(err)])[0][:300]
except ImportError as err:
    out["import_error"] = str(err)
print("DMNAS_PROBE " + json.dumps(out))
"""


def ssh_argv(m: Machine, known_hosts: str | None = None) -> list[str]:
    argv = [
        "ssh",
        "-p",
        str(m.port),
        "-o",
        f"ConnectTimeout={SSH_TIMEOUT_S}",
        "-o",
        "StrictHostKeyChecking=accept-new",
    ]
    if known_hosts:
        argv += ["-o", f"UserKnownHostsFile={known_hosts}"]
    # BatchMode: never prompt (a prompt would hang the check); the key alone must do.
    argv += ["-i", m.ssh_key_file, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
    return argv + [f"{m.user}@{m.host}"]


def probe_machine(
    m: Machine, data: dict[str, Any], fingerprint: str, local_nni: str, known_hosts: str | None = None
) -> list[str]:
    """Problems with one machine, each one line naming it (empty: ready)."""
    try:
        with socket.create_connection((m.host, m.port), timeout=SSH_TIMEOUT_S):
            pass
    except OSError as err:
        return [f"machine {m.label}: unreachable ({err.strerror or err})"]
    spec = json.dumps({"data": data, "root": m.data_root or ""})
    remote = f"{shlex.quote(m.python)} -c {shlex.quote(PROBE)} {shlex.quote(spec)}"
    try:
        proc = subprocess.run(
            [*ssh_argv(m, known_hosts), remote],
            capture_output=True,
            text=True,
            timeout=SSH_TIMEOUT_S + 120,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return [f"machine {m.label}: no answer over ssh within {SSH_TIMEOUT_S + 120} s"]
    except FileNotFoundError:
        return ["the ssh client is not installed here (Debian: apt-get install openssh-client)"]
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DMNAS_PROBE ")), None)
    if line is None:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        if proc.returncode == 255:
            return [f"machine {m.label}: ssh failed ({err})"]
        return [f"machine {m.label}: {m.python} did not run ({err})"]
    found = json.loads(line.split(" ", 1)[1])
    if "import_error" in found:
        return [
            f"machine {m.label}: {m.python} cannot import what trials need ({found['import_error']}); "
            "install dmnas there (pip install <this checkout> or the same wheel)"
        ]
    problems = []
    if found.get("nni") != local_nni:
        problems.append(f"machine {m.label}: NNI {found.get('nni')} there, {local_nni} here; they must match")
    if "data_error" in found:
        problems.append(
            f"machine {m.label}: no dataset under data root {m.data_root or '(its default)'}: "
            f"{found['data_error']} (set this machine's data_root in the machines file)"
        )
    elif found.get("fingerprint") != fingerprint:
        problems.append(
            f"machine {m.label}: its dataset differs from this machine's (fingerprint "
            f"{found.get('fingerprint')} vs {fingerprint}); the ranks would not be comparable"
        )
    if m.gpus and int(found.get("cuda", 0)) <= max(m.gpus):
        problems.append(
            f"machine {m.label}: gpus {list(m.gpus)} asked, {found.get('cuda', 0)} CUDA devices there"
        )
    log.info("machine %s: %s", m.label, found)
    return problems


def check_machines(machines: MachineList, data: dict[str, Any], fingerprint: str) -> None:
    """Contact every machine before NNI starts; all problems at once, then one error."""
    import nni

    problems = [
        p
        for m in machines.machines
        for p in probe_machine(m, data, fingerprint, nni.__version__, machines.known_hosts)
    ]
    if problems:
        raise DmnasError("\n".join(problems))


def ship_proxy_set(cache_root: Path, key: str, search_dir: Path) -> str:
    """Copy the proxy set's entry (images, manifest; not the preview grid) into the trial folder that
    NNI uploads to every machine; returns the cache folder as the trials see it (relative)."""
    import shutil

    target = search_dir / "proxy" / key
    target.mkdir(parents=True)
    from dmnas.condensation.cache import CONFIG, IMAGES, MANIFEST

    for name in (IMAGES, MANIFEST, CONFIG):
        if (cache_root / key / name).is_file():
            shutil.copy2(cache_root / key / name, target / name)
    size = sum(p.stat().st_size for p in target.iterdir())
    log.info("proxy set %s travels with the trials (%.1f MB in %s/proxy)", key, size / 1e6, search_dir.name)
    return "proxy"


def remote_context(ctx: Any, machines: MachineList, fingerprint: str, concurrency: int) -> Any:
    """The trial context (a :class:`dmnas.nas.trials.context.TrialContext`) as a remote machine sees it:
    paths relative to the uploaded trial folder, each machine's data root, its own device and cores."""
    import math
    from dataclasses import replace

    return replace(
        ctx,
        results_dir="trials",
        ground_truth_dir="ground_truth",
        data_dir=None,
        data_dirs=machines.data_roots(),
        fingerprint=fingerprint,
        device="auto",
        threads=0,
        trials_per_machine=math.ceil(concurrency / len(machines.machines)),
    )
