"""Proxy methods scored at several draws on the top of the table, with draw-aware intervals.

A proxy method has its own randomness; one draw of each cannot say which method is better. Each
method here is scored at ``--draws`` independent draws (random subset: the subset and the training
seed; DM: the condensation seed and the training seed; early stopping: the shuffle and the training
seed) on the architectures of the ``top`` ground-truth table (the top 30 of the pooled 2-epoch
tables; ``benchmarks/top_truth.py``), through the product's own code (``TRAINING_SETS``,
``train_and_score``, ``get_or_condense``). Every measure of ``dmnas.reporting.draws`` is given per
method as per-draw values, mean, sd and a two-level (architectures x draws) bootstrap interval,
next to its ceiling measured the same way between ground-truth seeds; every pair of methods is
compared paired on architectures with draws resampled within each method.

Jobs run interleaved in one process (draw 0 of every method, then draw 1, ...), so every method's
seconds per architecture come from the same run under the same load. Records land under
``benchmarks/_work/draws/`` as they finish; rerun the same command to resume, ``--report-only``
to rewrite the results from what is there.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_draws --draws 3

Writes ``benchmarks/results/proxy_draws.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, ROOT, command_line, header_lines, machine
from dmnas.util.atomic import write_json_atomic
from dmnas.augment import default_strategy
from dmnas.condensation.cache import Cache
from dmnas.condensation.dm import CondenseConfig, RunOptions
from dmnas.data import DataConfig, load_dataset
from dmnas.defaults import for_device
from dmnas.groundtruth.store import GroundTruthStore, merged
from dmnas.catalog import TABLES_DIR, table_names
from dmnas.nas.config import FULL_RECIPE
from dmnas.nas.trials.context import TrialContext
from dmnas.proxykinds import ProxyKind, proxy_kind
from dmnas.reporting.draws import paired_draws, seed_ceiling, summarise_draws, top_measures
from dmnas.train import TrainRecipe

log = logging.getLogger("bench_draws")
# Measures compared pairwise between methods (every pair of methods, two-level bootstrap each): the
# frontier's three and the two Spearmans; the per-method table has every measure.
PAIRED_MEASURES = ("spearman", "weighted_tau", "recall_top5_in10", "regret_at3", "spearman_top10")
DATA = DataConfig(name="fashion_mnist")
STRATEGY = default_strategy(DATA.name)
WORK = ROOT / "benchmarks" / "_work" / "draws"
# every shipped table (they hold disjoint architectures or more seeds of the same ones; the
# unseen table's architectures are in no other)
TRUTH_TABLES = tuple(table_names())
ZERO_COST_BATCH = TrialContext.__dataclass_fields__["zero_cost_batch"].default  # as a search scores them


@dataclass(frozen=True)
class Method:
    """One proxy method at one budget; ``draw`` seeds everything random about it."""

    name: str
    proxy: str  # a registered proxy kind (dmnas.proxykinds)
    ipc: int = 50
    epochs: int = 40
    early_images: int = 20000
    iterations: int = 50  # DM iterations (the CPU default)
    precision: str = "fp32"  # of the DM set's condensation (the records so far are fp32 sets)
    # condensation built for ranking (condense_variants.md): what is matched, trained embedding
    # networks, the embedding drawn from a search space
    match: str = "mean"
    embed_queue: int = 0
    embed_space: str | None = None
    lr_img: float = 1.0

    @property
    def kind(self) -> ProxyKind:
        return proxy_kind(self.proxy)

    @property
    def image_passes(self) -> int:
        if not self.kind.trains:
            return 0
        return self.early_images if self.kind.recipe == "early" else self.ipc * 10 * self.epochs

    def recipe(self) -> TrainRecipe:
        if self.kind.recipe == "early":  # as `dmnas search --proxy early`: one pass over a prefix of a shuffle
            return TrainRecipe(epochs=1, schedule="cosine", strategy="none")
        return TrainRecipe(epochs=self.epochs, strategy=STRATEGY)

    def condense_config(self, draw: int) -> CondenseConfig:
        from dmnas.api import space_pool
        from dmnas.condensation.job import parse_pool

        pool = parse_pool(space_pool(self.embed_space, None)) if self.embed_space else ()
        return CondenseConfig(ipc=self.ipc, iterations=self.iterations, strategy=STRATEGY, seed=draw,
                              precision=self.precision, match=self.match, embed_queue=self.embed_queue,
                              embed_pool=pool, lr_img=self.lr_img)  # fmt: skip


METHODS = {
    m.name: m
    for m in (
        Method("random ipc50 40ep", "random"),
        Method("early 20k passes", "early"),
        Method("dm ipc50 40ep it50", "dm"),
        # budgets for the equal-compute frontier
        Method("early 5k passes", "early", early_images=5000),
        Method("early 10k passes", "early", early_images=10000),
        Method("early 40k passes", "early", early_images=40000),
        Method("random ipc50 10ep", "random", epochs=10),
        Method("random ipc50 20ep", "random", epochs=20),
        Method("random ipc50 80ep", "random", epochs=80),
        Method("dm ipc50 10ep it50", "dm", epochs=10),  # the same sets as "dm ipc50 40ep it50"
        Method("dm ipc50 20ep it50", "dm", epochs=20),
        Method("dm ipc50 80ep it50", "dm", epochs=80),
        # the same sets condensed with the real branch in bf16 (the default on CPUs that have it)
        Method("dm ipc50 40ep it50 bf16-real", "dm", precision="bf16-real"),
        Method("synflow", "synflow"),
        Method("naswot", "naswot"),
        Method("params", "params"),  # the parameter count: deterministic, one value per architecture
        # condensation variants at a budget where the set moves (IPC 10, 250 iterations: >= 0.2 pixel
        # sd), each set trained for 5 000 image passes (the frontier's cheapest budget, as early 5k:
        # 20 architectures x 6 methods x 3 draws at 20 000 passes is ~2 h of one core)
        Method("random ipc10 50ep", "random", ipc=10, epochs=50),
        *(
            Method(f"dm ipc10 50ep it250 {variant}", "dm", ipc=10, epochs=50, iterations=250,
                   precision="bf16-real", **settings)  # fmt: skip
            for variant, settings in (
                ("mean", {}),
                ("mean_var", {"match": "mean_var"}),
                ("mmd", {"match": "mmd", "lr_img": 500.0}),  # its loss is ~400x smaller: lr 500 moves the set as far as mean at lr 1
                ("queue10", {"embed_queue": 10}),
                ("space", {"embed_space": "convnet_bench"}),
            )
        ),
    )
}


def top_archs() -> list[str]:
    return list(json.loads((TABLES_DIR / "top" / "table.json").read_text())["screened"])


def truth_of(archs: list[str], fingerprint: str, recipe: TrainRecipe) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Seed-mean accuracy per architecture and the (S, n) matrix of the seeds every one of them has."""
    recs = merged([GroundTruthStore(TABLES_DIR / t) for t in TRUTH_TABLES], fingerprint, recipe)
    missing = [a for a in archs if not recs.get(a)]
    if missing:
        raise SystemExit(f"no ground truth ({recipe.describe()}) for {', '.join(missing)}: train it first (benchmarks/)")
    seeds = sorted(set.intersection(*(set(recs.get(a, {})) for a in archs)))
    per_seed = np.array([[float(recs[a][s]["val_acc"]) for a in archs] for s in seeds])
    mean = np.array([np.mean([float(r["val_acc"]) for r in recs[a].values()]) for a in archs])
    return mean, per_seed, seeds


