"""dmnas installed non-editable (as from a wheel) still finds its search spaces, its shipped
ground-truth tables and its NNI patch; `import dmnas` stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_non_editable_install_ships_the_search_spaces(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "dmnas" / "spaces" / "convnet_grid.yaml").is_file()
    # Run from elsewhere with only the installed copy importable: no checkout to fall back on.
    env = dict(os.environ, PYTHONPATH=str(target))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    code = (
        "from dmnas.catalog import SPACES_DIR; from dmnas.nas.space import load_space; "
        "print(SPACES_DIR, load_space('convnet_grid').size)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(target / "dmnas" / "spaces"), "720"]
    help_ = subprocess.run(
        [sys.executable, "-m", "dmnas", "search", "--help"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_.returncode == 0 and "convnet_grid" in help_.stdout
    # The default table resolves inside the installed package, records and all.
    code = (
        "import json; from dmnas.catalog import table_names; from dmnas.groundtruth.tables import table_stores\n"
        "from dmnas.groundtruth.store import merged; from dmnas.nas.config import FULL_RECIPE\n"
        "from dmnas.nas.nni.manager import MANAGER_PRELOAD\n"
        "(store,) = table_stores(None); m = json.loads((store.root / 'table.json').read_text())\n"
        "recs = merged([store], m['fingerprint'], FULL_RECIPE)\n"
        "print(store.root, sum(len(s) for s in recs.values()), ','.join(table_names()), MANAGER_PRELOAD.is_file())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    root, records, names, patch = proc.stdout.split()
    assert root == str(target / "dmnas" / "groundtruth" / "tables" / "shipped")
    assert int(records) == 96 and {"shipped", "heldout"} <= set(names.split(",")) and patch == "True"


def test_top_level_help_does_not_import_torch() -> None:
    """`dmnas --help` (and `import dmnas`) stay instant: only the invoked command's options are built."""
    code = (
        "import sys, contextlib, io\n"
        "from dmnas.cli import build_parser\n"
        "p = build_parser(['--help'])\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    p.parse_args(['--help'])\n"
        "assert 'search' in out.getvalue(), out.getvalue()\n"
        "print(sorted(m for m in ('torch', 'nni', 'torchvision', 'scipy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_import_dmnas_and_its_api_names_do_not_import_torch() -> None:
    code = (
        "import sys, dmnas\n"
        "fns = [dmnas.condense, dmnas.search, dmnas.report, dmnas.load_dataset, dmnas.create_model, dmnas.list_spaces]\n"
        "print(sorted(m for m in ('torch', 'nni', 'scipy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
