"""The ranking yardstick: sampling, small-sample rules, noise ceiling, confirmation, seeded
ground-truth store, zero-cost scores against hand computations, and the report built from them."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dmnas.reporting.stats import agreement, confirmation, noise_ceiling, top_k_overlap, top_set
from dmnas.groundtruth.store import GroundTruthStore, merged, recipe_key
from dmnas.reporting.build import build_rows
from dmnas.reporting.report import make_report, write_report
from dmnas.groundtruth.truth import GroundTruth
from dmnas.reporting.types import ProxyScores
from dmnas.groundtruth.sampling import plan_ground_truth, proxy_order, systematic_sample, top_k
from dmnas.nas.trials.zero_cost import naswot, rankable, synflow
from dmnas.train import TrainRecipe

# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("total,n", [(37, 8), (10, 3), (12, 12), (5, 1)])
def test_every_architecture_has_the_stated_inclusion_probability(total: int, n: int) -> None:
    order = [f"a{i}" for i in range(total)]
    draws = 20000
    counts = dict.fromkeys(order, 0)
    for seed in range(draws):
        picked = systematic_sample(order, n, seed)
        assert len(picked) == len(set(picked)) == n
        for a in picked:
            counts[a] += 1
    p = n / total
    tol = 4 * math.sqrt(p * (1 - p) / draws) + 1e-9  # 4 standard errors
    assert all(abs(c / draws - p) <= tol for c in counts.values()), counts


def test_sample_spreads_over_the_ranking_and_confirmation_is_apart() -> None:
    scores = {f"a{i:02d}": 1 - i / 100 for i in range(40)}  # a00 best
    picked = systematic_sample(proxy_order(scores), 4, seed=3)
    assert sorted(int(a[1:]) // 10 for a in picked) == [0, 1, 2, 3]  # one per quarter of the ranking
    plan = plan_ground_truth(scores, 40, 4, 3, [0, 1], seed=3)
    assert plan.sample == picked and plan.confirm == ["a00", "a01", "a02"]
    assert plan.inclusion_probability == pytest.approx(0.1)
    jobs = plan.jobs()
    assert len(jobs) == len(set(jobs)) == 2 * len(set(plan.sample) | set(plan.confirm))
    assert top_k({"b": 1.0, "a": 1.0, "c": 0.5}, 2) == ["a", "b"]  # ties by name


# ---------------------------------------------------------------- small-sample rules


def test_top_k_counts_ties_on_both_sides_and_needs_2k() -> None:
    full = np.array([0.9, 0.8, 0.8, 0.5, 0.4, 0.3])
    assert top_set(full, 2) == {0, 1, 2}  # the tie at the 2nd place is in
    proxy = np.array([0.1, 0.9, 0.2, 0.8, 0.0, 0.05])  # proxy's best two: 1 and 3
    assert top_k_overlap(proxy, full, 2) == pytest.approx(0.5)
    assert math.isnan(top_k_overlap(proxy, full, 5))  # 6 architectures: top-5 says nothing


def test_agreement_reports_n_a_below_its_minimum_sizes() -> None:
    rng = np.random.default_rng(0)
    small = agreement(np.arange(6.0), np.arange(6.0))
    assert small.n == 6 and small.spearman == pytest.approx(1.0)
    assert (
        math.isnan(small.top5_overlap)
        and math.isnan(small.top10pct_overlap)
        and math.isnan(small.spearman_top10pct)
    )
    full = rng.normal(size=60)
    big = agreement(full + rng.normal(scale=0.1, size=60), full)
    assert big.top10pct_k == 6 and not math.isnan(big.spearman_top10pct) and 0 <= big.top10pct_overlap <= 1
    lo, hi = big.spearman_ci95
    assert lo <= big.spearman <= hi


def test_noise_ceiling_uses_the_shared_seed_pair() -> None:
    per_seed = {f"a{i}": {0: i / 10, 1: i / 10 + (0.05 if i % 2 else 0)} for i in range(8)}
    per_seed["lonely"] = {0: 0.5}
    c = noise_ceiling(per_seed)
    assert c is not None and c.n == 8 and c.seeds == (0, 1)
    assert 0.9 < c.spearman <= 1.0 and c.seed_sd > 0
    assert noise_ceiling({"a": {0: 0.5}}) is None


def test_confirmation_names_the_winner_and_regret_against_the_best_known() -> None:
    c = confirmation(["x", "y", "z"], {"x": 0.80, "y": 0.85, "best": 0.90, "other": 0.5})
    assert (c.k, c.winner, c.best_known, c.n_known) == (2, "y", "best", 4)
    assert c.regret == pytest.approx(0.05)
    assert confirmation(["x"], {}).winner is None


# ---------------------------------------------------------------- ground-truth store


def test_store_keys_records_by_recipe_and_seed(tmp_path: Path) -> None:
    store = GroundTruthStore(tmp_path)
    r1, r2 = TrainRecipe(epochs=3), TrainRecipe(epochs=3, schedule="cosine")
    assert recipe_key(r1) == recipe_key(TrainRecipe(epochs=3)) != recipe_key(r2)
    store.put("fp", "archA", r1, 0, {"val_acc": 0.5})
    store.put("fp", "archA", r1, 1, {"val_acc": 0.6})
    assert store.get("fp", "archA", r1, 1)["val_acc"] == 0.6 and store.get("fp", "archA", r1, 2) is None
    assert store.get("fp", "archA", r2, 0) is None and store.get("other", "archA", r1, 0) is None
    assert {a: sorted(s) for a, s in store.all("fp", r1).items()} == {"archA": [0, 1]}
    (store.folder("fp", r1) / "archB__seed0.json").write_text("{truncated")
    assert "archB" not in store.all("fp", r1)  # damaged: counts as missing
    assert store.get("fp", "archB", r1, 0) is None


def test_first_layout_records_keep_their_key_and_are_migrated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Records written before seeds existed: ``<recipe key>/<arch>.json`` with the step schedule.
    Their recipe key is unchanged by the new schedule field, and they are read as seed 0."""
    from dmnas.condensation.cache import cache_key

    old = TrainRecipe(epochs=3)
    legacy_key = cache_key({"recipe": {k: v for k, v in old.to_dict().items() if k != "schedule"}})
    assert recipe_key(old) == legacy_key
    folder = tmp_path / "fp" / legacy_key
    folder.mkdir(parents=True)
    (folder / "d1_w8_relu_none_avgpooling.json").write_text(json.dumps({"val_acc": 0.7, "train_seconds": 5}))
    store = GroundTruthStore(tmp_path)
    with caplog.at_level("WARNING"):
        assert store.get("fp", "d1_w8_relu_none_avgpooling", old, 0)["val_acc"] == 0.7
    assert "migrated" in caplog.text
    assert (folder / "d1_w8_relu_none_avgpooling__seed0.json").exists()
    assert not (folder / "d1_w8_relu_none_avgpooling.json").exists()


