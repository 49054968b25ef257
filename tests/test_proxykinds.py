"""A proxy is one registered object: adding one is a registration (its kind, and what it trains on),
and the CLI, the config checks, the trials and the report all follow it."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch

from dmnas.errors import DmnasError
from dmnas.proxykinds import PROXY_KINDS, ProxyKind, budgeted_names, proxy_kind


@pytest.fixture
def half_subset() -> Iterator[str]:
    """A proxy of a test's own: the first half of the training split, trained for --epochs."""
    from dmnas.nas.trials.proxies import TRAINING_SETS

    name = "halfsplit"
    PROXY_KINDS.add(name, ProxyKind(name, trains=True, budgeted=True, detail=lambda m: "first half"))
    TRAINING_SETS.add(name, lambda ctx, data: (data.train_x[: len(data.train_x) // 2], data.train_y[: len(data.train_y) // 2]))
    yield name
    PROXY_KINDS._items.pop(name)
    TRAINING_SETS._items.pop(name)


def test_the_built_in_kinds() -> None:
    assert proxy_kind("dm").needs_dm_set and not proxy_kind("random").needs_dm_set
    assert proxy_kind("full").full_data and proxy_kind("full").recipe == "full"
    assert not proxy_kind("synflow").trains and proxy_kind("early").recipe == "early"
    assert budgeted_names() == ["dm", "random"]
    with pytest.raises(DmnasError, match="unknown proxy 'nope'; valid: full, dm"):
        proxy_kind("nope")


def test_a_registered_proxy_is_offered_checked_run_and_labelled(half_subset: str, tiny_data, tmp_path: Path) -> None:  # noqa: ANN001
    from dmnas.cli import build_parser
    from dmnas.nas.trials.context import TrialContext
    from dmnas.nas.trials.proxies import run_trial
    from dmnas.reporting.make import proxy_label

    args = build_parser(["search"]).parse_args(["search", "--proxy", half_subset])
    assert args.proxy == half_subset  # offered by the CLI (and listed in --help)
    assert half_subset in budgeted_names()  # a multi-fidelity tuner accepts it
    ctx = TrialContext(proxy=half_subset, data={}, data_dir=None, recipe={"epochs": 1, "strategy": "none"},
                       device="cpu", seed=0, results_dir=str(tmp_path), ground_truth_dir=str(tmp_path / "gt"))  # fmt: skip
    from dmnas.nas.trials.proxies import Prepared, TRAINING_SETS

    x, y = TRAINING_SETS.get(half_subset)(ctx, tiny_data)
    record = run_trial({"arch": "d1_w4_relu_none_avgpooling"}, ctx,
                       prepared=Prepared(tiny_data, torch.device("cpu"), ((x, y),), {}))  # fmt: skip
    assert record["proxy"] == half_subset and record["images"] == len(tiny_data.train_x) // 2
    assert not (tmp_path / "gt").exists()  # not full data: nothing joins the ground truth
    from dmnas.nas.folder import SearchMeta

    meta = SearchMeta(id="ab12", space="s.yaml", proxy=half_subset, fingerprint="fp", full_recipe={}, full_images=1)
    assert proxy_label(meta) == "halfsplit first half (ab12)"
