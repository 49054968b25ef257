"""The light catalog the command line lists from agrees with the registries, and a command's
``--help`` does not import torch (it answers at once)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dmnas import catalog


def test_the_catalog_lists_what_the_registries_hold() -> None:
    from dmnas.augment import parse_strategy
    from dmnas.condensation.losses import MATCHINGS
    from dmnas.data.sources import RAW_LOADERS
    from dmnas.nas.trials.proxies import TRAINING_SETS
    from dmnas.nas.trials.zero_cost import ZERO_COST
    from dmnas.proxykinds import PROXY_KINDS
    from dmnas.train import SCHEDULES

    assert list(catalog.DATASETS) == RAW_LOADERS.names()  # the light list names every loader
    # every registered proxy has what scores it: a training set or a zero-cost score, by its kind
    for name in PROXY_KINDS:
        assert name in (TRAINING_SETS if PROXY_KINDS.get(name).trains else ZERO_COST), name
    assert sorted(PROXY_KINDS) == sorted([*TRAINING_SETS, *ZERO_COST])
    assert list(catalog.SCHEDULES) == SCHEDULES.names()
    assert list(catalog.MATCHES) == MATCHINGS.names()
    assert parse_strategy(catalog.DEFAULT_STRATEGY)  # the default names real augmentations
    assert "convnet_tiny" in catalog.available_spaces() and catalog.DEFAULT_TABLE in catalog.table_names()
    assert catalog.table_names() == sorted(p.parent.name for p in catalog.TABLES_DIR.glob("*/table.json"))


@pytest.mark.parametrize("command", ["search", "condense", "evaluate", "report", "view", "cache"])
def test_help_does_not_import_torch(command: str) -> None:
    code = (
        "import sys\n"
        "from dmnas.cli import build_parser\n"
        f"build_parser([{command!r}]).format_help()\n"
        f"sub = build_parser([{command!r}])._subparsers._group_actions[0].choices[{command!r}]\n"
        "text = sub.format_help()\n"
        "assert len(text) > 200, text\n"
        "print('torch' in sys.modules, 'nni' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"], f"dmnas {command} --help imports torch/nni"


def test_an_unknown_schedule_is_refused_without_torch() -> None:
    from dmnas.errors import DmnasError
    from dmnas.recipe import TrainRecipe

    with pytest.raises(DmnasError, match="unknown schedule 'linear'; valid: step, cosine"):
        TrainRecipe(schedule="linear")