def test_merged_stores_prefer_the_first(tmp_path: Path) -> None:
    a, b = GroundTruthStore(tmp_path / "a"), GroundTruthStore(tmp_path / "b")
    r = TrainRecipe(epochs=2)
    a.put("fp", "x", r, 0, {"val_acc": 0.1})
    b.put("fp", "x", r, 0, {"val_acc": 0.9})
    b.put("fp", "x", r, 1, {"val_acc": 0.8})
    m = merged([a, b], "fp", r)
    assert m["x"][0]["val_acc"] == 0.1 and m["x"][1]["val_acc"] == 0.8


# ---------------------------------------------------------------- zero-cost scores


def _mlp() -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.LayerNorm(2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 4.0]]))
        net[3].weight.copy_(torch.tensor([[-1.0, 2.0]]))
    return net


def test_synflow_matches_a_hand_computation() -> None:
    # |W1| = [[1,2],[3,4]], |W2| = [1,2], x = 1: h = [3,7], R = 17.
    # sum |W2 * h| = 3 + 14 = 17; dR/dW1[i,j] = |W2|[i]: sum |W1 * grad| = 1 + 2 + 6 + 8 = 17. Norm bypassed.
    net = _mlp()
    assert synflow(net, torch.zeros(5, 2)) == pytest.approx(34.0)
    assert net[0].weight[0, 1].item() == -2.0  # the caller's model is untouched


