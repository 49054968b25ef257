"""Bad values: one clear line, exit status 2, before any work, and nothing written.

Run in-process through ``dmnas.cli.main`` (the checks live in the configs, so they are fast);
the same configs back the Python API, which gets the same refusals as exceptions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dmnas.cli import main
from dmnas.errors import DmnasError

TINY = ["--ipc", "1", "--iterations", "2", "--batch-real", "8"]


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], pattern: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("dmnas: error: "), err
    assert pattern in err[0], err[0]


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--iterations", "0"], "--iterations must be a positive integer, got 0"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be a positive number"),
        (["--checkpoint-every", "-2"], "--checkpoint-every must be a positive number"),
        (["--real-chunk", "-1"], "--real-chunk must be >= 0"),
        (["--lr-img", "-1"], "--lr-img must be positive, got -1.0"),
        (["--ipc", "0"], "--ipc must be a positive integer"),
        (["--batch-real", "0"], "--batch-real must be positive"),
        (["--dataset", "imagenet"], "imagefolder:PATH"),
        (["--dataset", "imagefolder:/x", "--image-size", "-4"], "--image-size must be >= 4, got -4"),
        (["--dataset", "imagefolder:/x", "--image-size", "0"], "--image-size must be >= 4, got 0"),
        (["--val-fraction", "1.5"], "--val-fraction must be in (0, 1)"),
        (["--device", "tpu"], "unknown --device 'tpu'"),
        (["--embed-queue", "-1"], "--embed-queue must be >= 0"),
        (["--embed-queue", "2", "--embed-retire", "0"], "--embed-retire must be a positive number"),
        (
            ["--embed-queue", "2", "--embed-pool", "d1_w8_relu_none_none,d2_w8_relu_none_none"],
            "cannot be combined with an embedding pool",
        ),
    ],
)
def test_condense_values(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], pattern: str) -> None:
    cache = tmp_path / "cache"
    refused(capsys, ["condense", *TINY, "--cache-dir", str(cache), *args], pattern)
    assert not cache.exists()  # nothing written


def test_the_api_gets_the_same_checks(tmp_path: Path) -> None:
    import dmnas

    with pytest.raises(DmnasError, match="--iterations must be a positive integer"):
        dmnas.condense(iterations=0, cache_dir=tmp_path)
    with pytest.raises(DmnasError, match="--max-duration must be"):
        dmnas.search("convnet_tiny", proxy="random", max_duration="banana", workdir=tmp_path)
    with pytest.raises(DmnasError, match="unknown option"):
        dmnas.condense(iteratons=5)
    assert not any(tmp_path.iterdir())


def test_image_size_elsewhere_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from dmnas.data import DataConfig

    assert DataConfig(name="fashion_mnist", image_size=3).key_dict() == DataConfig().key_dict()
    assert "applies to imagefolder datasets only" in caplog.text


def test_single_class_folder_and_folder_kinds(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from dmnas.data.sources import load_imagefolder

    (tmp_path / "only" / "c0").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "only" / "c0" / f"{i}.png")
    with pytest.raises(DmnasError, match="ranking needs at least two classes"):
        load_imagefolder(tmp_path / "only", 8)
    (tmp_path / "file").write_text("")
    with pytest.raises(DmnasError, match="is a file"):
        load_imagefolder(tmp_path / "file", 8)


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--max-duration", "banana"], "--max-duration must be a positive number with a unit"),
        (["--max-duration", "0"], "--max-duration must be a positive number"),
        (["--max-trials", "0"], "--max-trials must be >= 1"),
        (["--concurrency", "0"], "--concurrency must be >= 1"),
        (["--port", "80"], "--port must be between 1024 and 65535"),
        (["--trials-per-gpu", "0"], "--trials-per-gpu must be >= 1"),
        (["--tuner", "smac"], "unknown tuner 'smac'"),
        (["--epochs", "0"], "--epochs: epochs must be a positive integer"),
        (["--table", "/nowhere/at/all"], "neither a shipped table"),
    ],
)
def test_search_values(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], pattern: str) -> None:
    work = tmp_path / "work"
    refused(capsys, ["search", "--space", "convnet_tiny", "--proxy", "random", "--workdir", str(work), *args], pattern)
    assert not work.exists()


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("proxy: {lr: -1}\n", "proxy: lr must be positive, got -1"),
        ("full: {epochs: 0}\n", "full: epochs must be a positive integer"),
        ("proxy: [1, 2]\n", "'proxy' must be a mapping"),
        ("proxy: {lr: 0.1\n", "is not valid YAML at line"),
        ("proxy: {nope: 1}\n", "unknown key(s) ['nope']"),
    ],
)
def test_recipe_files(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, pattern: str) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    work = tmp_path / "work"
    refused(capsys, ["search", "--space", "convnet_tiny", "--proxy", "random", "--workdir", str(work),
                     "--recipe", str(recipe)], pattern)  # fmt: skip
    assert not work.exists()


def test_a_space_path_that_is_a_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    refused(capsys, ["search", "--space", str(tmp_path), "--proxy", "random"], "is a folder")


def test_cache_options_after_the_subcommand(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    assert f"no entries in {tmp_path}" in capsys.readouterr().out
    assert main(["cache", "--cache-dir", str(tmp_path), "list"]) == 0
    (tmp_path / "Documents" / "thesis").mkdir(parents=True)
    refused(capsys, ["cache", "rm", "Doc", "--cache-dir", str(tmp_path)], "no cache entry 'Doc'")
    assert (tmp_path / "Documents" / "thesis").is_dir()
