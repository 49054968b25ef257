"""machines.yaml, the remote trial command and what remote trials need, without SSH (see
test_remote.py for the real thing)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from dmnas.errors import DmnasError
from dmnas.groundtruth.store import GroundTruthStore
from dmnas.nas.remote import load_machines, manager_ip
from dmnas.nas.remote import remote_trial_command as trial_command
from dmnas.nas.folder import adopt_records, nni_final_records
from dmnas.nas.remote import remote_context
from dmnas.nas.trials.context import TrialContext, trial_data_dir
from dmnas.train import TrainRecipe


@pytest.fixture
def key(tmp_path: Path) -> Path:
    k = tmp_path / "id_test"
    k.write_text("not a real key; only its existence is checked here\n")
    return k


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "machines.yaml"
    p.write_text(text)
    return p


def test_a_machines_file_is_read_with_defaults(tmp_path: Path, key: Path) -> None:
    ml = load_machines(
        write(
            tmp_path,
            f"machines:\n  - {{host: a.example, user: u, ssh_key_file: {key}, python: /opt/venv/bin/python, "
            "data_root: /data}\n"
            f"  - {{host: b.example, port: 2222, user: v, ssh_key_file: {key}, python: /usr/bin/python3}}\n",
        )
    )
    a, b = ml.machines
    assert (a.port, a.data_root, b.port, b.data_root) == (22, "/data", 2222, None)
    assert a.label == "u@a.example:22" and not ml.use_gpu
    assert ml.data_roots() == ("/data", "")  # b uses its own default: tried last
    assert ml.pythons() == ("/opt/venv/bin/python", "/usr/bin/python3")


@pytest.mark.parametrize(
    "body, says",
    [
        ("machines: []\n", "expected a 'machines:' list"),
        ("machines:\n  - {host: h, user: u, python: /p, password: secret}\n", "passwords are not supported"),
        ("machines:\n  - {host: h, user: u, python: /p, password_env: PW}\n", "passwords are not supported"),
        ("machines:\n  - {host: h, user: u, python: python3, ssh_key_file: KEY}\n", "absolute path"),
        ("machines:\n  - {host: h, python: /p, ssh_key_file: KEY}\n", "missing user"),
        (
            "machines:\n  - {host: h, user: u, python: /p, ssh_key_file: KEY, gpu: [0]}\n",
            "unknown key(s) ['gpu']",
        ),
        ("machines:\n  - {host: h, user: u, python: /p, ssh_key_file: KEY, port: 0}\n", "port must be"),
        ("machines:\n  - {host: h, user: u, python: /p, ssh_key_file: /nope}\n", "/nope does not exist"),
        ("machine: []\n", "expected a 'machines:' list"),
        (
            "machines:\n  - {host: h, user: u, python: /p, ssh_key_file: KEY, gpus: [0]}\n"
            "  - {host: i, user: u, python: /p, ssh_key_file: KEY}\n",
            "gpus for every machine or for none",
        ),
    ],
)
def test_a_bad_machines_file_is_one_clear_line(tmp_path: Path, key: Path, body: str, says: str) -> None:
    with pytest.raises(DmnasError) as err:
        load_machines(write(tmp_path, body.replace("KEY", str(key))))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_missing_machines_file(tmp_path: Path) -> None:
    with pytest.raises(DmnasError, match="does not exist"):
        load_machines(tmp_path / "none.yaml")


def test_manager_ip_is_loopback_for_local_machines_and_given_otherwise(tmp_path: Path, key: Path) -> None:
    local = load_machines(
        write(tmp_path, f"machines:\n  - {{host: 127.0.0.1, user: u, python: /p, ssh_key_file: {key}}}\n")
    )
    assert manager_ip(local) == "127.0.0.1"
    given = load_machines(
        write(
            tmp_path,
            f"manager_ip: 10.1.2.3\nmachines:\n  - {{host: h.example, user: u, python: /p, ssh_key_file: {key}}}\n",
        )
    )
    assert manager_ip(given) == "10.1.2.3"


def test_the_trial_command_runs_the_first_python_that_has_dmnas(tmp_path: Path, key: Path) -> None:
    # A missing interpreter, one that cannot import dmnas, then this one: the third runs the trial.
    fake = tmp_path / "nodmnas"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    ml = load_machines(
        write(
            tmp_path,
            "machines:\n"
            + "".join(
                f"  - {{host: h{i}, user: u, python: {p}, ssh_key_file: {key}}}\n"
                for i, p in enumerate(["/no/such/python", str(fake), sys.executable])
            ),
        )
    )
    cmd = trial_command(ml, context="missing-context.json")
    proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    # dmnas's trial started (and refused the missing context): the right interpreter was chosen
    assert "missing-context.json" in proc.stderr and proc.returncode != 0

    nowhere = load_machines(
        write(tmp_path, f"machines:\n  - {{host: h, user: u, python: /no/python, ssh_key_file: {key}}}\n")
    )
    proc = subprocess.run(["bash", "-c", trial_command(nowhere)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "dmnas: no Python with dmnas on" in proc.stderr


def ctx(**kw: object) -> TrialContext:
    base = dict(
        proxy="dm",
        data={"name": "fashion_mnist"},
        data_dir="/local/data",
        recipe={},
        device="cpu",
        seed=0,
        results_dir="/w/trials",
        ground_truth_dir="/w/gt",
        cache_dir="/w/cache",
        entry_key="k",
    )
    return TrialContext(**{**base, **kw})


def test_a_remote_context_points_inside_the_uploaded_folder(tmp_path: Path, key: Path) -> None:
    ml = load_machines(
        write(
            tmp_path,
            f"machines:\n  - {{host: h, user: u, python: /p, ssh_key_file: {key}, data_root: /d}}\n"
            f"  - {{host: i, user: u, python: /p, ssh_key_file: {key}}}\n",
        )
    )
    r = remote_context(ctx(cache_dir="proxy"), ml, "fp", concurrency=3)
    assert (r.results_dir, r.ground_truth_dir, r.cache_dir, r.data_dir) == (
        "trials",
        "ground_truth",
        "proxy",
        None,
    )
    assert r.data_dirs == ("/d", "") and r.fingerprint == "fp" and r.device == "auto"
    assert r.trials_per_machine == 2  # 3 concurrent trials on 2 machines share each one's cores
    r.save(tmp_path / "context.json")
    assert TrialContext.load(tmp_path / "context.json") == r


def test_a_trial_finds_its_machines_data_root(tmp_path: Path) -> None:
    here = tmp_path / "data"
    here.mkdir()
    assert trial_data_dir(ctx()) == Path("/local/data")  # a local search: the context's own folder
    assert trial_data_dir(ctx(data_dirs=("/not/here", str(here), ""))) == here
    assert trial_data_dir(ctx(data_dirs=("/not/here", ""))) is None  # this machine's default
    with pytest.raises(DmnasError, match="none of the data roots /not/here exists here"):
        trial_data_dir(ctx(data_dirs=("/not/here",)))


def test_records_of_remote_trials_are_kept_here(tmp_path: Path) -> None:
    recipe = TrainRecipe(epochs=1)
    store = GroundTruthStore(tmp_path / "gt")
    full = {
        "arch": "d1_w4_relu_none_none",
        "score": 0.8,
        "val_acc": 0.8,
        "proxy": "full",
        "seed": 0,
        "seeds": [0, 1],
        "seed_scores": [0.79, 0.81],
        "test_acc": 0.8,
    }
    proxy = {"arch": "d2_w4_relu_none_none", "score": 0.5, "val_acc": 0.5, "proxy": "dm"}
    outcome = SimpleNamespace(
        succeeded=[SimpleNamespace(trial_id="T1", record=full), SimpleNamespace(trial_id="T2", record=proxy)]
    )
    adopt_records(tmp_path / "s", outcome, store, "fp", recipe)
    assert sorted(p.name for p in (tmp_path / "s" / "trials").iterdir()) == [
        "d1_w4_relu_none_none__T1.json",
        "d2_w4_relu_none_none__T2.json",
    ]
    seeds = store.all("fp", recipe)["d1_w4_relu_none_none"]
    assert {s: r["val_acc"] for s, r in seeds.items()} == {0: 0.79, 1: 0.81}
    assert seeds[1]["test_acc"] is None  # only the mean over seeds came back
    # a record already here is never overwritten
    store.put("fp", "d1_w4_relu_none_none", recipe, 0, {"val_acc": 0.5})
    adopt_records(tmp_path / "s", outcome, store, "fp", recipe)
    assert store.get("fp", "d1_w4_relu_none_none", recipe, 0)["val_acc"] == 0.5


def test_final_reports_are_read_back_from_nnis_database(tmp_path: Path) -> None:
    db = tmp_path / "nni.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE MetricData (timestamp integer, trialJobId text, parameterId text, "
            "type text, sequence integer, data text)"
        )
        rec = {"arch": "d1_w4_relu_none_none", "score": 0.5}
        rows = [
            ("A", "FINAL", json.dumps(json.dumps(rec))),
            ("A", "PERIODICAL", json.dumps("0.3")),
            ("B", "FINAL", json.dumps("0.7")),
        ]  # a bare number: not a dmnas record
        conn.executemany("INSERT INTO MetricData VALUES (0, ?, '0', ?, 0, ?)", rows)
    assert nni_final_records(db) == [{**rec, "trial_id": "A"}]
    assert nni_final_records(tmp_path / "missing.sqlite") == []


def test_search_config_pairs_remote_with_machines(tmp_path: Path) -> None:
    from dmnas.nas.config import SearchConfig

    base = dict(
        space="convnet_tiny",
        proxy="dm",
        proxy_recipe=TrainRecipe(),
        full_recipe=TrainRecipe(),
        workdir=tmp_path,
    )
    with pytest.raises(DmnasError, match="go together"):
        SearchConfig(**base, training_service="remote").check()
    with pytest.raises(DmnasError, match="go together"):
        SearchConfig(**base, machines=tmp_path / "m.yaml").check()
    SearchConfig(**base, training_service="remote", machines=tmp_path / "m.yaml").check()


def test_a_dead_manager_is_explained_by_its_last_error(tmp_path: Path) -> None:
    from dmnas.nas.nni.outcome import last_manager_error

    log = tmp_path / "nnimanager.log"
    log.write_text(
        "[2026-11-29 04:17:45] INFO (NNIManager) starting\n"
        "[2026-11-29 04:18:00] ERROR (TrainingServiceCompat) Training srevice initialize failed: "
        "Error: Unable to start subsystem: sftp\n"
        "    at AESGCMDecipherBinding.decrypt (crypto.js:1086:26)\n"
    )
    assert last_manager_error(log) == (
        "(TrainingServiceCompat) Training srevice initialize failed: Error: Unable to start subsystem: sftp"
    )
    assert last_manager_error(tmp_path / "missing.log") == ""


def test_a_bad_machines_file_stops_the_search_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dmnas.cli import main

    m = tmp_path / "m.yaml"
    m.write_text("machines:\n  - {host: h, user: u, python: /p, password: x}\n")
    assert main(["search", "--training-service", "remote", "--machines", str(m)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dmnas: error:") and "passwords are not supported" in lines[0]


def test_every_unreachable_machine_is_its_own_error_line(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from dmnas.cli import main
    from dmnas.nas import run
    from dmnas.nas.remote import check_machines

    ports = []
    for _ in range(2):  # two ports nobody listens on
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    ml = load_machines(
        write(
            tmp_path,
            "machines:\n"
            + "".join(f"  - {{host: 127.0.0.1, port: {p}, user: u, python: /p, ssh_key_file: {key}}}\n" for p in ports),
        )
    )
    with pytest.raises(DmnasError) as err:
        check_machines(ml, {"name": "fashion_mnist"}, "fp")
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and all(f"u@127.0.0.1:{p}: unreachable" in ln for p, ln in zip(ports, lines, strict=True))

    def fail(cfg, job, on_report=None):  # noqa: ANN001, ANN202
        raise err.value

    monkeypatch.setattr(run, "start_search", fail)
    assert main(["search", "--space", "convnet_tiny"]) == 2
    printed = capsys.readouterr().err.strip().splitlines()
    assert printed == [f"dmnas: error: {ln}" for ln in lines]


def test_remote_machines_get_their_trials_per_gpu(tmp_path: Path, key: Path) -> None:
    """--trials-per-gpu reaches NNI's remote machines (it used to stop at the local service)."""
    pytest.importorskip("nni")
    from dmnas.nas.nni.gpu_share import share_machines
    from dmnas.nas.remote import nni_machine_list

    ml = load_machines(
        write(
            tmp_path,
            f"machines:\n  - {{host: a.example, user: u, ssh_key_file: {key}, python: /v/bin/python, gpus: [0]}}\n"
            f"  - {{host: b.example, user: u, ssh_key_file: {key}, python: /v/bin/python, gpus: [0, 1]}}\n",
        )
    )
    per_gpu, concurrency = share_machines(4, [len(m.gpus) for m in ml.machines], 16)
    configs = nni_machine_list(ml, per_gpu)
    assert [c.max_trial_number_per_gpu for c in configs] == [4, 4] and concurrency == 12
    per_gpu, concurrency = share_machines(1, [len(m.gpus) for m in ml.machines], 16)
    configs = nni_machine_list(ml, per_gpu)
    assert [c.max_trial_number_per_gpu for c in configs] == [2, 1] and concurrency == 3
    assert [c.gpu_indices for c in configs] == [[0], [0, 1]]
