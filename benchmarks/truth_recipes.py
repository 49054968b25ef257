"""Do the proxies' verdicts survive a longer ground-truth recipe? Every scored draw against the
2-epoch truth and the longer one, on the same architectures.

The tables' truth is a 2-epoch recipe whose accuracy still climbs (``results/full_epochs_study.md``)
and may favour capacity, which is what the parameter count and the zero-cost scores read. This
re-reads the per-architecture scores that ``bench_draws`` left under ``benchmarks/_work/draws/``
(no training: any method whose draws are complete on these architectures) against:

- the 2-epoch truth at one seed (seed 0) and at the mean of all its seeds,
- the longer recipe (``top_truth``'s study: the top 10 at 4 and 8 epochs, seed 0; more seeds as
  ``--phase converged`` lands them),

so that a single-seed long truth is compared with a single-seed short one, like for like. Per
method and truth: each measure's mean over draws with its two-level (architectures x draws)
interval; per truth, every method paired against the parameter count (the baseline to beat).

    python -m benchmarks.truth_recipes --archs 10 --epochs 8

Writes ``benchmarks/results/truth_recipes.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from benchmarks.bench_draws import DATA, METHODS, WORK, _f, load_draws, top_archs, truth_of
from benchmarks.common import command_line, header_lines, machine, write_results
from dmnas.data import load_dataset
from dmnas.nas.config import FULL_RECIPE
from dmnas.reporting.draws import paired_draws, summarise_draws, top_measures

log = logging.getLogger("truth_recipes")
SHOWN = ("weighted_tau", "spearman", "recall_top3_in3", "regret_at1", "regret_at3")
BASELINE = "params"


def truths(archs: list[str], fingerprint: str, epochs: int) -> dict[str, np.ndarray]:
    """The truths every architecture has: the short recipe at seed 0 and at the mean of the seeds
    all of them have, the same for the longer recipe (:func:`benchmarks.bench_draws.truth_of`)."""
    out: dict[str, np.ndarray] = {}
    for ep in (FULL_RECIPE.epochs, epochs):
        _, per_seed, seeds = truth_of(archs, fingerprint, replace(FULL_RECIPE, epochs=ep))
        if 0 not in seeds:
            raise SystemExit(f"no {ep}-epoch seed-0 record for every architecture: run benchmarks.top_truth first")
        out[f"{ep} ep, seed 0"] = per_seed[seeds.index(0)]
        if len(seeds) > 1:
            out[f"{ep} ep, mean of seeds {seeds}"] = per_seed.mean(axis=0)
    return out


def rescore(scored: dict[str, np.ndarray], truth: dict[str, np.ndarray], samples: int) -> dict[str, Any]:
    """Per truth: every method's measures, and every method paired against the baseline."""
    n = len(next(iter(truth.values())))
    measures = {k: fn for k, fn in top_measures(n, ks=(3, 5)).items() if k in SHOWN}
    out: dict[str, Any] = {}
    for name, t in truth.items():
        out[name] = {
            "methods": {m: {k: summarise_draws(s, t, fn, k, samples).to_dict() for k, fn in measures.items()}
                        for m, s in scored.items()},
            "vs_baseline": [paired_draws(s, scored[BASELINE], t, measures["weighted_tau"], (m, BASELINE, "weighted_tau"),
                                         samples).to_dict() for m, s in scored.items() if m != BASELINE and BASELINE in scored],
        }  # fmt: skip
    return out


def markdown(res: dict[str, Any]) -> str:
    lines = [
        *header_lines("Proxies against a longer ground-truth recipe (the same draws, the same architectures)", res),
        "",
        f"{res['n_archs']} architectures: the first {res['n_archs']} of the `top` table ({', '.join(res['archs'])}). "
        "No proxy is rerun: the scores are the draws `bench_draws` recorded; only the truth changes. Each cell: "
        "mean over draws [two-level 95 % interval]. Regret in accuracy points (lower is better). A one-seed truth "
        "carries its seed's noise: read the longer recipe's seed-0 column against the 2-epoch seed-0 column.",
        "",
    ]
    for k in SHOWN:
        names = list(res["truths"])
        lines += [f"## {k}", "", "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for m in res["methods"]:
            cells = [res["truths"][t]["methods"][m][k] for t in names]
            lines.append(f"| {m} | " + " | ".join(f"{_f(c['mean'])} [{_f(c['ci95'][0])}, {_f(c['ci95'][1])}]" for c in cells) + " |")
        lines.append("")
    lines += [f"## Each method against `{BASELINE}` (weighted τ, paired: A − {BASELINE})", "",
              "| method | " + " | ".join(res["truths"]) + " |", "|---|" + "---|" * len(res["truths"])]  # fmt: skip
    for m in res["methods"]:
        if m == BASELINE:
            continue
        cells = [next(p for p in res["truths"][t]["vs_baseline"] if p["a"] == m) for t in res["truths"]]
        lines.append(f"| {m} | " + " | ".join(f"{_f(p['delta'])} [{_f(p['ci95'][0])}, {_f(p['ci95'][1])}]" for p in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=10, help="the first N of the top table")
    ap.add_argument("--epochs", type=int, default=8, help="the longer recipe's epochs")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--out", default="truth_recipes")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    archs = top_archs()[: args.archs]
    truth = truths(archs, load_dataset(DATA).fingerprint, args.epochs)
    scored = {}
    for m in METHODS.values():
        scores, _ = load_draws(WORK, m, args.draws, archs)
        if len(scores):
            scored[m.name] = scores
    if not scored:
        raise SystemExit(f"no complete draws under {WORK}: run benchmarks.bench_draws first")
    res = {
        "command": command_line(), "machine": machine(), "date": dt.date.today().isoformat(),
        "archs": archs, "n_archs": len(archs), "methods": list(scored), "bootstrap_samples": args.samples,
        "draws": {m: len(s) for m, s in scored.items()}, "truths": rescore(scored, truth, args.samples),
    }  # fmt: skip
    write_results(args.out, res, markdown(res))
    log.info("wrote %s.md", args.out)


if __name__ == "__main__":
    main()
