"""The report's figures (matplotlib, Agg backend: no display needed), each as PNG and SVG.

Per proxy: score vs full-data accuracy, and rank vs rank; for the report: every proxy's Spearman
with its interval against the noise ceiling. Architectures of the unbiased sample are filled
dots; those known only through confirmation or other runs are hollow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from dmnas.reporting.stats import Ceiling, SeedCeilings
    from dmnas.groundtruth.truth import GroundTruth
    from dmnas.reporting.types import Row

FORMATS = ("png", "svg")


def _pyplot() -> Any:
    """matplotlib.pyplot, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works on machines without a display
    import matplotlib.pyplot as plt

    return plt


def _legend(ax: Any) -> None:
    """A legend only when something is labelled (an empty one makes matplotlib warn)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def _save(fig: Any, stem: Path) -> dict[str, Path]:
    out = {}
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        out[fmt] = path
    _pyplot().close(fig)
    return out


def scatter(stem: Path, row: Row, truth: GroundTruth) -> dict[str, Path]:
    """Proxy score (x) vs seed-mean full-data accuracy (y); the pick and the best labelled."""
    plt = _pyplot()
    p, mean = row.scores, truth.mean
    names = sorted(set(p.scores) & set(mean))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for unbiased, style in (
        (True, {"c": "tab:blue"}),
        (False, {"facecolors": "none", "edgecolors": "tab:gray"}),
    ):
        sel = [n for n in names if (n in truth.unbiased) == unbiased]
        if sel:
            ax.scatter(
                [p.scores[n] for n in sel],
                [100 * mean[n] for n in sel],
                s=22,
                label="unbiased sample" if unbiased else "other known",
                **style,
            )
    c = row.confirm
    marks = [(c.winner, "winner", "tab:red"), (c.best_known, "best known", "tab:green")]
    if c.winner and c.winner == c.best_known:  # one label, not two on top of each other
        marks = [(c.winner, "winner = best known", "tab:red")]
    for arch, _, color in marks:
        if arch and arch in p.scores:
            ax.scatter([p.scores[arch]], [100 * mean[arch]], s=60, marker="*", c=color, zorder=3)
    clipped = zoom_to_top(ax, [p.scores[n] for n in names], [100 * mean[n] for n in names])
    for i, (arch, text, color) in enumerate(marks):
        if arch and arch in p.scores:
            # labels stacked in the lower right, where a ranking proxy leaves the plot empty, with arrows
            ax.annotate(
                f"{text}: {arch}",
                (p.scores[arch], 100 * mean[arch]),
                xytext=(0.98, 0.16 - 0.08 * i),
                textcoords="axes fraction",
                fontsize=7,
                color=color,
                ha="right",
                arrowprops={"arrowstyle": "->", "color": color, "lw": 0.7},
            )
    if clipped:
        ax.text(0.01, 0.01, f"{clipped} far lower, drawn at the edge (▼)", transform=ax.transAxes, fontsize=7,
                color="tab:gray", va="bottom")  # fmt: skip
    a = row.estimate
    title = (
        f"{p.label}\nSpearman {a.spearman:.3f}, Kendall {a.kendall_tau:.3f} (n={a.n})"
        if a
        else f"{p.label}\nno unbiased sample"
    )
    ax.set(title=title, xlabel=f"proxy score ({p.proxy})", ylabel="full-data val accuracy, seed mean (%)")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _save(fig, stem)


def zoom_to_top(ax: Any, xs: list[float], ys: list[float], share: float = 0.1) -> int:
    """Spend the axes where NAS decides: when the worst ``share`` of the architectures (broken ones,
    10 % accuracy) stretch the accuracy axis to more than twice the others' range, the axes frame
    the rest and the worst are drawn as triangles on the lower edge. Returns how many were."""
    if len(ys) < 10:
        return 0
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    cut = np.quantile(y, share)
    keep = y > cut
    if keep.sum() < 3 or np.ptp(y) <= 2 * np.ptp(y[keep]):
        return 0
    pad_y, pad_x = 0.08 * (np.ptp(y[keep]) or 1.0), 0.08 * (np.ptp(x[keep]) or 1.0)
    lo_y, hi_y = y[keep].min() - pad_y, y[keep].max() + pad_y
    lo_x, hi_x = x[keep].min() - pad_x, x[keep].max() + pad_x
    ax.set_ylim(lo_y, hi_y)
    ax.set_xlim(lo_x, hi_x)
    out = ~keep
    ax.scatter(np.clip(x[out], lo_x, hi_x), np.full(out.sum(), lo_y), marker="v", s=22, c="tab:gray", clip_on=False)
    return int(out.sum())


def ranks(stem: Path, row: Row, truth: GroundTruth) -> dict[str, Path]:
    """Rank by the proxy vs rank by full data over the unbiased sample (1 = best); the diagonal
    is perfect agreement."""
    plt = _pyplot()
    p, mean = row.scores, truth.mean
    names = sorted(set(p.scores) & set(mean) & truth.unbiased)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if names:
        rp = stats.rankdata([-p.scores[n] for n in names])
        rf = stats.rankdata([-mean[n] for n in names])
        ax.scatter(rf, rp, s=20, c="tab:blue")
        ax.plot([1, len(names)], [1, len(names)], color="gray", lw=0.8, ls="--")
        ax.invert_xaxis()
        ax.invert_yaxis()
    ax.set(
        title=f"{p.label}: ranks (n={len(names)})",
        xlabel="rank by full-data training",
        ylabel="rank by proxy",
    )
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    return _save(fig, stem)


def comparison(
    stem: Path, rows: list[Row], ceiling: Ceiling | None, ceilings: SeedCeilings | None = None
) -> dict[str, Path]:
    """Every proxy's Spearman (vs the seed mean) with its 95 % interval; the seed-vs-seed ceiling as
    a band and, on the proxies' footing, the Spearman–Brown ceiling of the seed mean as a line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(rows) + 2), 4))
    xs = np.arange(len(rows))
    for x, r in zip(xs, rows, strict=True):
        a = r.estimate
        if a is None or np.isnan(a.spearman):
            continue
        lo, hi = a.spearman_ci95
        ax.errorbar(
            [x], [a.spearman], yerr=[[a.spearman - lo], [hi - a.spearman]], fmt="o", capsize=4, c="tab:blue"
        )
    if ceiling is not None and not np.isnan(ceiling.spearman):
        ax.axhspan(*ceiling.spearman_ci95, color="tab:orange", alpha=0.15)
        ax.axhline(
            ceiling.spearman,
            color="tab:orange",
            lw=1,
            label=f"seed vs seed {ceiling.spearman:.3f} (n={ceiling.n})",
        )
    if ceilings is not None and not np.isnan(ceilings.mean):
        label = f"{ceilings.k_seeds}-seed mean ceiling {ceilings.mean:.3f}"
        ax.axhline(ceilings.mean, color="tab:red", lw=1, ls="--", label=label)
    _legend(ax)
    ax.set_xticks(xs, [r.scores.label for r in rows], rotation=20, ha="right", fontsize=7)
    ax.set(
        ylabel="Spearman vs full-data training", ylim=(-1.05, 1.05), title="Proxies on the unbiased sample"
    )
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, stem)


