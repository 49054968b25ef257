"""Every benchmark's command path, at a tiny size: a CLI change that breaks a benchmark fails CI
(the speed benchmark passed `--checkpoint-every 0` for a whole round after the CLI began to refuse
it). Each script parses its arguments; the ones that drive `dmnas` build argument lists that the
CLI's own parser accepts; the cheap ones run one architecture or iteration into a temporary folder."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if "argparse" in p.read_text() and "__main__" in p.read_text())


def bench_module(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    return importlib.import_module(f"benchmarks.{name}")


def test_no_module_edits_sys_path() -> None:
    """Benchmarks are a package run as ``python -m benchmarks.<name>``; nothing reaches code by path hacks."""
    offenders = [str(p.relative_to(ROOT)) for d in ("benchmarks", "dmnas", "tests") for p in (ROOT / d).rglob("*.py")
                 if "_work" not in p.parts and re.search(r"sys\.path\.(insert|append)", p.read_text())]  # fmt: skip
    assert offenders == []


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_parses_its_arguments(script: str) -> None:
    out = subprocess.run([sys.executable, "-m", f"benchmarks.{script}", "--help"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout


def test_the_gpu_checks_condense_command_parses(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """gpu_check needs CUDA to run; its `dmnas condense` command line must still be one the CLI takes."""
    gpu_check = bench_module("gpu_check", monkeypatch)
    from dmnas.cli import build_parser

    seen: list[list[str]] = []

    def capture(cmd: list[str], *args: object, **kwargs: object) -> tuple[str, float]:
        argv = ast.literal_eval(re.search(r"sys\.argv=(\[.*?\]);", cmd[-1]).group(1))
        seen.append(argv)
        raise StopIteration

    monkeypatch.setattr(gpu_check, "run", capture)
    with pytest.raises(StopIteration):
        gpu_check.dmnas_condense(tmp_path, "fashion_mnist", tmp_path, "bf16", 3, {})
    argv = seen[0][1:]
    build_parser(argv).parse_args(argv)  # SystemExit(2) on an option the CLI no longer takes
    from dmnas.condensation.dm import RunOptions

    RunOptions(checkpoint_every=int(argv[argv.index("--checkpoint-every") + 1]))


@pytest.mark.slow
def test_the_speed_benchmarks_dmnas_run_condenses(fmnist_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:  # fmt: skip
    speed = bench_module("bench_condense_speed", monkeypatch)
    res = speed.dmnas_run(tmp_path, 2, dict(fmnist_env, OMP_NUM_THREADS="1"), "cpu", "off")
    assert res["seconds_per_iteration"] > 0


@pytest.mark.slow
def test_bench_draws_scores_and_reports_a_tiny_table(fmnist_env: dict[str, str], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmarks.bench_draws", "--draws", "2", "--methods", "early 10k passes", "naswot",
           "--arch-names", "d1_w8_leakyrelu_layernorm_avgpooling", "d1_w8_sigmoid_batchnorm_avgpooling",
           "d1_w8_relu_batchnorm_none",
           "--samples", "20", "--results", str(tmp_path), "--work", str(tmp_path / "work")]  # fmt: skip
    out = subprocess.run(cmd, env=dict(fmnist_env, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600,
                         cwd=ROOT)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    md = (tmp_path / "proxy_draws.md").read_text()
    assert "early 10k passes | 2 |" in md and "naswot | 2 |" in md
    assert "## The equal-compute frontier" in md and (tmp_path / "proxy_draws.png").is_file()  # two families


def test_the_frontier_reading_needs_a_paired_interval_and_no_more_seconds() -> None:
    from benchmarks.bench_draws import best_per_budget

    res = {"methods": [{"method": "a", "s_per_arch": 1.0}, {"method": "b", "s_per_arch": 2.0}],
           "paired_methods": [{"a": "a", "b": "b", "measure": "weighted_tau", "delta": 0.2, "ci95": [0.1, 0.3]},
                              {"a": "a", "b": "b", "measure": "regret_at3", "delta": 0.5, "ci95": [0.1, 0.9]},
                              {"a": "a", "b": "b", "measure": "spearman", "delta": 0.1, "ci95": [-0.1, 0.3]}]}  # fmt: skip
    assert best_per_budget(res, "weighted_tau")[0].startswith("- a beats b on weighted_tau")
    assert best_per_budget(res, "regret_at3")[0].startswith("- no method")  # b has lower regret but costs more
    assert best_per_budget(res, "spearman")[0].startswith("- no method")  # the interval covers 0


def test_the_top_study_reads_a_longer_recipe_against_its_own_seed_noise() -> None:
    """Hand-made: four architectures whose two short seeds agree perfectly; a long recipe that keeps
    the order agrees at 1 (top-2 overlap 1), one that reverses it at -1 (overlap 0); gains are the
    long accuracy minus the short seed mean, in points."""
    from benchmarks.top_truth import study_agreement

    short = {a: {0: acc, 1: acc + 0.002} for a, acc in zip("abcd", (0.90, 0.89, 0.88, 0.87), strict=True)}
    same = study_agreement(short, {"a": 0.93, "b": 0.92, "c": 0.91, "d": 0.90}, ks=(2,))
    assert same["spearman_short_mean_vs_long"] == pytest.approx(1.0)
    assert same["spearman_within_short"] == pytest.approx(1.0)
    assert same["top_overlap"] == {"2": 1.0} and same["top_overlap_within_short"] == {"2": 1.0}
    assert same["gain_pts_mean"] == pytest.approx(2.9) and same["gain_pts_sd"] == pytest.approx(0.0, abs=1e-9)
    flip = study_agreement(short, {"a": 0.90, "b": 0.91, "c": 0.92, "d": 0.93}, ks=(2,))
    assert flip["spearman_short_mean_vs_long"] == pytest.approx(-1.0) and flip["top_overlap"] == {"2": 0.0}
    assert flip["long_rank"] == {"a": 4, "b": 3, "c": 2, "d": 1} and flip["short_rank"]["a"] == 1
    # only the architectures the long recipe has count; one seed of the short recipe is not a mean
    part = study_agreement(short | {"e": {0: 0.5}}, {"a": 0.93, "b": 0.92, "c": 0.91, "e": 0.99}, ks=(2,))
    assert part["archs"] == ["a", "b", "c"] and part["n"] == 3


def test_rescoring_under_two_truths_follows_the_truth_not_the_draws() -> None:
    """A proxy that is one truth's order is perfect under it and reversed under its mirror; the
    pairing against the parameter-count baseline says by how much, with the interval's sign."""
    from benchmarks.truth_recipes import rescore

    t = np.linspace(0.90, 0.80, 10)
    scored = {"oracle": np.tile(t, (3, 1)), "params": np.tile(t[::-1], (3, 1))}
    res = rescore(scored, {"short": t, "mirror": t[::-1]}, samples=50)
    assert res["short"]["methods"]["oracle"]["weighted_tau"]["mean"] == pytest.approx(1.0)
    assert res["short"]["methods"]["oracle"]["regret_at1"]["mean"] == pytest.approx(0.0)
    assert res["mirror"]["methods"]["oracle"]["weighted_tau"]["mean"] == pytest.approx(-1.0)
    short_pair, mirror_pair = res["short"]["vs_baseline"][0], res["mirror"]["vs_baseline"][0]
    assert short_pair["delta"] == pytest.approx(2.0) and short_pair["ci95"][0] > 0
    assert mirror_pair["delta"] == pytest.approx(-2.0) and mirror_pair["ci95"][1] < 0
