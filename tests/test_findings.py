"""The report always says what a search found; without ground truth it prices the next step instead
of printing a page of n/a."""

from __future__ import annotations

import pytest

from dmnas.groundtruth.truth import GroundTruth
from dmnas.reporting.findings import conv_flops, recommended_n, seconds_per_flop, spearman_half_width
from dmnas.reporting.report import make_report
from dmnas.reporting.types import ProxyScores

ARCHS = [f"d{d}_w{w}_relu_instancenorm_avgpooling" for d in (1, 2, 3) for w in (32, 64, 128)]


def scores(**kw: object) -> ProxyScores:
    base = dict(
        label="dm ipc10 200ep (abcd1234)", experiment="abcd1234", proxy="dm",
        scores={a: 0.5 + 0.01 * i for i, a in enumerate(ARCHS)}, seconds={a: 3.0 for a in ARCHS}, images=100,
        failed=0, space=frozenset([*ARCHS, *(f"x{i}" for i in range(711))]),
        details={a: {"params": 1000 + i, "seed_scores": [0.5, 0.52]} for i, a in enumerate(ARCHS)},
        passes_per_arch=20000, tuner="grid", concurrency=2, space_name="convnet_grid",
    )  # fmt: skip
    base.update(kw)
    return ProxyScores(**base)  # type: ignore[arg-type]


def no_truth() -> GroundTruth:
    return GroundTruth({}, frozenset(), "2 ep, cosine lr 0.01", "4fa13f041db78470", 54000, {})


def test_a_search_without_ground_truth_gets_its_ranking_pick_and_a_priced_next_step() -> None:
    report = make_report([scores()], no_truth(), 3)
    report = type(report)(**{**report.__dict__, "full_epochs": 2, "train_rate": 1e-9})
    md = report.to_markdown()
    best = ARCHS[-1]
    assert f"**Pick: `{best}`**" in md
    assert md.index(f"| 1 | `{best}`") < md.index(f"| 2 | `{ARCHS[-2]}`")
    assert "0.0141" in md  # the spread of the seed scores [0.5, 0.52]
    assert "n/a" not in md and "top 0" not in md
    assert "dmnas search --resume abcd1234 --ground-truth" in md and "interval is about ±0.1" in md
    ranking = report.to_dict()["rankings"]["dm ipc10 200ep (abcd1234)"]
    assert [r["arch"] for r in ranking] == ARCHS[::-1]


def test_a_non_grid_search_is_told_to_start_a_new_one() -> None:
    report = make_report([scores(tuner="tpe")], no_truth(), 3)
    assert "dmnas search --space convnet_grid --proxy dm --ground-truth" in report.to_markdown()


def test_interval_width_falls_with_n() -> None:
    assert spearman_half_width(0.9, 10) > spearman_half_width(0.9, 40) > spearman_half_width(0.9, 200)
    n = recommended_n(0.9, 720)
    assert spearman_half_width(0.9, n) <= 0.1 < spearman_half_width(0.9, n - 1)
    assert recommended_n(0.9, 8) == 8  # a tiny space: all of it


def test_forward_cost_by_hand() -> None:
    # one 3x3 conv of 1 -> 4 channels on 28x28, pooled to 14x14, then 10 outputs
    assert conv_flops("d1_w4_relu_none_avgpooling") == 28 * 28 * 1 * 4 * 9 + 14 * 14 * 4 * 10
    rate = seconds_per_flop({"d1_w4_relu_none_avgpooling": 2.0}, 28, 1)
    assert rate == pytest.approx(2.0 / conv_flops("d1_w4_relu_none_avgpooling"))


def test_scatter_axes_frame_the_good_architectures() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from dmnas.reporting.figures import zoom_to_top

    rng = np.random.default_rng(0)
    ys = [10.0] * 5 + list(86 + 4 * rng.random(43))  # five broken architectures at 10 %
    xs = list(rng.random(48))
    fig, ax = plt.subplots()
    assert zoom_to_top(ax, xs, ys) == 5
    assert ax.get_ylim()[0] > 80  # the axis is spent on the 43, not on the broken five
    plt.close(fig)
    fig, ax = plt.subplots()
    assert zoom_to_top(ax, xs, list(86 + 4 * rng.random(48))) == 0  # nothing to leave out
    plt.close(fig)


def test_reports_name_the_parameter_count_baseline() -> None:
    from dmnas.reporting.make import baseline_notes, parameter_counts

    archs = [f"d{d}_w{w}_relu_instancenorm_none" for d in (1, 2, 3) for w in (8, 16)]
    counts = parameter_counts(archs, 28, 1, 10)
    # a truth that follows the parameter count exactly: the baseline reads 1.0 on it
    truth = GroundTruth({a: {0: counts[a] / 1e6} for a in archs}, frozenset(archs), "r", "k", 100, {})
    (line,) = baseline_notes(truth, "fashion_mnist", 28, 1)
    assert "Spearman 1.000 on the unbiased sample (n=6)" in line and "weighted Kendall τ 1.000" in line
    assert baseline_notes(GroundTruth({}, frozenset(), "r", "k", 100, {}), "fashion_mnist", 28, 1) == []
