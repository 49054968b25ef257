"""What every benchmark shares: the repository's folders, the machine line, the command line that
reruns a script, and the writer of a results pair (``<stem>.json`` and ``<stem>.md``)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from dmnas.util.atomic import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "_work"  # resumable per-job records (git-ignored)


def cpu_model() -> str:
    """The CPU's model name and its bfloat16 units (the VMs these files come from have differed:
    an AMD EPYC with AVX512-BF16, an Intel Xeon with AMX), or the architecture where unknown."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.machine())
    flags = set(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), []))
    units = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({', '.join(units) or 'no native bf16'})"


def machine(*extra: str) -> str:
    """``host arch N CPUs (model), python X[, torch Y][, extra...]``: said in every results file."""
    parts = [f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs: {cpu_model()}", f"python {platform.python_version()}"]
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].__version__}")
    return ", ".join([*parts, *extra])


def command_line(argv: list[str] | None = None, drop: tuple[str, ...] = ()) -> str:
    """The command that reruns this script from the repository root, ``python -m benchmarks.<name> ...``
    (``drop``: flags left out, e.g. a report-only switch)."""
    argv = sys.argv if argv is None else argv
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = spec.name if spec is not None else f"benchmarks.{Path(argv[0]).stem}"
    return " ".join(["python", "-m", name, *(a for a in argv[1:] if a not in drop)])


def write_results(stem: str, data: dict[str, Any], markdown: str | None = None, folder: Path = RESULTS) -> Path:
    """``<folder>/<stem>.json`` (atomically) and, when given, ``<stem>.md``; returns the json path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.json"
    write_json_atomic(path, data)
    if markdown is not None:
        (folder / f"{stem}.md").write_text(markdown)
    return path


def header_lines(title: str, res: dict[str, Any]) -> list[str]:
    """A results file's first lines: its title, then the command, machine and date it came from."""
    return [f"# {title}", "", f"- command: `{res['command']}`", f"- machine: {res['machine']}", f"- date: {res['date']}"]
