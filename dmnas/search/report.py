"""The correlation report: proxies vs full-data training, as JSON, Markdown and figures.

Two kinds of figures, never mixed: *estimates* (rho, tau, top-k, with intervals) over the
unbiased ground-truth sample only, read against the noise ceiling of full training itself; and
*confirmation* of each proxy's pick from its own top-k trained on full data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .correlation import Agreement, Ceiling, Confirmation, agreement, confirmation, noise_ceiling
from .sampling import top_k


@dataclass(frozen=True)
class ProxyScores:
    """One search's results: architecture -> proxy score (higher is better), plus costs."""

    label: str  # e.g. "dm ipc10 200ep (abc123)"
    experiment: str
    proxy: str
    scores: dict[str, float]
    seconds: dict[str, float]
    images: int
    failed: int
    repeats: int = 0  # architectures a tuner scored more than once (their scores are averaged)
    # Every architecture of the searched space. A tuner that visits only part of it (hyperband,
    # bohb, tpe, ...) is charged its regret against the best known anywhere in the space, not
    # only among what it visited. Empty: only the scored architectures are known to be in it.
    space: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GroundTruth:
    """Full-data validation accuracy per architecture and seed, and which architectures form the
    unbiased sample (the rest is known only from confirmation or other searches)."""

    per_seed: dict[str, dict[int, float]]
    unbiased: frozenset[str]
    recipe: str  # one line, TrainRecipe.describe()
    recipe_key: str
    images: int
    sources: dict[str, int]  # where the unbiased sample came from -> architectures

    @property
    def mean(self) -> dict[str, float]:
        return {a: float(np.mean(list(s.values()))) for a, s in self.per_seed.items() if s}

    @property
    def seeds(self) -> list[int]:
        return sorted({s for v in self.per_seed.values() for s in v})


@dataclass(frozen=True)
class Row:
    scores: ProxyScores
    estimate: Agreement | None
    confirm: Confirmation
    seconds_per_arch: float
    total_seconds: float


def build_rows(proxies: list[ProxyScores], truth: GroundTruth, confirm_k: int, seed: int = 0) -> list[Row]:
    mean = truth.mean
    rows = []
    for p in proxies:
        names = sorted(set(p.scores) & set(mean) & truth.unbiased)
        est = (
            agreement(np.array([p.scores[n] for n in names]), np.array([mean[n] for n in names]), seed=seed)
            if names
            else None
        )
        known = {a: mean[a] for a in p.scores.keys() | p.space if a in mean}
        secs = list(p.seconds.values())
        rows.append(
            Row(
                p,
                est,
                confirmation(top_k(p.scores, confirm_k), known),
                float(np.mean(secs)) if secs else float("nan"),
                float(sum(secs)),
            )
        )
    return rows


def ceiling_of(truth: GroundTruth) -> Ceiling | None:
    return noise_ceiling({a: s for a, s in truth.per_seed.items() if a in truth.unbiased})