def record_path(work: Path, method: Method, draw: int, arch: str) -> Path:
    return work / method.name.replace(" ", "_") / f"d{draw}" / f"{arch}.json"


def set_record_path(work: Path, method: Method, draw: int) -> Path:
    return work / method.name.replace(" ", "_") / f"d{draw}" / "_set.json"


def dm_key(method: Method, draw: int, data: Any, cache: Cache, work: Path) -> str:
    """The draw's DM set (condensed if missing); its cost and movement land next to its scores."""
    import torch

    from dmnas.condensation.proxyset import get_or_condense

    t0 = time.perf_counter()
    # compiled as `dmnas condense` would (auto: from COMPILE_MIN_ITERATIONS); the sets scored before
    # were 50-iteration eager ones, and the compile does not change a set's key
    opts = RunOptions(device="cpu", checkpoint_every=25, channels_last=True,
                      compile=for_device("cpu").compile(method.iterations))  # fmt: skip
    res = get_or_condense(data, DATA, method.condense_config(draw), opts, cache)
    if not res.cache_hit:
        log.info("%s draw %d: condensed %s in %.0f s (%d threads)", method.name, draw, res.key,
                 time.perf_counter() - t0, torch.get_num_threads())  # fmt: skip
    path = set_record_path(work, method, draw)
    if not path.exists():
        m = res.manifest
        write_json_atomic(path, {
            "key": res.key, "iterations": method.iterations, "wall_seconds": m.get("wall_seconds"),
            "median_seconds_per_iteration": m.get("median_seconds_per_iteration"),
            "threads": torch.get_num_threads(), "compiled": bool(m.get("config", {}).get("run", {}).get("compile", False)),
            "moved_sd": (m.get("movement") or {}).get("moved_sd"),
        })  # fmt: skip
    return res.key