def test_naswot_matches_a_hand_computation() -> None:
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU())
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(torch.tensor([0.0, -1.0, -2.0]))
    x = torch.tensor([[0.5], [1.5], [2.5]])  # codes 100, 110, 111
    # K[i, j] = units where i and j agree = [[3,2,1],[2,3,2],[1,2,3]], det 8
    assert naswot(net, x) == pytest.approx(math.log(8.0))
    x_dup = torch.tensor([[0.5], [0.6], [2.5]])  # two identical codes: singular kernel
    assert naswot(net, x_dup) == -math.inf and rankable(-math.inf) < rankable(-1e6)


@pytest.mark.parametrize(
    "arch",
    [
        "d1_w4_sigmoid_none_none",
        "d2_w8_relu_batchnorm_maxpooling",
        "d3_w8_leakyrelu_layernorm_avgpooling",
        "d4_w8_relu_groupnorm_maxpooling",
    ],
)
def test_zero_cost_scores_are_finite_on_the_convnet_family(arch: str) -> None:
    from dmnas.models import build_convnet, parse_arch

    net = build_convnet(parse_arch(arch), (1, 28, 28), 10, torch.Generator().manual_seed(0))
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    assert math.isfinite(synflow(net, x)) and synflow(net, x) > 0
    assert math.isfinite(rankable(naswot(net, x)))


# ---------------------------------------------------------------- report


def _truth(n_unbiased: int = 12) -> GroundTruth:
    per_seed = {
        f"a{i:02d}": {0: 0.9 - i / 100, 1: 0.9 - i / 100 + (0.004 if i % 3 else -0.004)} for i in range(14)
    }
    unbiased = frozenset(f"a{i:02d}" for i in range(2, 2 + n_unbiased))  # a00, a01 only confirmed
    return GroundTruth(
        per_seed,
        unbiased,
        TrainRecipe(epochs=4, schedule="cosine", strategy="none").describe(),
        "k123",
        54000,
        {"table": n_unbiased},
    )


def test_report_estimates_only_from_the_unbiased_sample_and_confirms_apart(tmp_path: Path) -> None:
    truth = _truth()
    mean = truth.mean
    good = ProxyScores(
        "dm", "e1", "dm", {a: v - 0.3 for a, v in mean.items()}, dict.fromkeys(mean, 2.0), 100, 0
    )
    bad = ProxyScores(
        "synflow", "e2", "synflow", {a: -v for a, v in mean.items()}, dict.fromkeys(mean, 0.01), 1, 0
    )
    rows = build_rows([good, bad], truth, confirm_k=3)
    assert rows[0].estimate.n == 12 and rows[0].estimate.spearman == pytest.approx(1.0)
    assert rows[1].estimate.spearman == pytest.approx(-1.0)
    assert rows[0].confirm.winner == "a00" and rows[0].confirm.regret == 0.0  # found via confirmation only
    assert rows[1].confirm.winner == "a11" and rows[1].confirm.regret > 0
    assert rows[0].seconds_per_arch == 2.0 and rows[1].total_seconds == pytest.approx(0.14)
    md = make_report([good, bad], truth, 3).to_markdown()
    assert "4 ep, cosine lr 0.01" in md and "Noise ceiling (Spearman between seed 0 and seed 1" in md
    assert "| dm | 12 | 1.000" in md and "n/a" in md  # rho in top-10 % has 2 architectures: n/a
    paths = write_report(tmp_path, make_report([good, bad], truth, 3))
    data = json.loads(paths["json"].read_text())
    assert data["ceiling"]["n"] == 12 and data["rows"][0]["estimate"]["n"] == 12
    assert data["rows"][0]["confirmation"]["winner"] == "a00"
    for key in ("scatter_0_png", "ranks_1_png", "proxies_png"):
        assert paths[key].read_bytes()[:4] == b"\x89PNG", key
    for key in ("scatter_0_svg", "proxies_svg"):
        assert paths[key].read_text().lstrip().startswith("<?xml"), key


