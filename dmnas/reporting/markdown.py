"""The report as Markdown: what the search found, the agreement with full-data training (estimates
on the unbiased sample, figures within the top, each against its ceiling), the measures over a
search's draws, the paired comparisons and the confirmation of each proxy's pick. Values come
from :mod:`dmnas.reporting.build`."""

from __future__ import annotations

import math

from dmnas.groundtruth.sampling import proxy_order
from dmnas.groundtruth.truth import GroundTruth
from dmnas.reporting.build import MIN_TOP_N, PAIRED_MEASURES, REGRET_AT
from dmnas.reporting.draws import lower_is_better
from dmnas.reporting.stats import Ceiling, PairedDelta, SeedCeilings, top_k_sizes
from dmnas.reporting.types import Row


def _f(x: float | None, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def _ci(ci: tuple[float, float]) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


def header(truth: GroundTruth, ceiling: Ceiling | None, ceilings: SeedCeilings | None) -> list[str]:
    n_u = len(truth.unbiased & set(truth.mean))
    src = ", ".join(f"{k}: {v}" for k, v in truth.sources.items()) or "none"
    lines = [
        f"Ground truth: full-data training on {truth.images} images, recipe **{truth.recipe}** "
        f"(key {truth.recipe_key}), seeds {truth.seeds or 'none'}; validation accuracy averaged over seeds.",
        f"Unbiased sample: {n_u} architectures with full-data results, each drawn with equal probability "
        f"whatever any proxy scored it ({src}). Whole-table estimates use only these.",
    ]
    if truth.screened:
        lines.append(
            f"Top population: the sample plus {len(truth.screened - truth.unbiased)} architectures that a cheap screen "
            "ranked high, trained so that the top of the space is covered; top-k figures are drawn from it."
        )
    if ceiling is None:
        lines.append(
            "Noise ceiling: n/a (needs architectures of the sample trained at >= 2 seeds: `--full-seeds 2`)."
        )
    else:
        k = len(truth.seeds)
        mean_part = (
            f"; for the {k}-seed mean that ρ is read against (Spearman–Brown): **{_f(ceilings.mean)}**"
            if ceilings
            else ""
        )
        lines.append(
            f"Noise ceiling (Spearman between seed {ceiling.seeds[0]} and seed {ceiling.seeds[1]} of the same "
            f"recipe, n={ceiling.n}): **{_f(ceiling.spearman)}** {_ci(ceiling.spearman_ci95)}{mean_part}; "
            f"seed-to-seed sd of accuracy {_f(ceiling.seed_sd, True)} pts."
        )
    return lines


def markdown(
    rows: list[Row],
    truth: GroundTruth,
    confirm_k: int,
    ceiling: Ceiling | None,
    ceilings: SeedCeilings | None,
    paired: list[PairedDelta],
    notes: list[str] = (),
    full_epochs: int = 0,
    train_rate: float | None = None,
    image_geometry: tuple[int, int] = (28, 1),
) -> str:
    from dmnas.reporting.findings import found_lines, next_step_lines

    lines = [
        "# dmnas proxy ranking report",
        "",
        "## What the search found",
        "",
        "| proxy | scored | failed | s per arch | total s | pick |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        pick = proxy_order(r.scores.scores)[0] if r.scores.scores else "none"
        lines.append(
            f"| {r.scores.label} | {len(r.scores.scores)} | {r.scores.failed} | {r.seconds_per_arch:.2f} "
            f"| {r.total_seconds:.0f} | `{pick}` |"
        )
    lines.append("")
    for r in rows:
        lines += found_lines(r.scores, truth)
    lines += [*notes, "", "## Agreement with full-data training", ""]
    if not any(r.estimate for r in rows) and max((r.top_n for r in rows), default=0) < MIN_TOP_N:
        # no ground truth to read any proxy against: say so once, with the next step
        lines += next_step_lines([r.scores for r in rows], truth, full_epochs, train_rate, 2, *image_geometry)
        if any(r.confirm.k for r in rows):
            lines += confirmation_lines(rows, confirm_k)
        return "\n".join(lines) + "\n"
    lines += [*header(truth, ceiling, ceilings), ""]
    lines += [
        "## Estimates on the unbiased sample",
        "",
        "| proxy | n | ρ vs seed mean [95% CI] | ρ / mean ceiling | ρ vs each seed | / seed ceiling | Kendall τ "
        "| top-5 | top-10% (k) | s per arch | total s | failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def rel(x: float, c: float | None) -> str:
        return _f(x / c) if (c and not math.isnan(c) and not math.isnan(x)) else "n/a"

    for r in rows:
        a = r.estimate
        if a is None:
            lines.append(
                f"| {r.scores.label} | 0 | n/a | n/a | n/a | n/a | n/a | n/a | n/a "
                f"| {r.seconds_per_arch:.2f} | {r.total_seconds:.0f} | {r.scores.failed} |"
            )
            continue
        lines.append(
            f"| {r.scores.label} | {a.n} | {_f(a.spearman)} {_ci(a.spearman_ci95)} "
            f"| {rel(a.spearman, ceilings.mean if ceilings else None)} | {_f(r.per_seed_spearman)} "
            f"| {rel(r.per_seed_spearman, ceilings.single if ceilings else None)} | {_f(a.kendall_tau)} "
            f"| {_f(a.top5_overlap)} | {_f(a.top10pct_overlap)} ({a.top10pct_k}) "
            f"| {r.seconds_per_arch:.2f} | {r.total_seconds:.0f} | {r.scores.failed} |"
        )
    n_top = max((r.top_n for r in rows), default=0)
    sizes = top_k_sizes(n_top)
    if n_top < MIN_TOP_N:
        lines += ["", f"Where NAS decides (the true top k): {n_top} architectures with full-data results, too few for "
                  f"figures within the top (needs {MIN_TOP_N}; `--ground-truth N` adds more)."]  # fmt: skip
    else:
        lines += top_lines(rows, n_top, sizes, ceilings)
    lines += draw_lines(rows)
    paired = [d for d in paired if d.n >= 3]
    return "\n".join(lines + paired_and_confirmation(paired, rows, confirm_k)) + "\n"


def draw_lines(rows: list[Row]) -> list[str]:
    """Per search scored at several draws: each measure's mean over the draws, its two-level
    interval (architectures x draws) and the per-draw values."""
    lines: list[str] = []
    for r in rows:
        if not r.draws:
            continue
        n_draws, n = len(r.draws[0].draws), r.draws[0].n_archs
        lines += [
            "",
            f"## {r.scores.label}: over its {n_draws} draws",
            "",
            f"On the {n} architectures of the top population with full-data results. Mean over draws "
            "[95 % interval resampling architectures and draws] (each draw's value); a single draw's figure "
            "above can sit anywhere in this spread.",
            "",
            "| measure | mean over draws | sd | per draw |",
            "|---|---|---|---|",
        ]
        for d in r.draws:
            direction = " (lower is better)" if lower_is_better(d.measure) else ""
            lines.append(
                f"| {d.measure}{direction} | {_f(d.mean)} {_ci(d.ci95)} | {_f(d.sd)} "
                f"| {', '.join(_f(v) for v in d.draws)} |"
            )
    return lines


def top_lines(rows: list[Row], n_top: int, sizes: dict[str, int], ceilings: SeedCeilings | None) -> list[str]:
    lines: list[str] = []
    lines += [
        "",
        f"## Where NAS decides: Spearman within the true top k (of {n_top} architectures)",
        "",
        "| proxy | " + " | ".join(f"top {sizes[m]} ({m})" for m in PAIRED_MEASURES[1:]) + " | "
        + " | ".join(f"regret after top {k}" for k in REGRET_AT) + " |",
        "|---|" + "---|" * (len(PAIRED_MEASURES) - 1 + len(REGRET_AT)),
    ]
    if ceilings:
        lines.append(
            "| *ceiling: seed mean (one seed)* | "
            + " | ".join(f"{_f(ceilings.mean_top.get(m))} ({_f(ceilings.single_top.get(m))})" for m in PAIRED_MEASURES[1:])
            + " |" + " |" * len(REGRET_AT)
        )
    for r in rows:
        lines.append(
            f"| {r.scores.label} | "
            + " | ".join(_f(r.top_spearman.get(m)) for m in PAIRED_MEASURES[1:])
            + " | "
            + " | ".join(_f(r.regret_at.get(k), True) for k in REGRET_AT)
            + " |"
        )
    return lines


def paired_and_confirmation(paired: list[PairedDelta], rows: list[Row], confirm_k: int) -> list[str]:
    lines: list[str] = []
    if paired:
        lines += [
            "",
            "## Paired comparisons (same architectures, paired bootstrap over architectures)",
            "",
            "| A | B | measure | n | Δρ (A − B) [95% CI] | share of resamples A > B |",
            "|---|---|---|---|---|---|",
        ]
        for d in paired:
            lines.append(
                f"| {d.a} | {d.b} | {d.measure} | {d.n} | {_f(d.delta)} {_ci(d.ci95)} | {_f(d.p_a_beats_b)} |"
            )
    return lines + confirmation_lines(rows, confirm_k)


def confirmation_lines(rows: list[Row], confirm_k: int) -> list[str]:
    lines = [
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
        "Reading the tables: ρ vs seed mean is Spearman between the proxy score and the seed-mean full-data "
        "accuracy; it is read against the Spearman–Brown ceiling of that mean. ρ vs each seed is the mean over "
        "seeds of Spearman against one seed, read against the seed-vs-seed ceiling. Top-k Spearman is computed "
        "within the k best by full-data accuracy (n/a below 5); its ceilings are the same measure between seeds. "
        "top-k overlap: share of the proxy's k best among full training's k best (n/a below 2k architectures). "
        "A paired Δρ whose interval excludes 0 is a difference the sample supports. Regret is against the best "
        "architecture *known* (a lower bound). s per arch: the proxy's own scoring seconds.",
    ]
    return lines