def draw_all(
    folder: Path, rows: list[Row], truth: GroundTruth, ceiling: Ceiling | None, ceilings: SeedCeilings | None
) -> dict[str, Path]:
    """Every figure of a report into ``folder``; returns the paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, r in enumerate(rows):
        for kind, draw in (("scatter", scatter), ("ranks", ranks)):
            for fmt, path in draw(folder / f"{kind}_{i}_{r.scores.proxy}", r, truth).items():
                paths[f"{kind}_{i}_{fmt}"] = path
    for fmt, path in comparison(folder / "proxies", rows, ceiling, ceilings).items():
        paths[f"proxies_{fmt}"] = path
    return paths


MIN_SECONDS = 1e-3  # where the frontier draws a score that takes less (the parameter count: ~0 s)


def frontier(stem: Path, points: list[dict[str, Any]], measures: tuple[str, ...], ceilings: dict[str, float]) -> dict[str, Path]:
    """The equal-compute frontier: one panel per measure of the top, its mean over draws against the
    seconds of scoring one architecture (log scale), one line per proxy family through its budgets,
    the two-level 95 % interval as a band; the seed-vs-seed ceiling as a dashed line. ``points``:
    ``{"family", "budget", "s_per_arch", "measures": {name: {"mean", "ci95"}}}``."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(measures), figsize=(4.6 * len(measures), 3.8), squeeze=False)
    families = sorted({p["family"] for p in points})
    colours = dict(zip(families, plt.get_cmap("tab10").colors, strict=False))
    for ax, measure in zip(axes[0], measures, strict=True):
        for fam in families:
            pts = sorted((p for p in points if p["family"] == fam), key=lambda p: p["s_per_arch"])
            xs = [max(p["s_per_arch"], MIN_SECONDS) for p in pts]  # a log axis has no 0
            ys = [p["measures"][measure]["mean"] for p in pts]
            lo = [p["measures"][measure]["ci95"][0] for p in pts]
            hi = [p["measures"][measure]["ci95"][1] for p in pts]
            ax.plot(xs, ys, "o-", c=colours[fam], label=fam, ms=4)
            ax.fill_between(xs, lo, hi, color=colours[fam], alpha=0.12, lw=0)
        if measure in ceilings and not np.isnan(ceilings[measure]):
            ax.axhline(ceilings[measure], color="grey", ls="--", lw=1, label="seed vs seed")
        ax.set_xscale("log")
        lower = measure.startswith("regret")
        ax.set(xlabel="s per architecture (<= 1 ms drawn at 1 ms)",
               ylabel=measure + (" (points, lower is better)" if lower else ""), title=measure)  # fmt: skip
        ax.grid(alpha=0.3)
    _legend(axes[0][0])
    return _save(fig, stem)