def score(method: Method, draw: int, arch: str, data: Any, cache: Cache, key: str | None) -> dict[str, Any]:
    import torch

    from dmnas.models import parse_arch
    from dmnas.nas.trials.proxies import TRAINING_SETS, score_zero_cost, train_and_score

    if not method.kind.trains:  # zero-cost: the draw seeds the init and the batch
        rec = score_zero_cost(method.proxy, parse_arch(arch), data, draw, ZERO_COST_BATCH, torch.device("cpu"))
        rec.update(method=method.name, draw=draw, entry_key=None, seconds=rec["train_seconds"])
        return rec
    ctx = TrialContext(
        proxy=method.proxy, data=DATA.__dict__, data_dir=None, recipe=method.recipe().to_dict(), device="cpu",
        seed=draw,  # the subset (random) or the shuffle (early) of this draw
        results_dir="", ground_truth_dir="", entry_key=key, cache_dir=str(cache.root), ipc=method.ipc,
        early_images=method.early_images,
    )  # fmt: skip
    t0 = time.perf_counter()
    x, y = TRAINING_SETS.get(method.proxy)(ctx, data)
    rec = train_and_score(parse_arch(arch), data, x, y, method.recipe(), draw, torch.device("cpu"), test=False)
    rec.update(score=rec["val_acc"], method=method.name, draw=draw, entry_key=key,
               seconds=round(time.perf_counter() - t0, 3))  # fmt: skip
    return rec


def run(methods: list[Method], draws: list[int], archs: list[str], cache: Cache, work: Path) -> None:
    import torch

    torch.set_num_threads(1)
    data = load_dataset(DATA)
    for draw in draws:
        keys = {m.name: dm_key(m, draw, data, cache, work) if m.kind.needs_dm_set else None for m in methods}
        for arch, method in itertools.product(archs, methods):  # interleaved: same load for every method
            path = record_path(work, method, draw, arch)
            if path.exists():
                continue
            rec = score(method, draw, arch, data, cache, keys[method.name])
            write_json_atomic(path, rec)
            log.info("%s draw %d %s: %.4f in %.1f s", method.name, draw, arch, rec["score"], rec["seconds"])


def load_draws(work: Path, method: Method, draws: int, archs: list[str]) -> tuple[np.ndarray, list[float]]:
    """(complete draws, n) scores and every record's seconds; a draw missing an architecture is left out."""
    rows, secs = [], []
    for d in range(draws):
        recs = [record_path(work, method, d, a) for a in archs]
        if all(p.exists() for p in recs):
            loaded = [json.loads(p.read_text()) for p in recs]
            rows.append([r["score"] for r in loaded])
            secs += [r["seconds"] for r in loaded]
    return np.array(rows), secs


TOP_TABLE = "the `top` table: the best 30 of the pooled 2-epoch tables"


