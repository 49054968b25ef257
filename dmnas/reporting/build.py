"""The correlation report: proxies vs full-data training, as values, JSON and Markdown.

Two kinds of figures, never mixed: *estimates* (rho, tau, top-k, with intervals) over the
unbiased ground-truth sample only, each read against a noise ceiling on the same footing; and
*confirmation* of each proxy's pick from its own top-k trained on full data. Proxies scored on the
same architectures are compared pairwise (a paired bootstrap), not by eyeing two intervals.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from dmnas.groundtruth.sampling import top_k
from dmnas.reporting.draws import DrawSummary, summarise_draws, top_measures
from dmnas.reporting.stats import (
    Ceiling,
    PairedDelta,
    SeedCeilings,
    agreement,
    confirmation,
    noise_ceiling,
    paired_delta,
    per_seed_spearman,
    seed_ceilings,
    spearman_top_k,
    top_k_sizes,
)
from dmnas.groundtruth.truth import GroundTruth
from dmnas.reporting.types import ProxyScores, Row

REGRET_AT = (1, 3, 5)
MIN_TOP_N = 5  # architectures with full-data results below which no figure of the top is given
MIN_DRAW_N = 3  # architectures below which no measure over draws is given (a rank needs three)
PAIRED_MEASURES = ("spearman", "top10", "top20", "top10pct", "top20pct")


def ceiling_of(truth: GroundTruth) -> Ceiling | None:
    return noise_ceiling({a: s for a, s in truth.per_seed.items() if a in truth.unbiased})


def _complete_seeds(truth: GroundTruth, names: list[str]) -> tuple[list[str], np.ndarray] | None:
    """The architectures of ``names`` trained at every seed of the table, and their (n, K) matrix."""
    seeds = truth.seeds
    full = [a for a in names if all(s in truth.per_seed.get(a, {}) for s in seeds)]
    if len(seeds) < 2 or len(full) < 3:
        return None
    return full, np.array([[truth.per_seed[a][s] for s in seeds] for a in full])


def ceilings_of(truth: GroundTruth) -> SeedCeilings | None:
    """Single-seed and K-seed-mean ceilings (whole table over the unbiased sample; top-k over the
    top population, as the proxies' figures are)."""
    whole = _complete_seeds(truth, sorted(truth.unbiased & set(truth.mean)))
    top = _complete_seeds(truth, sorted(top_population(truth)))
    if whole is None:
        return None
    c = seed_ceilings(whole[1])
    t = seed_ceilings(top[1]) if top is not None else None
    if c is None or t is None:
        return c
    return SeedCeilings(c.n, c.k_seeds, c.single, c.mean, t.single_top, t.mean_top)


def top_population(truth: GroundTruth) -> set[str]:
    """What top-k figures are drawn from: the unbiased sample plus any screened top."""
    return (set(truth.unbiased) | set(truth.screened)) & set(truth.mean)


def _regrets(scores: dict[str, float], known: dict[str, float]) -> dict[int, float]:
    return {k: confirmation(top_k(scores, k), known).regret for k in REGRET_AT}


def build_rows(proxies: list[ProxyScores], truth: GroundTruth, confirm_k: int, seed: int = 0) -> list[Row]:
    mean = truth.mean
    pop = top_population(truth)
    rows = []
    for p in proxies:
        names = sorted(set(p.scores) & set(mean) & truth.unbiased)
        x = np.array([p.scores[n] for n in names])
        est = agreement(x, np.array([mean[n] for n in names]), seed=seed) if names else None
        seeded = _complete_seeds(truth, names)
        per_seed = (
            per_seed_spearman(np.array([p.scores[n] for n in seeded[0]]), seeded[1]) if seeded else float("nan")
        )
        top_names = sorted(set(p.scores) & pop)
        tx = np.array([p.scores[n] for n in top_names])
        ty = np.array([mean[n] for n in top_names])
        tops = {name: spearman_top_k(tx, ty, k) for name, k in top_k_sizes(len(top_names)).items()}
        known = {a: mean[a] for a in p.scores.keys() | p.space if a in mean}
        secs = list(p.seconds.values())
        rows.append(
            Row(
                p,
                est,
                confirmation(top_k(p.scores, confirm_k), known),
                float(np.mean(secs)) if secs else float("nan"),
                float(sum(secs)),
                per_seed,
                tops,
                len(top_names),
                _regrets(p.scores, known),
                draw_summaries(p, truth, seed),
            )
        )
    return rows


def draw_summaries(p: ProxyScores, truth: GroundTruth, seed: int = 0) -> tuple[DrawSummary, ...]:
    """Every measure of the top over a search's draws (``--proxy-draws``), on the architectures of
    the top population that every draw scored; empty for a one-draw search."""
    per_arch = {a: d["draw_scores"] for a, d in p.details.items() if len(d.get("draw_scores", ())) > 1}
    names = sorted(set(per_arch) & top_population(truth))
    counts = {len(per_arch[a]) for a in names}
    if len(names) < MIN_DRAW_N or len(counts) != 1:
        return ()
    draws = np.array([per_arch[a] for a in names], float).T  # (D, n)
    y = np.array([truth.mean[a] for a in names])
    return tuple(
        summarise_draws(draws, y, measure, name, seed=seed) for name, measure in top_measures(len(names)).items()
    )


def paired_comparisons(
    proxies: list[ProxyScores], truth: GroundTruth, samples: int = 2000, seed: int = 0
) -> list[PairedDelta]:
    """Every pair of proxies, on the architectures both scored: whole table (unbiased sample) and
    each top-k (top population)."""
    mean = truth.mean
    pop = top_population(truth)
    out = []
    for a, b in itertools.combinations(proxies, 2):
        whole = sorted(set(a.scores) & set(b.scores) & truth.unbiased & set(mean))
        top = sorted(set(a.scores) & set(b.scores) & pop)
        for measure in PAIRED_MEASURES:
            names = whole if measure == "spearman" else top
            k = None if measure == "spearman" else top_k_sizes(len(names))[measure]
            out.append(
                paired_delta(
                    np.array([a.scores[n] for n in names]),
                    np.array([b.scores[n] for n in names]),
                    np.array([mean[n] for n in names]),
                    (a.label, b.label),
                    k=k,
                    measure=measure,
                    samples=samples,
                    seed=seed,
                )
            )
    return out


def report_dict(
    rows: list[Row],
    truth: GroundTruth,
    confirm_k: int,
    ceiling: Ceiling | None,
    ceilings: SeedCeilings | None,
    paired: list[PairedDelta],
    proxies: list[ProxyScores],
) -> dict[str, Any]:
    mean = truth.mean
    return {
        "ground_truth": {
            "recipe": truth.recipe,
            "recipe_key": truth.recipe_key,
            "images": truth.images,
            "seeds": truth.seeds,
            "unbiased_n": len(truth.unbiased & set(mean)),
            "top_population_n": len(top_population(truth)),
            "sources": truth.sources,
        },
        "ceiling": ceiling.to_dict() if ceiling else None,
        "ceilings": ceilings.to_dict() if ceilings else None,
        "confirm_k": confirm_k,
        "rows": [r.to_dict() for r in rows],
        "paired": [d.to_dict() for d in paired],
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
    }
