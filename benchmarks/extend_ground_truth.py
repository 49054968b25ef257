"""Extend the ground truth where NAS decides: the architectures a cheap screen ranks highest, plus a
uniform share of the rest, trained with the shipped tables' recipe at two seeds.

Design (so that the estimates stay honest):

- the screen (``screen_space.py``: every architecture of ``convnet_bench`` trained once on 20 000
  images, a seed no proxy uses) orders the space; the ``--top`` best by the screen that no shipped
  table holds are trained ("screened": they complete the top of the space, and join the unbiased
  sample only for top-k figures);
- a seeded uniform draw of ``--uniform`` of the architectures no shipped table holds is trained as
  well (the table's "sample": pooled with the shipped tables' samples it is still a uniform sample
  of the space, so whole-space estimates stay unbiased);
- jobs run in an interleaved order (three screened, one uniform, best screen ranks first), so a
  partial table is still the top of the screen plus a uniform share;
- ``table.json`` records the screen's recall: how many of the true top-k of the uniformly sampled
  architectures (shipped + held-out + this uniform share) the screen put into its chosen top. An
  architecture of the true top that the screen missed is a hole in the top population; the recall
  estimates how likely that is.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.extend_ground_truth --top 60 --uniform 20

Records land in ``dmnas/groundtruth/tables/extended/<fingerprint>/<recipe key>/`` as each training
finishes; rerun the same command to resume.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np
from benchmarks.common import ROOT, command_line
from benchmarks.full_training import GroundTruthStore, Job, run_jobs, table_fields
from benchmarks.screen_space import SCREEN_SEED, load_screen, screen_file

from dmnas.util.atomic import write_json_atomic
from dmnas.data import DataConfig, load_dataset
from dmnas.groundtruth.store import merged
from dmnas.catalog import TABLES_DIR
from dmnas.nas.config import FULL_RECIPE
from dmnas.nas.space import load_space

log = logging.getLogger("extend_ground_truth")
STORE = TABLES_DIR / "extended"
BASE_TABLES = ("shipped", "heldout")


def interleave(top: list[str], uniform: list[str], every: int = 3) -> list[str]:
    """``every`` screened picks, then one uniform pick, until both run out."""
    out, u = [], iter(uniform)
    for i, arch in enumerate(top, 1):
        out.append(arch)
        if i % every == 0:
            out.extend(a for a in [next(u, None)] if a)
    out.extend(u)
    return out


def screen_recall(screen: dict[str, float], threshold: float, truth: dict[str, float], k: int) -> dict[str, float]:
    """Of the k best (by full-data seed mean) among uniformly sampled architectures, the share whose
    screen score clears ``threshold`` (the score of the last architecture the screen sent to full
    training): the chance that the screen would have caught a true top architecture. ``screen`` is
    the whole space's screen, so the ranks are ranks in the space."""
    best = sorted(truth, key=lambda a: -truth[a])[:k]
    caught = [a for a in best if screen[a] >= threshold]
    ranks = sorted(screen, key=lambda a: -screen[a])
    return {
        "k": k,
        "of": len(best),
        "caught": len(caught),
        "recall": len(caught) / len(best) if best else float("nan"),
        "screen_ranks_in_space_of_true_top": [ranks.index(a) + 1 for a in best],
        "screen_cut_rank": sum(1 for v in screen.values() if v >= threshold),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="convnet_bench")
    ap.add_argument("--top", type=int, default=60, help="screened architectures to train (best by the screen)")
    ap.add_argument("--uniform", type=int, default=20, help="uniformly drawn architectures to train besides")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--sample-seed", type=int, default=2, help="seed of the uniform draw")
    ap.add_argument("--screen-images", type=int, default=20_000)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--manifest-only", action="store_true", help="rewrite table.json from the records present")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    command = command_line()
    data_cfg = DataConfig()
    fingerprint = load_dataset(data_cfg).fingerprint
    screen = load_screen(screen_file(fingerprint, args.screen_images, SCREEN_SEED))
    names = [s.name for s in load_space(args.space).specs()]
    missing = [a for a in names if a not in screen]
    if missing:
        raise SystemExit(f"the screen lacks {len(missing)} architectures; finish benchmarks/screen_space.py first")
    bases = [GroundTruthStore(TABLES_DIR / t) for t in BASE_TABLES]
    held = {a for t in BASE_TABLES for a in json.loads((TABLES_DIR / t / "table.json").read_text())["sample"]}
    by_screen = sorted((a for a in names if a not in held), key=lambda a: (-screen[a], a))
    top = by_screen[: args.top]
    # Drawn from everything no base table holds, the screened top included: pooled with the base
    # tables' uniform samples this stays a uniform sample of the whole space (an architecture drawn
    # here that the screen also chose is trained once and counts as both).
    rest = [a for a in names if a not in held]
    uniform = [rest[i] for i in np.random.default_rng(args.sample_seed).permutation(len(rest))[: args.uniform]]
    order = interleave(top, [a for a in uniform if a not in top])
    store = GroundTruthStore(STORE)
    recipe = FULL_RECIPE
    manifest_path = STORE / "table.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}

    def write_manifest() -> None:
        recs = store.all(fingerprint, recipe)
        done = [(a, s) for a in order for s in args.seeds if s in recs.get(a, {})]
        complete = [a for a in order if all(s in recs.get(a, {}) for s in args.seeds)]
        # The recall of the screen, on every uniformly sampled architecture known so far.
        known = merged([store, *bases], fingerprint, recipe)
        uniform_known = {
            a: float(np.mean([r["val_acc"] for r in known[a].values()]))
            for a in (held | set(uniform))
            if a in known and all(s in known[a] for s in args.seeds)
        }
        threshold = min(screen[a] for a in top)
        recall = {
            f"top{k}": screen_recall(screen, threshold, uniform_known, k)
            for k in (5, 10, max(1, round(0.2 * len(uniform_known))))
        }
        STORE.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            manifest_path,
            {
                "dataset": data_cfg.name,
                "fingerprint": fingerprint,
                "space": args.space,
                "design": "screened top + uniform share",
                "sample": [a for a in uniform if a in complete],
                "screened": [a for a in top if a in complete],
                "planned_screened": top,
                "planned_uniform": uniform,
                "excluded_tables": list(BASE_TABLES),
                "screen": {"images": args.screen_images, "seed": SCREEN_SEED, "file": str(screen_file(fingerprint, args.screen_images, SCREEN_SEED).relative_to(ROOT))},
                "screen_recall": recall,
                "sample_seed": args.sample_seed,
                "seeds": args.seeds,
                **table_fields(recipe, recs, done, len(order) * len(args.seeds), command, old),
            },
        )

    write_manifest()
    if not args.manifest_only:
        jobs = [Job(a, s, recipe) for a in order for s in args.seeds]
        try:
            run_jobs(jobs, store, data_cfg, args.processes, command)
        finally:
            write_manifest()
    print(json.dumps({k: v for k, v in json.loads(manifest_path.read_text()).items() if k not in ("planned_screened", "planned_uniform")}, indent=1)[:3000])


if __name__ == "__main__":
    main()
