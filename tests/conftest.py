"""Shared fixtures: tiny in-memory datasets for fast CPU tests, real Fashion-MNIST for slow ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch

from dmnas.data import Dataset
from dmnas.data.sources import SYSTEM_FASHION_MNIST


def make_dataset(
    num_classes: int = 3, per_class: int = 12, shape: tuple[int, int, int] = (1, 12, 12), seed: int = 0
) -> Dataset:
    """Class-dependent Gaussian blobs: small, fast, and learnable."""
    g = torch.Generator().manual_seed(seed)
    n = num_classes * per_class
    y = torch.arange(num_classes).repeat_interleave(per_class)
    x = torch.randn(n, *shape, generator=g) * 0.5 + y.view(-1, 1, 1, 1).float() - num_classes / 2
    return Dataset(
        name="tiny",
        train_x=x,
        train_y=y,
        val_x=x[::3].clone(),
        val_y=y[::3].clone(),
        test_x=x[1::3].clone(),
        test_y=y[1::3].clone(),
        mean=torch.zeros(shape[0]),
        std=torch.ones(shape[0]),
        classes=[f"c{i}" for i in range(num_classes)],
        fingerprint=f"tiny{seed}",
        source="test",
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (real NNI experiments, CLI runs on Fashion-MNIST); CI does",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The default run stays a few minutes on a 2-core CPU; the end-to-end runs (~13 min more)
    # are opt-in locally and always on in CI (.ci/run passes --run-slow).
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _test_workers(marker: str) -> list[str]:
    """Warm workers (dmnas.nas.trials.worker processes) whose command line names ``marker``."""
    out = subprocess.run(["pgrep", "-af", "dmnas.nas.trials.worker --context"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No warm worker may outlive the test that started it: any left once the suite ends fails the run
    (after a grace period in which an orphaned worker notices its owner is gone)."""
    import time

    factory = getattr(session.config, "_tmp_path_factory", None)
    base = str(factory.getbasetemp()) if factory is not None else "/tmp/pytest-of-"
    deadline = time.monotonic() + 5
    left = _test_workers(base)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _test_workers(base)
    if left:
        for line in left:
            os.kill(int(line.split()[0]), signal.SIGKILL)
        print(f"\nworkers left behind by the tests (now killed): {left}", file=sys.stderr)
        session.exitstatus = 1


@pytest.fixture
def tiny_data() -> Dataset:
    return make_dataset()


@pytest.fixture
def fmnist_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for CLI runs on the real Fashion-MNIST copy from Debian's package.

    The prepared tensors go to a session-wide folder so that only the first test pays for them.
    """
    if not (SYSTEM_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    data_dir = Path(os.environ.get("DMNAS_TEST_DATA", "/tmp/dmnas-test-data"))
    env = dict(
        os.environ, DMNAS_DATA=str(data_dir), DMNAS_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1"
    )
    return env


@pytest.fixture
def nni_env(fmnist_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for real NNI runs: Fashion-MNIST as in ``fmnist_env``, HOME and workdir in tmp."""
    # NNI always keeps its experiment index in ~/nni-experiments: keep tests out of the real home.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for k in ("DMNAS_DATA", "DMNAS_CACHE"):
        monkeypatch.setenv(k, fmnist_env[k])
    return dict(fmnist_env, HOME=str(home), DMNAS_WORKDIR=str(tmp_path / "work"))


@pytest.fixture
def start_dmnas() -> Callable[..., subprocess.Popen[str]]:
    """Start ``python -m dmnas ARGS`` as a terminal would, so that SIGINT acts as Ctrl-C.

    A child of a backgrounded shell (``cmd &``, as some CI runners start the suite) inherits an
    ignored SIGINT, which dmnas respects; the tests of Ctrl-C handling must not depend on that.
    """

    def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "dmnas", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    return start
