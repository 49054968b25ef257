"""What a search found, whatever ground truth exists: the proxy's ranking, its pick, and -- where no
full-data results match the space and recipe -- the next step with its price.

A search on a space without a shipped table (the DM paper's ``convnet_grid``) used to get a page of
n/a. The ranking and the pick need no ground truth; the agreement does, and the report then says
what would give it (``--ground-truth N``), what it costs on this machine (from the seconds per
image pass the search itself measured) and what interval N buys.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from dmnas.groundtruth.sampling import proxy_order
from dmnas.groundtruth.truth import GroundTruth
from dmnas.reporting.types import ProxyScores

TOP_ROWS = 10
# The whole-table Spearman of the training proxies on the shipped tables (0.92-0.94 on the
# 92 uniformly drawn architectures, benchmarks/results/proxy_ablation_pooled_extended.md): the rho
# assumed when pricing an interval for a space that has no ground truth yet.
ASSUMED_RHO = 0.9
TARGET_HALF_WIDTH = 0.1  # an interval of rho +/- 0.1 tells a good proxy from a mediocre one
Z95 = 1.959964


def spearman_half_width(rho: float, n: int) -> float:
    """Half-width of the 95 % interval of Spearman's rho at ``n`` architectures (Fisher z with
    Bonett & Wright's variance (1 + rho^2 / 2) / (n - 3)), the larger side."""
    if n <= 3:
        return float("inf")
    z, se = math.atanh(min(rho, 0.999)), math.sqrt((1 + rho * rho / 2) / (n - 3))
    return max(math.tanh(z + Z95 * se) - rho, rho - math.tanh(z - Z95 * se))


def recommended_n(rho: float, space_size: int, target: float = TARGET_HALF_WIDTH) -> int:
    """The smallest sample whose interval is within ``target`` at ``rho`` (at most the space)."""
    for n in range(5, max(6, space_size + 1)):
        if spearman_half_width(rho, n) <= target:
            return n
    return max(5, space_size)


@dataclass(frozen=True)
class RankedArch:
    rank: int
    arch: str
    params: int | None
    score: float
    spread: float | None  # sd over proxy seeds, when the search averaged several
    full_acc: float | None
    seconds: float


def ranking(p: ProxyScores, truth: GroundTruth) -> list[RankedArch]:
    """Every architecture the proxy scored, best first."""
    mean = truth.mean
    out = []
    for i, arch in enumerate(proxy_order(p.scores), 1):
        d = p.details.get(arch, {})
        seeds = d.get("seed_scores") or []
        out.append(
            RankedArch(
                i, arch, d.get("params"), p.scores[arch], float(np.std(seeds, ddof=1)) if len(seeds) > 1 else None,
                mean.get(arch), p.seconds.get(arch, float("nan")),
            )
        )
    return out


def ranking_csv(rows: list[RankedArch]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "arch", "params", "proxy_score", "proxy_score_sd", "full_acc", "seconds"])
    for r in rows:
        w.writerow([r.rank, r.arch, r.params, f"{r.score:.6g}", "" if r.spread is None else f"{r.spread:.4g}",
                    "" if r.full_acc is None else f"{r.full_acc:.4f}", f"{r.seconds:.2f}"])  # fmt: skip
    return buf.getvalue()


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}"