def test_a_tuner_that_visited_part_of_the_space_is_charged_against_the_whole_space() -> None:
    # Hyperband, BOHB or TPE visit a subset; the best architecture may be one they never trained.
    truth = _truth()
    visited = {a: v for a, v in truth.mean.items() if a >= "a05"}  # a00..a04 (the best) unvisited
    space = frozenset(truth.mean) | {"never_trained_on_full_data"}
    partial = ProxyScores("dm", "e", "dm", visited, dict.fromkeys(visited, 1.0), 10, 0)
    rows = build_rows([partial, replace(partial, space=space)], truth, confirm_k=3)
    assert rows[0].confirm.best_known == "a05" and rows[0].confirm.regret == 0.0  # only what it saw
    assert rows[1].confirm.best_known == "a00" and rows[1].confirm.n_known == 14
    assert rows[1].confirm.winner == "a05"
    assert rows[1].confirm.regret == pytest.approx(truth.mean["a00"] - truth.mean["a05"]) and rows[1].confirm.regret > 0.04
    assert rows[0].estimate.n == rows[1].estimate.n == 9  # estimates: still only what it scored


@pytest.mark.parametrize("tuner, unbiased", [("grid", {"a0", "a1"}), ("random", {"a0", "a1"}), ("tpe", set())])
def test_a_full_data_search_is_an_unbiased_sample_only_of_what_it_trained_blindly(
    tmp_path: Path, tuner: str, unbiased: set[str]
) -> None:
    from dmnas.groundtruth.tables import ground_truth_for
    from dmnas.nas.folder import SearchMeta
    from dmnas.reporting.make import search_samples

    recipe = TrainRecipe(epochs=2, schedule="cosine", strategy="none")
    store = GroundTruthStore(tmp_path / "ground_truth")
    for i in range(4):  # a2, a3: trained by another search (e.g. confirmation), not by this one
        store.put("fp", f"a{i}", recipe, 0, {"val_acc": 0.5 + i / 100})
    meta = SearchMeta(id="s1", space="s.yaml", proxy="full", tuner=tuner, fingerprint="fp",
                      full_recipe=recipe.to_dict(), full_images=100)  # fmt: skip
    results = {"trials": [{"record": {"arch": "a0"}}, {"record": {"arch": "a1"}}, {"record": None}]}
    samples = search_samples([(meta, results)], tmp_path, recipe)
    truth = ground_truth_for("fp", samples, store, [], recipe, {"a0", "a1", "a2", "a3"}, 100)
    assert set(truth.per_seed) == {"a0", "a1", "a2", "a3"} and set(truth.unbiased) == unbiased


def test_report_without_unbiased_sample_says_so() -> None:
    truth = GroundTruth({"a": {0: 0.5}}, frozenset(), "r", "k", 10, {})
    proxies = [ProxyScores("dm", "e", "dm", {"a": 0.1}, {"a": 1.0}, 1, 0)]
    rows = build_rows(proxies, truth, 3)
    assert rows[0].estimate is None and rows[0].confirm.winner == "a"
    md = make_report(proxies, truth, 3).to_markdown()
    # no table of n/a: the pick, what is known, and the next step (issue: a page of n/a)
    assert "**Pick: `a`**" in md and "known for 1 of these architectures" in md and "| dm | 0 | n/a" not in md
    assert "--ground-truth" in md and "## Confirmation" in md
