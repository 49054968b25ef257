"""Search spaces: the shipped ones, validation of space files, fit to the data."""

from __future__ import annotations

import math

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dmnas.errors import DmnasError
from dmnas.nas.space import load_space



def test_convnet_grid_is_the_720_net_nni_space() -> None:
    space = load_space("convnet_grid")
    specs = space.specs()
    assert space.size == len(specs) == 720 == len({s.name for s in specs})
    assert all(v["_type"] == "choice" for v in space.nni_space.values())


def test_convnet_grid_is_accepted_by_nnis_own_validator() -> None:
    pytest.importorskip("nni")
    from nni.experiment.config import ExperimentConfig

    cfg = ExperimentConfig("local")
    cfg.search_space = load_space("convnet_grid").nni_space
    cfg.trial_command = "true"
    cfg.trial_concurrency = 1
    cfg.tuner.name = "GridSearch"
    cfg.validate()  # raises on a config NNI would not start
    # What NNI will hand the tuner is the space as written: every axis a choice, 720 points.
    canonical = cfg.canonical_copy()
    assert canonical.search_space == load_space("convnet_grid").nni_space
    assert math.prod(len(v["_value"]) for v in canonical.search_space.values()) == 720


def test_small_spaces_are_small_and_build() -> None:
    assert 10 <= load_space("convnet_small").size <= 48
    assert load_space("convnet_tiny").size == 4


@pytest.mark.parametrize(
    "content,message",
    [
        (
            "depth: {_type: choice, _value: [1, 2]}\nkernel: {_type: choice, _value: [3]}\n",
            "unknown key 'kernel'",
        ),
        ("act: {_type: choice, _value: [relu, gelu]}\n", "act value 'gelu' is unknown"),
        ("width: {_type: choice, _value: [0]}\n", "width value 0"),
        ("depth: {_type: uniform, _value: [1, 4]}\n", "depth must be {_type: choice"),
        ("depth: {_type: choice, _value: [9]}\n", "depth value 9"),
        ("- 1\n- 2\n", "a mapping"),
    ],
)
def test_bad_space_files_name_the_offending_entry(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(DmnasError, match=message.replace("{", r"\{")):
        load_space(str(f))


def test_unknown_space_lists_available() -> None:
    with pytest.raises(
        DmnasError,
        match="available: convnet_bench, convnet_bench48, convnet_grid, convnet_small, convnet_tiny",
    ):
        load_space("nasbench")


def test_a_mistyped_space_is_the_only_line_even_with_the_default_dm_proxy(tmp_path: Path) -> None:
    # The default proxy logs its CPU iteration budget; a bad space must fail before that is said.
    proc = subprocess.run(
        [sys.executable, "-m", "dmnas", "search", "--space", "nasbench"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "dmnas: error: unknown search space 'nasbench'; available: convnet_bench, convnet_bench48, "
        "convnet_grid, convnet_small, convnet_tiny (or a file path)"
    ]


def test_spaces_that_pool_images_away_are_rejected() -> None:
    from dmnas.nas.space import check_fits, load_space

    grid = load_space("convnet_grid")
    check_fits(grid, (1, 28, 28))  # Fashion-MNIST/MNIST: depth 4 with pooling leaves 2x2
    check_fits(grid, (3, 32, 32))  # CIFAR/SVHN
    # 8x8: depth 4 with max/avg pooling -> 4 widths x 3 acts x 5 norms x 2 pools
    with pytest.raises(DmnasError, match="120 of the 720 architectures of convnet_grid pool"):
        check_fits(grid, (3, 8, 8))


def test_a_space_may_list_architectures_by_name(tmp_path: Path) -> None:
    f = tmp_path / "listed.yaml"
    f.write_text(
        "arch: {_type: choice, _value: [d1_w8_relu_none_none, d2_w4_sigmoid_batchnorm_maxpooling]}\n"
    )
    space = load_space(str(f))
    assert space.size == 2 and [s.name for s in space.specs()] == [
        "d1_w8_relu_none_none",
        "d2_w4_sigmoid_batchnorm_maxpooling",
    ]
    f.write_text("arch: {_type: choice, _value: [d1_w8_relu_none]}\n")
    with pytest.raises(DmnasError, match="not of the form"):
        load_space(str(f))
    f.write_text(
        "arch: {_type: choice, _value: [d1_w8_relu_none_none]}\ndepth: {_type: choice, _value: [1]}\n"
    )
    with pytest.raises(DmnasError, match="cannot be combined"):
        load_space(str(f))


def test_the_table_space_is_the_tables_sample() -> None:
    table = json.loads(
        (Path(__file__).resolve().parents[1] / "dmnas" / "groundtruth" / "tables" / "shipped" / "table.json").read_text()
    )
    assert [s.name for s in load_space("convnet_bench48").specs()] == table["sample"]
    bench = {s.name for s in load_space("convnet_bench").specs()}
    assert len(bench) == 360 and set(table["sample"]) <= bench
