"""How long must full-data training run before its ranking of architectures stops changing?

Trains the first ``--archs`` architectures of the ground-truth table's seeded order (a random
spread of ``convnet_bench``) on the whole Fashion-MNIST training split for each of ``--epochs``
(a cosine schedule fitted to each length, so every length is a complete recipe, not a snapshot of
a longer one), at ``--seeds`` seeds, plus one arm with DSA augmentation at the longest length.
Reports, per length E: Spearman between the seed-mean ranking at E and at 2E, next to the
seed-to-seed Spearman at E (the noise ceiling); and DSA vs none. Resumable: records go into the
ground-truth store (default: the shipped table) as they finish.

    .venv/bin/python -m benchmarks.study_full_epochs --archs 10 --epochs 1 2 4 --seeds 0 1
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import replace

import numpy as np
from scipy import stats

from benchmarks.common import RESULTS, command_line, machine
from benchmarks.full_training import GroundTruthStore, Job, base_parser, run_jobs, sample_archs

from dmnas.data import DataConfig, load_dataset
from dmnas.groundtruth.store import merged
from dmnas.train import TrainRecipe

DSA = "color_crop_cutout_flip_scale_rotate"


def study_recipe(epochs: int, strategy: str = "none") -> TrainRecipe:
    return TrainRecipe(epochs=epochs, schedule="cosine", strategy=strategy)


def rho(a: list[float], b: list[float]) -> float:
    return float(stats.spearmanr(a, b).statistic) if len(a) >= 3 else float("nan")


def seconds_ratio(
    store: GroundTruthStore, fingerprint: str, archs: list[str], epochs: int, seed: int
) -> float | None:
    """Mean over architectures of DSA training seconds / plain training seconds (same machine)."""
    plain = merged([store], fingerprint, study_recipe(epochs))
    aug = merged([store], fingerprint, study_recipe(epochs, DSA))
    ratios = [
        aug[a][seed]["train_seconds"] / plain[a][seed]["train_seconds"]
        for a in archs
        if seed in plain.get(a, {}) and seed in aug.get(a, {})
    ]
    return float(np.mean(ratios)) if ratios else None


def analyse(
    store: GroundTruthStore, fingerprint: str, archs: list[str], epochs: list[int], seeds: list[int]
) -> dict:
    def table(recipe: TrainRecipe) -> dict[str, dict[int, float]]:
        recs = merged([store], fingerprint, recipe)
        return {a: {s: r["val_acc"] for s, r in recs.get(a, {}).items()} for a in archs}

    rows = []
    by_e = {e: table(study_recipe(e)) for e in epochs}
    for e in epochs:
        t = by_e[e]
        full = [a for a in archs if all(s in t[a] for s in seeds)]
        row: dict = {
            "epochs": e,
            "n": len(full),
            "mean_val_acc": float(np.mean([np.mean(list(t[a].values())) for a in full])) if full else None,
            "seconds_per_arch_seed": None,
        }
        if len(seeds) >= 2 and full:
            row["seed_to_seed_spearman"] = rho([t[a][seeds[0]] for a in full], [t[a][seeds[1]] for a in full])
        if 2 * e in by_e:
            t2 = by_e[2 * e]
            both = [a for a in full if all(s in t2[a] for s in seeds)]
            row["spearman_vs_2x"] = rho(
                [np.mean([t[a][s] for s in seeds]) for a in both],
                [np.mean([t2[a][s] for s in seeds]) for a in both],
            )
            row["n_vs_2x"] = len(both)
        recs = merged([store], fingerprint, study_recipe(e))
        secs = [r["train_seconds"] for a in full for r in recs[a].values()]
        row["seconds_per_arch_seed"] = float(np.mean(secs)) if secs else None
        rows.append(row)
    longest = max(epochs)
    plain, aug = by_e[longest], table(study_recipe(longest, DSA))
    both = [a for a in archs if seeds[0] in plain[a] and seeds[0] in aug[a]]
    dsa = {
        "epochs": longest,
        "n": len(both),
        "mean_val_acc_none": float(np.mean([plain[a][seeds[0]] for a in both])) if both else None,
        "mean_val_acc_dsa": float(np.mean([aug[a][seeds[0]] for a in both])) if both else None,
        "spearman_dsa_vs_none": rho([aug[a][seeds[0]] for a in both], [plain[a][seeds[0]] for a in both]),
        # the same architectures' seed-to-seed agreement without DSA: how much rank change is noise
        "spearman_seed_to_seed_none": rho(
            [plain[a][seeds[0]] for a in both if seeds[1] in plain[a]],
            [plain[a][seeds[1]] for a in both if seeds[1] in plain[a]],
        ),
        "seconds_ratio_dsa_vs_none": seconds_ratio(store, fingerprint, both, longest, seeds[0]),
    }
    per_arch = {a: {str(e): by_e[e][a] for e in epochs} | {f"{longest}_dsa": aug[a]} for a in archs}
    return {"rows": rows, "dsa": dsa, "per_arch": per_arch}


def markdown(result: dict) -> str:
    f = lambda x: "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"  # noqa: E731
    lines = [
        "# Full-data training length study (Fashion-MNIST, convnet_bench sample)",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}  ",
        f"Date: {result['date']}",
        "",
        "Recipe: SGD momentum 0.9, lr 0.01, cosine to 0 over the run, batch 256, wd 5e-4, no augmentation; "
        "validation split (6 000 images). Seed-mean rankings compared. Seconds are the wall time of single-threaded "
        "workers on a 2-core CPU shared with other benchmark jobs: a rough cost, not a clean timing.",
        "",
        "| epochs E | archs | mean val acc | seed-to-seed ρ (ceiling at E) | ρ(E, 2E) | s per arch-seed |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['epochs']} | {r['n']} | {f(r['mean_val_acc'])} | {f(r.get('seed_to_seed_spearman'))} "
            f"| {f(r.get('spearman_vs_2x'))} | {f(r['seconds_per_arch_seed'])} |"
        )
    d = result["dsa"]
    lines += [
        "",
        f"DSA at {d['epochs']} epochs (seed 0, {d['n']} archs): mean val acc {f(d['mean_val_acc_dsa'])} "
        f"with DSA vs {f(d['mean_val_acc_none'])} without; Spearman DSA vs none {f(d['spearman_dsa_vs_none'])} "
        f"(seed 0 vs seed 1 without DSA on the same architectures: {f(d.get('spearman_seed_to_seed_none'))}); "
        f"DSA training took {f(d.get('seconds_ratio_dsa_vs_none'))}x the seconds.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=10)
    ap.add_argument("--epochs", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--dsa-archs", type=int, default=None, help="architectures of the DSA arm (default: all)")
    ap.add_argument("--analyse-only", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # The training command (an --analyse-only rerun only re-reads its records).
    command = command_line(drop=("--analyse-only",))
    archs = sample_archs(args.space, args.archs, args.sample_seed)
    store = GroundTruthStore(args.store)
    data_cfg = DataConfig()
    longest = max(args.epochs)
    # Shortest first, so a partial run already answers for the short lengths.
    jobs = [Job(a, s, study_recipe(e)) for e in sorted(args.epochs) for s in args.seeds for a in archs]
    jobs += [Job(a, args.seeds[0], study_recipe(longest, DSA)) for a in archs[: args.dsa_archs]]
    if not args.analyse_only:
        run_jobs(jobs, store, data_cfg, args.processes, command)
    result = analyse(store, load_dataset(data_cfg).fingerprint, archs, sorted(args.epochs), args.seeds)
    result.update(
        command=command,
        machine=machine(),
        date=dt.date.today().isoformat(),
        archs=archs,
        recipe=replace(study_recipe(longest)).to_dict(),
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "full_epochs_study.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    (RESULTS / "full_epochs_study.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
