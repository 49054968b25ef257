"""End to end through the real CLI on real Fashion-MNIST (Debian's dataset-fashion-mnist)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

pytestmark = pytest.mark.slow

TINY = [
    "--ipc",
    "2",
    "--iterations",
    "3",
    "--batch-real",
    "16",
    "--embed-arch",
    "d1_w8_relu_instancenorm_avgpooling",
    "-q",
]


def dmnas(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dmnas", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def entry_dir(stdout: str) -> Path:
    line = next(s for s in stdout.splitlines() if s.startswith("entry: "))
    return Path(line.removeprefix("entry: "))


def test_condense_then_cache_hit_then_evaluate(fmnist_env: dict[str, str]) -> None:
    first = dmnas(fmnist_env, "condense", *TINY)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("condensed: ")
    assert "images moved " in first.stdout and "pixel sd on average from their initialisation" in first.stdout
    entry = entry_dir(first.stdout)
    assert (entry / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (entry / "config.yaml").is_file()
    manifest = json.loads((entry / "manifest.json").read_text())
    iterations = int(TINY[TINY.index("--iterations") + 1])
    assert len(manifest["iteration_seconds"]) == iterations and min(manifest["iteration_seconds"]) > 0

    t = time.perf_counter()
    second = dmnas(fmnist_env, "condense", *TINY)
    assert second.returncode == 0 and second.stdout.startswith("cache hit: ")
    assert entry_dir(second.stdout) == entry
    assert time.perf_counter() - t < 30

    ev = dmnas(
        fmnist_env,
        "evaluate",
        *TINY,
        "--eval-runs",
        "2",
        "--eval-epochs",
        "3",
        "--eval-arch",
        "d1_w8_relu_instancenorm_avgpooling",
    )
    assert ev.returncode == 0, ev.stderr
    assert "dm: " in ev.stdout and "random_real: " in ev.stdout and "2 runs, 20 images" in ev.stdout

    listing = dmnas(fmnist_env, "cache", "list")
    assert entry.name in listing.stdout and "evals=2" in listing.stdout and " sd  evals" in listing.stdout
    show = dmnas(fmnist_env, "cache", "show", entry.name[:6])
    assert '"fingerprint"' in show.stdout and '"moved_sd"' in show.stdout
    assert dmnas(fmnist_env, "cache", "rm", entry.name).returncode == 0
    assert not entry.exists()


def one_error_line(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dmnas: error: "), proc.stderr
    assert pattern in lines[0], lines[0]


def test_bad_input_gives_one_line_and_non_zero_exit(fmnist_env: dict[str, str], tmp_path: Path) -> None:
    one_error_line(
        dmnas(fmnist_env, "condense", "--dataset", "imagenet"), "valid: fashion_mnist, mnist, cifar10"
    )
    one_error_line(
        dmnas(fmnist_env, "condense", "--dataset", "mnist", "--data-root", str(tmp_path / "none"), *TINY),
        "not found",
    )
    one_error_line(
        dmnas(fmnist_env, "condense", "--ipc", "6000", *TINY[2:]), "larger than the smallest class"
    )
    if not torch.cuda.is_available():
        one_error_line(dmnas(fmnist_env, "condense", "--device", "cuda", *TINY), "CUDA is not available")
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    one_error_line(dmnas(fmnist_env, "condense", "--cache-dir", str(blocker / "c"), *TINY), "not writable")
    (tmp_path / "empty").mkdir()
    one_error_line(
        dmnas(fmnist_env, "condense", "--dataset", f"imagefolder:{tmp_path / 'empty'}", *TINY), "empty"
    )
    one_error_line(dmnas(fmnist_env, "condense", *TINY, "--embed-arch", "resnet"), "not of the form")

    ok = dmnas(fmnist_env, "condense", *TINY)
    entry = entry_dir(ok.stdout)
    images = entry / "images.pt"
    images.write_bytes(images.read_bytes()[:-20])
    one_error_line(dmnas(fmnist_env, "condense", *TINY), "corrupt")
    fixed = dmnas(fmnist_env, "condense", *TINY, "--force")
    assert fixed.returncode == 0 and fixed.stdout.startswith("condensed: ")


def test_interrupted_run_resumes_to_identical_images(
    fmnist_env: dict[str, str], tmp_path: Path, start_dmnas: Callable[..., subprocess.Popen[str]]
) -> None:
    args = [
        "condense",
        "--ipc",
        "2",
        "--iterations",
        "30",
        "--batch-real",
        "32",
        "--checkpoint-every",
        "1",
        "--embed-arch",
        "d2_w16_relu_instancenorm_avgpooling",
        "-q",
    ]
    reference_env = dict(fmnist_env, DMNAS_CACHE=str(tmp_path / "reference"))
    reference = dmnas(reference_env, *args)
    assert reference.returncode == 0, reference.stderr
    expected = torch.load(entry_dir(reference.stdout) / "images.pt")["images"]

    proc = start_dmnas(fmnist_env, *args)
    cache = Path(fmnist_env["DMNAS_CACHE"])
    deadline = time.time() + 120
    while not list(cache.glob("*.partial/checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "rerun the same command to resume" in err

    resumed = dmnas(fmnist_env, *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at iteration" in resumed.stdout
    assert torch.equal(torch.load(entry_dir(resumed.stdout) / "images.pt")["images"], expected)


def test_compiled_code_is_kept_in_the_cache_folder_for_the_next_process(fmnist_env: dict[str, str]) -> None:
    """A second condensation (another key) in the same cache folder finds the compiled code there."""
    env = {k: v for k, v in fmnist_env.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    cache = Path(env["DMNAS_CACHE"])
    args = ("condense", "--ipc", "1", "--iterations", "2", "--compile", "on", "--checkpoint-every", "1000")
    first = dmnas(env, *args, "--seed", "0", timeout=600)
    assert first.returncode == 0, first.stderr
    code = cache / ".inductor"
    files = {p for p in code.rglob("*") if p.is_file()}
    assert files, "no compiled code kept under the cache folder"
    second = dmnas(env, *args, "--seed", "1", timeout=600)
    assert second.returncode == 0, second.stderr
    graphs = {p for p in code.rglob("*") if p.is_file() and "fxgraph" in p.parts}
    assert graphs and graphs == {p for p in files if "fxgraph" in p.parts}  # reused: no new graph compiled
    assert "cache list" not in second.stderr and ".inductor" not in dmnas(env, "cache", "list").stdout