def report(
    methods: list[Method], draws: int, archs: list[str], command: str, samples: int, work: Path,
    archs_from: str = TOP_TABLE,
) -> dict[str, Any]:
    fingerprint = load_dataset(DATA).fingerprint
    truth, per_seed, seeds = truth_of(archs, fingerprint, FULL_RECIPE)
    measures = top_measures(len(archs))
    rows, scored = [], {}
    for m in methods:
        scores, secs = load_draws(work, m, draws, archs)
        if len(scores) == 0:
            continue
        scored[m.name] = scores
        sets = [json.loads(p.read_text()) for d in range(draws) if (p := set_record_path(work, m, d)).exists()]
        rows.append({
            "method": m.name, "proxy": m.proxy, "image_passes": m.image_passes, "draws_done": len(scores),
            "s_per_arch": round(float(np.mean(secs)), 2),
            "measures": {k: summarise_draws(scores, truth, fn, k, samples).to_dict() for k, fn in measures.items()},
            **({"sets": sets} if sets else {}),
        })  # fmt: skip
    paired = [
        paired_draws(scored[a], scored[b], truth, measures[k], (a, b, k), samples).to_dict()
        for a, b in itertools.combinations(scored, 2)
        for k in PAIRED_MEASURES
        if k in measures
    ]
    return {
        "command": command, "machine": machine(), "date": dt.date.today().isoformat(),
        "archs": archs, "n_archs": len(archs), "archs_from": archs_from, "truth": {"recipe": FULL_RECIPE.describe(), "seeds": seeds,
        "tables": list(TRUTH_TABLES), "what": f"seed-mean validation accuracy of {archs_from}"},
        "ceilings": {k: seed_ceiling(per_seed, fn) for k, fn in measures.items()},
        "methods": rows, "paired_methods": paired, "bootstrap_samples": samples, "frontier": frontier_rows(rows),
    }  # fmt: skip


FRONTIER_MEASURES = ("weighted_tau", "recall_top5_in10", "regret_at3")  # the figure's panels


def frontier_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per method and budget: its family (the proxy), its budget in image passes (0 for a
    zero-cost score), its seconds per architecture and each measure's mean and interval."""
    return [
        {"method": r["method"], "family": r["proxy"], "budget": r["image_passes"], "s_per_arch": r["s_per_arch"],
         "draws": r["draws_done"],
         "measures": {k: {"mean": v["mean"], "ci95": v["ci95"], "sd": v["sd"]} for k, v in r["measures"].items()}}
        for r in rows
    ]  # fmt: skip


def best_per_budget(res: dict[str, Any], measure: str) -> list[str]:
    """Lines saying, for each method, whether another method at no more seconds per architecture
    beats it on ``measure`` with a paired interval that excludes 0 (the frontier's reading)."""
    from dmnas.reporting.draws import lower_is_better

    secs = {r["method"]: r["s_per_arch"] for r in res["methods"]}
    out = []
    for p in res["paired_methods"]:
        if p["measure"] != measure or any(map(np.isnan, p["ci95"])):
            continue
        lo, hi = p["ci95"]
        a_better, b_better = (hi < 0, lo > 0) if lower_is_better(measure) else (lo > 0, hi < 0)
        if not (a_better or b_better):
            continue
        win, lose = (p["a"], p["b"]) if a_better else (p["b"], p["a"])
        sign = 1 if a_better else -1  # the difference as winner minus loser
        d, (low, high) = sign * p["delta"], sorted((sign * lo, sign * hi))
        if secs[win] <= secs[lose]:
            out.append(f"- {win} beats {lose} on {measure} at no more seconds per architecture "
                       f"({secs[win]} vs {secs[lose]} s; paired difference {d:+.3f} [{low:+.3f}, {high:+.3f}])")  # fmt: skip
    return out or [f"- no method beats another on {measure} at no more seconds per architecture with a paired "
                   "interval that excludes 0"]  # fmt: skip