def _f(x: float | None, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def _ci(ci: tuple[float, float]) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


def header(truth: GroundTruth, ceiling: Ceiling | None) -> list[str]:
    n_u = len(truth.unbiased & set(truth.mean))
    src = ", ".join(f"{k}: {v}" for k, v in truth.sources.items()) or "none"
    lines = [
        f"Ground truth: full-data training on {truth.images} images, recipe **{truth.recipe}** "
        f"(key {truth.recipe_key}), seeds {truth.seeds or 'none'}; validation accuracy averaged over seeds.",
        f"Unbiased sample: {n_u} architectures with full-data results, each drawn with equal probability "
        f"whatever any proxy scored it ({src}). Estimates below use only these.",
    ]
    if ceiling is None:
        lines.append(
            "Noise ceiling: n/a (needs architectures of the sample trained at >= 2 seeds: `--full-seeds 2`)."
        )
    else:
        lines.append(
            f"Noise ceiling (Spearman between seed {ceiling.seeds[0]} and seed {ceiling.seeds[1]} of the same "
            f"recipe, n={ceiling.n}): **{_f(ceiling.spearman)}** {_ci(ceiling.spearman_ci95)}; "
            f"seed-to-seed sd of accuracy {_f(ceiling.seed_sd, True)} pts. No proxy can be expected above it."
        )
    return lines


def markdown(rows: list[Row], truth: GroundTruth, confirm_k: int) -> str:
    ceiling = ceiling_of(truth)
    lines = [
        "# dmnas proxy ranking report",
        "",
        *header(truth, ceiling),
        "",
        "## Estimates on the unbiased sample",
        "",
        "| proxy | n | Spearman ρ [95% CI] | ρ / ceiling | Kendall τ | top-5 | top-10% (k) | ρ in top-10% "
        "| s per arch | total s | failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = r.estimate
        rel = (
            a.spearman / ceiling.spearman
            if (a and ceiling and ceiling.spearman and not math.isnan(ceiling.spearman))
            else float("nan")
        )
        if a is None:
            lines.append(
                f"| {r.scores.label} | 0 | n/a | n/a | n/a | n/a | n/a | n/a "
                f"| {r.seconds_per_arch:.2f} | {r.total_seconds:.0f} | {r.scores.failed} |"
            )
            continue
        lines.append(
            f"| {r.scores.label} | {a.n} | {_f(a.spearman)} {_ci(a.spearman_ci95)} | {_f(rel)} | {_f(a.kendall_tau)} "
            f"| {_f(a.top5_overlap)} | {_f(a.top10pct_overlap)} ({a.top10pct_k}) | {_f(a.spearman_top10pct)} "
            f"| {r.seconds_per_arch:.2f} | {r.total_seconds:.0f} | {r.scores.failed} |"
        )
    lines += [
        "",
        f"## Confirmation: each proxy's top-{confirm_k} on full data",
        "",
        "| proxy | top-k known | winner after confirmation | its full acc % | best known (of n) | regret pts |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.confirm
        lines.append(
            f"| {r.scores.label} | {c.k}/{confirm_k} | {c.winner or 'n/a'} | {_f(c.winner_full_acc, True)} "
            f"| {c.best_known or 'n/a'} {_f(c.best_known_full_acc, True)} (of {c.n_known}) | {_f(c.regret, True)} |"
        )
    lines += [
        "",
        "Reading the table: ρ is Spearman between the proxy score and the seed-mean full-data accuracy over the "
        "n architectures of the unbiased sample that the proxy scored; ρ / ceiling compares it with how well full "
        "training agrees with itself. top-k: share of the proxy's k best among full training's k best (ties "
        "included on both sides; n/a below 2k architectures); top-10% uses k = ⌈n/10⌉ (n/a below 10); ρ in "
        "top-10% needs >= 5 architectures there. Regret is against the best architecture *known* (a lower bound). "
        "s per arch: the proxy's own scoring seconds (training, or one batch for zero-cost scores).",
    ]
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: Path, rows: list[Row], proxies: list[ProxyScores], truth: GroundTruth, confirm_k: int
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    ceiling = ceiling_of(truth)
    mean = truth.mean
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    paths["json"].write_text(
        json.dumps(
            {
                "ground_truth": {
                    "recipe": truth.recipe,
                    "recipe_key": truth.recipe_key,
                    "images": truth.images,
                    "seeds": truth.seeds,
                    "unbiased_n": len(truth.unbiased & set(mean)),
                    "sources": truth.sources,
                },
                "ceiling": ceiling.to_dict() if ceiling else None,
                "confirm_k": confirm_k,
                "rows": [
                    {
                        "label": r.scores.label,
                        "experiment": r.scores.experiment,
                        "proxy": r.scores.proxy,
                        "images": r.scores.images,
                        "failed_trials": r.scores.failed,
                        "repeats": r.scores.repeats,
                        "estimate": r.estimate.to_dict() if r.estimate else None,
                        "confirmation": r.confirm.to_dict(),
                        "seconds_per_arch": r.seconds_per_arch,
                        "total_seconds": r.total_seconds,
                    }
                    for r in rows
                ],
                "pairs": {
                    p.label: {
                        n: {
                            "proxy": p.scores[n],
                            "full": mean[n],
                            "full_per_seed": truth.per_seed[n],
                            "unbiased": n in truth.unbiased,
                        }
                        for n in sorted(set(p.scores) & set(mean))
                    }
                    for p in proxies
                },
            },
            indent=2,
            sort_keys=True,
            default=str,
        )
    )
    paths["markdown"].write_text(markdown(rows, truth, confirm_k))
    from . import figures

    for i, r in enumerate(rows):
        for kind, draw in (("scatter", figures.scatter), ("ranks", figures.ranks)):
            for fmt, path in draw(out_dir / f"{kind}_{i}_{r.scores.proxy}", r, truth).items():
                paths[f"{kind}_{i}_{fmt}"] = path
    for fmt, path in figures.comparison(out_dir / "proxies", rows, ceiling).items():
        paths[f"proxies_{fmt}"] = path
    return paths
