"""The README's Python example runs as written (in a project folder of its own)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.nni]


def readme_python() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    return blocks[0]


def test_readme_python_example_runs(tmp_path: Path, fmnist_env: dict[str, str]) -> None:
    pytest.importorskip("nni")
    env = dict(fmnist_env, HOME=str(tmp_path / "home"), DMNAS_WORKDIR=str(tmp_path / "experiments"))
    env.pop("DMNAS_CACHE", None)  # the example uses the default ./condensed_cache of its folder
    (tmp_path / "home").mkdir()
    code = "import logging; logging.basicConfig(level=logging.INFO)\n" + readme_python()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    out = proc.stdout
    assert "# dmnas proxy ranking report" in out and "http://127.0.0.1:" in out
    assert (tmp_path / "condensed_cache").is_dir() and any((tmp_path / "experiments" / "searches").iterdir())
    assert os.path.isdir(tmp_path / "experiments" / "reports")
