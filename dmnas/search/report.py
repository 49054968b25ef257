"""The correlation report: proxy vs full-data accuracy, as JSON, Markdown and a PNG scatter plot."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .correlation import Agreement, agreement


@dataclass(frozen=True)
class ProxyScores:
    """One search's results: architecture -> proxy validation accuracy, plus costs."""

    label: str  # e.g. "dm ipc10 (exp abc123)"
    experiment: str
    proxy: str
    scores: dict[str, float]
    seconds: dict[str, float]
    images: int
    failed: int


@dataclass(frozen=True)
class Row:
    scores: ProxyScores
    agreement: Agreement | None
    proxy_seconds: float
    full_seconds: float

    @property
    def speedup(self) -> float:
        return self.full_seconds / self.proxy_seconds if self.proxy_seconds > 0 else float("nan")


def build_rows(proxies: list[ProxyScores], full: dict[str, dict[str, Any]], seed: int = 0) -> list[Row]:
    rows = []
    for p in proxies:
        names = sorted(set(p.scores) & set(full))
        ag = None
        if len(names) >= 2:
            ag = agreement(names, np.array([p.scores[n] for n in names]), np.array([full[n]["val_acc"] for n in names]), seed=seed)
        rows.append(Row(p, ag, sum(p.seconds.get(n, 0.0) for n in names), sum(float(full[n]["train_seconds"]) for n in names)))
    return rows


def _fmt(x: float, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def markdown(rows: list[Row], full_images: int, full_recipe: dict[str, Any]) -> str:
    lines = [
        "# dmnas proxy ranking report", "",
        f"Full-data ground truth: {full_images} training images, recipe {json.dumps(full_recipe, sort_keys=True)}. "
        "Accuracies are on the held-out validation split; rank agreement is over architectures scored by both.", "",
        "| proxy | images | archs (both) | failed | Spearman ρ [95% CI] | p | Kendall τ | top-5 | top-10 | top-10% | ρ in top-10% | pick → full acc | best full acc | regret | proxy s | full s | speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = r.agreement
        if a is None:
            lines.append(f"| {r.scores.label} | {r.scores.images} | <2 | {r.scores.failed} | n/a |" + " |" * 12)
            continue
        lines.append(
            f"| {r.scores.label} | {r.scores.images} | {a.n} | {r.scores.failed} | {_fmt(a.spearman)} [{_fmt(a.spearman_ci95[0])}, {_fmt(a.spearman_ci95[1])}] "
            f"| {a.spearman_p:.2g} | {_fmt(a.kendall_tau)} | {_fmt(a.top5_overlap)} | {_fmt(a.top10_overlap)} | {_fmt(a.top10pct_overlap)} "
            f"| {_fmt(a.spearman_top10pct)} | {a.proxy_pick} → {_fmt(a.proxy_pick_full_acc, True)}% | {a.best_arch} {_fmt(a.best_full_acc, True)}% "
            f"| {_fmt(a.regret, True)} pts | {r.proxy_seconds:.0f} | {r.full_seconds:.0f} | {r.speedup:.1f}x |"
        )
    lines += ["", "top-k: share of the proxy's k best that are among full training's k best; "
              "ρ in top-10%: Spearman over the best 10% by full-data accuracy (at least 3 architectures); "
              "proxy s / full s: summed training seconds of the architectures scored by both."]
    return "\n".join(lines) + "\n"


def scatter_png(path: Path, proxy: ProxyScores, full: dict[str, dict[str, Any]], size: int = 480) -> None:
    """Proxy (x) vs full-data (y) validation accuracy, one dot per architecture."""
    from PIL import Image, ImageDraw

    names = sorted(set(proxy.scores) & set(full))
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    m = 50
    d.rectangle([m, m // 2, size - m // 2, size - m], outline="black")
    if names:
        xs = np.array([proxy.scores[n] for n in names])
        ys = np.array([full[n]["val_acc"] for n in names])

        def span(v: np.ndarray) -> tuple[float, float]:
            lo, hi = float(v.min()), float(v.max())
            pad = max(1e-3, 0.05 * (hi - lo))
            return lo - pad, hi + pad

        (x0, x1), (y0, y1) = span(xs), span(ys)
        w, h = size - m - m // 2, size - m - m // 2
        for x, y in zip(xs, ys):
            px = m + (x - x0) / (x1 - x0) * w
            py = size - m - (y - y0) / (y1 - y0) * h
            d.ellipse([px - 3, py - 3, px + 3, py + 3], fill=(31, 119, 180))
        d.text((m, size - m + 5), f"{100 * x0:.1f}%", fill="black")
        d.text((size - m // 2 - 40, size - m + 5), f"{100 * x1:.1f}%", fill="black")
        d.text((5, size - m - 10), f"{100 * y0:.1f}%", fill="black")
        d.text((5, m // 2), f"{100 * y1:.1f}%", fill="black")
    d.text((size // 2 - 90, size - 25), f"proxy val acc ({proxy.label})"[:60], fill="black")
    d.text((5, 5), "full-data val acc", fill="black")
    img.save(path)


def write_report(out_dir: Path, rows: list[Row], proxies: list[ProxyScores], full: dict[str, dict[str, Any]],
                 full_images: int, full_recipe: dict[str, Any]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    paths["json"].write_text(json.dumps({
        "full_recipe": full_recipe, "full_images": full_images,
        "rows": [{"label": r.scores.label, "experiment": r.scores.experiment, "proxy": r.scores.proxy,
                  "images": r.scores.images, "failed_trials": r.scores.failed,
                  "agreement": r.agreement.to_dict() if r.agreement else None,
                  "proxy_seconds": r.proxy_seconds, "full_seconds": r.full_seconds, "speedup": r.speedup} for r in rows],
        "pairs": {p.label: {n: {"proxy": p.scores[n], "full": full[n]["val_acc"]} for n in sorted(set(p.scores) & set(full))} for p in proxies},
    }, indent=2, sort_keys=True))
    paths["markdown"].write_text(markdown(rows, full_images, full_recipe))
    for i, p in enumerate(proxies):
        png = out_dir / f"scatter_{i}_{p.proxy}.png"
        scatter_png(png, p, full)
        paths[f"png_{i}"] = png
    return paths