def _f(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def markdown(res: dict[str, Any]) -> str:
    keys = list(res["ceilings"])
    out = [
        *header_lines("Proxy methods at several draws" + (", on the top of the table" if res.get("archs_from", TOP_TABLE) == TOP_TABLE else ""), res),
        "",
        f"{res['n_archs']} architectures ({res.get('archs_from', TOP_TABLE)}); truth: "
        f"{res['truth']['what']}, {res['truth']['recipe']}, seeds {res['truth']['seeds']}. Each cell: mean over "
        "draws [two-level 95 % interval, architectures x draws] (per-draw values). Ceiling: the same measure "
        "between two ground-truth seeds (a proxy read against the seed mean can exceed it). Regret in accuracy "
        "points, lower is better. s/arch measured in one interleaved run.",
        "",
        "| method | draws | s/arch | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
        "| *ceiling (seed vs seed)* | | | " + " | ".join(_f(res["ceilings"][k]) for k in keys) + " |",
    ]
    for row in res["methods"]:
        cells = []
        for k in keys:
            s = row["measures"][k]
            cells.append(f"{_f(s['mean'])} [{_f(s['ci95'][0])}, {_f(s['ci95'][1])}] ({', '.join(_f(v, 2) for v in s['draws'])})")
        out.append(f"| {row['method']} | {row['draws_done']} | {row['s_per_arch']} | " + " | ".join(cells) + " |")
    with_sets = [r for r in res["methods"] if r.get("sets")]
    if with_sets:
        out += ["", "## The DM sets: cost and movement", "",
                "Per draw: condensation wall seconds (one process, its thread count) and how far the set moved "
                "from its real initialisation (mean absolute change, in pixel sd; a set that barely moved is a "
                "random subset in all but name).", ""]  # fmt: skip
        for r in with_sets:
            cost = ", ".join(f"{_f(x['wall_seconds'], 0)} s" for x in r["sets"])
            moved = ", ".join(_f(x["moved_sd"]) for x in r["sets"])
            threads = sorted({x["threads"] for x in r["sets"]})
            out.append(f"- {r['method']}: condensed in {cost} ({threads} thread(s), "
                       f"{'compiled' if all(x['compiled'] for x in r['sets']) else 'eager'}); moved {moved} sd")  # fmt: skip
    if len({r["family"] for r in res.get("frontier", [])}) > 1:
        out += ["", "## The equal-compute frontier", "",
                "Each measure's mean over draws against the seconds of scoring one architecture, one line per proxy "
                f"family through its budgets, bands the two-level 95 % intervals: `{res['out']}.png`.", "",
                *(line for m in FRONTIER_MEASURES if m in keys for line in best_per_budget(res, m))]  # fmt: skip
    out += ["", "## Paired (A − B; same architectures, draws resampled within each method)", "",
            "| A | B | measure | Δ | 95 % interval | share of resamples A better |", "|---|---|---|---|---|---|"]  # fmt: skip
    for p in res["paired_methods"]:
        out.append(f"| {p['a']} | {p['b']} | {p['measure']} | {_f(p['delta'])} | [{_f(p['ci95'][0])}, {_f(p['ci95'][1])}] "
                   f"| {_f(p['p_a_beats_b'], 2)} |")  # fmt: skip
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=["random ipc50 40ep", "early 20k passes", "dm ipc50 40ep it50"],
                    choices=list(METHODS))  # fmt: skip
    ap.add_argument("--archs", type=int, default=0, help="only the first N of the top table (0: all)")
    ap.add_argument("--arch-names", nargs="+", default=None, help="these architectures instead of the top table's")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "condensed_cache")
    ap.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--out", default="proxy_draws", help="results file stem under --results")
    ap.add_argument("--results", type=Path, default=RESULTS, help="folder of the results files")
    ap.add_argument("--work", type=Path, default=WORK, help="folder of the per-score records (resumable)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--only-draws", type=int, nargs="+", default=None,
                    help="score only these draws (a second process can take a later draw; the report reads all)")  # fmt: skip
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    command = command_line()
    archs = (args.arch_names or top_archs())[: args.archs or None]
    methods = [METHODS[m] for m in args.methods]
    if not args.report_only:
        run(methods, args.only_draws or list(range(args.draws)), archs, Cache(args.cache_dir), args.work)
    named = "the architectures named by --arch-names"
    res = report(methods, args.draws, archs, command, args.samples, args.work, named if args.arch_names else TOP_TABLE)
    res["out"] = args.out
    write_json_atomic(args.results / f"{args.out}.json", res)
    (args.results / f"{args.out}.md").write_text(markdown(res))
    if len({r["family"] for r in res["frontier"]}) > 1:
        from dmnas.reporting.figures import frontier

        measures = tuple(m for m in FRONTIER_MEASURES if m in res["ceilings"])
        frontier(args.results / args.out, res["frontier"], measures, res["ceilings"])
    log.info("wrote %s", args.results / f"{args.out}.md")


if __name__ == "__main__":
    main()
