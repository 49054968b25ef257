"""The reference DM implementation (VICO-UoE/DatasetCondensation, ``main_DM.py``) as a benchmark
baseline: a runnable copy of a local clone, and its seconds per iteration from its own log.
Shared by ``bench_condense_speed.py`` and ``gpu_check.py``; nothing of the reference is stored here."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import shutil
from pathlib import Path

FMNIST = Path("/usr/share/datasets/fashion-mnist")
STAMP = "[%Y-%m-%d %H:%M:%S]"


def prepare_reference(clone: Path, work: Path) -> Path:
    """Copy the clone (its ConvNet's ``.view`` calls made ``.reshape`` for current torch) and give
    it Fashion-MNIST's raw IDX files (Debian recompressed the .gz, which torchvision's MD5 rejects)."""
    ref = work / "reference"
    shutil.copytree(clone, ref, ignore=shutil.ignore_patterns(".git", "docs"))
    net = ref / "networks.py"
    net.write_text(net.read_text().replace(".view(", ".reshape("))
    raw = ref / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in FMNIST.glob("*.gz"):
        (raw / gz.name[:-3]).write_bytes(gzip.decompress(gz.read_bytes()))
    return ref


def reference_argv(dataset: str, data_path: str, iterations: int) -> list[str]:
    """``main_DM.py`` at the paper's settings (IPC 10), condensation only: no evaluation."""
    return ["main_DM.py", "--dataset", dataset, "--ipc", "10", "--Iteration", str(iterations),
            "--num_exp", "1", "--num_eval", "0", "--eval_mode", "S",
            "--data_path", data_path, "--save_path", "result"]  # fmt: skip


def iteration_stamps(log: str) -> dict[int, dt.datetime]:
    """Iteration -> the timestamp main_DM.py printed with it (1 s resolution)."""
    return {
        int(m.group(2)): dt.datetime.strptime(m.group(1), STAMP)
        for m in re.finditer(r"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]) iter = (\d+)", log)
    }


def seconds_per_iteration(log: str) -> tuple[float, str]:
    """Mean seconds per iteration between the first and last logged iteration, and which those were."""
    stamps = iteration_stamps(log)
    first, last = min(stamps), max(stamps)
    return (stamps[last] - stamps[first]).total_seconds() / max(1, last - first), f"{first}..{last}"