def found_lines(p: ProxyScores, truth: GroundTruth) -> list[str]:
    """The proxy's top 10 as a table and its pick, in Markdown."""
    rows = ranking(p, truth)
    if not rows:
        return [f"### {p.label}", "", "No architecture was scored (every trial failed); see the search's results.json.", ""]
    pick = rows[0]
    sd = "" if pick.spread is None else f" ± {pick.spread:.4f} over proxy seeds"
    known = f"; full-data accuracy {_pct(pick.full_acc)} %" if pick.full_acc is not None else ""
    lines = [
        f"### {p.label}: {len(rows)} architectures scored",
        "",
        f"**Pick: `{pick.arch}`** (proxy score {pick.score:.4f}{sd}{known}).",
        "",
        "| rank | architecture | params | proxy score | ± sd (seeds) | full-data acc % | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows[:TOP_ROWS]:
        lines.append(
            f"| {r.rank} | `{r.arch}` | {'—' if r.params is None else f'{r.params:,}'} | {r.score:.4f} "
            f"| {'—' if r.spread is None else f'{r.spread:.4f}'} | {_pct(r.full_acc)} | {r.seconds:.1f} |"
        )
    if len(rows) > TOP_ROWS:
        lines.append(f"| … | {len(rows) - TOP_ROWS} more in ranking.csv | | | | | |")
    return [*lines, ""]


def conv_flops(arch: str, image_hw: int = 28, channels: int = 1) -> float:
    """Multiply-adds of one forward pass of a ConvNet of the family (3x3 convolutions; pooling
    halves the map): what the seconds of training scale with across depths and widths."""
    from dmnas.models import parse_arch

    spec = parse_arch(arch)
    hw, c_in, total = image_hw, channels, 0.0
    for _ in range(spec.depth):
        total += hw * hw * c_in * spec.width * 9
        c_in = spec.width
        if spec.pool != "none":
            hw = max(1, hw // 2)
    return total + hw * hw * c_in * 10


def seconds_per_flop(records: dict[str, float], image_hw: int, channels: int) -> float | None:
    """Median full-data training seconds per (forward multiply-add x image pass) over ground-truth
    records (arch -> seconds per image pass); None without records."""
    rates = [sec / conv_flops(a, image_hw, channels) for a, sec in records.items() if sec > 0]
    return float(np.median(rates)) if rates else None


def full_seconds_per_arch(
    p: ProxyScores, full_images: int, full_epochs: int, seeds: int, rate: float | None, image_hw: int = 28,
    channels: int = 1,
) -> float | None:
    """Full-data training seconds of one architecture of the search (mean over what it scored) for
    ``seeds`` seeds: the forward cost of each architecture times ``rate``, the seconds per
    multiply-add per image pass that full-data training measured on ground-truth records."""
    if rate is None or not p.scores:
        return None
    flops = float(np.mean([conv_flops(a, image_hw, channels) for a in p.scores]))
    return rate * flops * full_images * full_epochs * seeds


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def next_step_lines(
    proxies: list[ProxyScores], truth: GroundTruth, full_epochs: int, rate: float | None, seeds: int = 2,
    image_hw: int = 28, channels: int = 1,
) -> list[str]:
    """No ground truth for this space and recipe: the command that adds it to each search, its price
    and what interval it buys."""
    known = len(set(truth.mean) & set().union(*(p.scores for p in proxies)))
    what = (
        f"Full-data results ({truth.recipe}, key {truth.recipe_key}) are known for {known} of these architectures, "
        "but not for an unbiased sample of them (confirmation picks only)"
        if known
        else f"No full-data results match this space and recipe ({truth.recipe}, key {truth.recipe_key})"
    )
    lines = [f"{what}, so how well this ranking agrees with full training is unknown. To measure it:", ""]
    for p in proxies:
        size = max(p.space_size, len(p.scores))
        n = min(recommended_n(ASSUMED_RHO, size), size)
        per_arch = full_seconds_per_arch(p, truth.images, full_epochs, seeds, rate, image_hw, channels)
        cost = (
            f"about {_duration(n * per_arch / max(1, p.concurrency))} "
            f"({_duration(per_arch)} per architecture for {seeds} seeds, scaled by each architecture's forward "
            "cost from the seconds of the full-data trainings on record; a rough guide, on one thread each)"
            if per_arch
            else "of unknown cost (no full-data training on record to scale from)"
        )
        command = (
            f"dmnas search --resume {p.experiment} --ground-truth {n}"
            if p.tuner == "grid"
            else f"dmnas search --space {p.space_name} --proxy {p.proxy} --ground-truth {n}"
        )
        width = spearman_half_width(ASSUMED_RHO, n)
        lines.append(
            f"- `{command}`"
            + (" (adds full-data training of a uniform sample; nothing is scored again)" if p.tuner == "grid" else "")
            + f": {n} of {size} architectures x {seeds} seeds of {full_epochs}-epoch training, {cost}. "
            + (f"At a Spearman near {ASSUMED_RHO} (the training proxies' whole-table value on the shipped tables) its "
               f"95 % interval is about ±{width:.2f}." if width < 0.5 else "Too few architectures for a useful "
               "interval of Spearman: the ranking can be checked, not measured.")
        )  # fmt: skip
    return [*lines, ""]
