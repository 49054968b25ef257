"""benchmarks/gpu_check.sh on a CPU: its --dry-run checks the inputs; its CIFAR-10 stand-in is readable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def dry_run(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "OUT": str(out), "PYTHON": sys.executable, "HOME": str(out)}
    return subprocess.run(
        [str(SCRIPT), "--dry-run", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_dry_run_checks_inputs_and_prints_the_plan(tmp_path: Path) -> None:
    pytest.importorskip("nni")
    ok = dry_run("--grid-trials", "72", out=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "dry run: inputs OK, nothing run" in ok.stdout and "worker mode 72 and process mode 24" in ok.stdout
    assert "DM at IPC 50 for ~240 s" in ok.stdout
    assert not list(tmp_path.glob("gpu_check.*"))  # nothing measured, nothing written
    clone = tmp_path / "not_a_clone"
    clone.mkdir()
    bad = dry_run("--reference", str(clone), "--iterations", "3", "--sections", "grid,colour", out=tmp_path)
    assert bad.returncode == 2
    problems = [line for line in bad.stderr.splitlines() if line.startswith("gpu_check: problem:")]
    assert any("not a DatasetCondensation clone (missing main_DM.py" in p for p in problems)
    assert any("--iterations must be >= 10" in p for p in problems)
    assert any("--sections: unknown colour" in p for p in problems)


def test_cifar_standin_has_cifar10s_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as datasets
    import torchvision.datasets.cifar as cifar

    from benchmarks.gpu_check import write_cifar_standin

    root = write_cifar_standin(tmp_path, per_batch=20)
    # As the check's prelude does for both programs: the stand-in cannot match CIFAR-10's checksums.
    monkeypatch.setattr(datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    train, test = datasets.CIFAR10(str(root), train=True), datasets.CIFAR10(str(root), train=False)
    assert len(train) == 100 and len(test) == 20 and train.data.shape[1:] == (32, 32, 3)
    assert len(train.classes) == 10
