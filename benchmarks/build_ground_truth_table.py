"""Build (or resume) the shipped ground-truth table: full-data Fashion-MNIST accuracies of a seeded
uniform sample of ``convnet_bench`` at two seeds, with dmnas's default full-data recipe.

Records land in ``dmnas/groundtruth/tables/shipped/<fingerprint>/<recipe key>/<arch>__seed<k>.json`` as
each training finishes (commit them as they come); ``table.json`` says what the table is (space,
sample, seeds, recipe, command, machine, dates, seconds) and ``search_spaces/convnet_bench48.yaml``
lists the sample as a search space. Architectures are trained in the sample's order, so a partial
table is still a uniform random sample of the space. Rerun the same command to resume.

    .venv/bin/python -m benchmarks.build_ground_truth_table --n 48 --seeds 0 1

A held-out table (architectures the shipped table does not contain, for checking a proxy setting
chosen on the shipped table against ground truth it was not tuned on):

    .venv/bin/python -m benchmarks.build_ground_truth_table --n 24 --sample-seed 1 \
        --exclude dmnas/groundtruth/tables/shipped --store dmnas/groundtruth/tables/heldout

The unseen table (architectures no earlier table holds, trained after every proxy setting was
fixed; read once, to check the ranking on architectures it was not developed on):

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.build_ground_truth_table --n 16 --sample-seed 3 \
        --exclude dmnas/groundtruth/tables/{shipped,heldout,extended,top} --store dmnas/groundtruth/tables/unseen
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from benchmarks.common import ROOT, command_line
from benchmarks.full_training import GroundTruthStore, Job, base_parser, run_jobs, sample_archs, table_fields

from dmnas.util.atomic import write_json_atomic
from dmnas.data import DataConfig, load_dataset
from dmnas.defaults import FULL_EPOCHS
from dmnas.nas.config import FULL_RECIPE

SPACE_FILE = ROOT / "search_spaces" / "convnet_bench48.yaml"


def write_space(archs: list[str], space: str, n: int, seed: int) -> None:
    names = "\n".join(f"    - {a}" for a in archs)
    SPACE_FILE.write_text(
        f"# The {n} architectures of the shipped ground-truth table (dmnas/groundtruth/tables/shipped/): a seeded\n"
        f"# (seed {seed}) uniform sample of {space}. Written by benchmarks/build_ground_truth_table.py.\n"
        f"arch:\n  _type: choice\n  _value:\n{names}\n"
    )


def table_archs(manifest: dict) -> set[str]:
    """Every architecture a table holds: its uniform sample and any screened or planned top."""
    return {a for field in ("sample", "screened", "planned_screened") for a in manifest.get(field, [])}


def main() -> None:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=48, help="architectures in the sample")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=FULL_EPOCHS["cpu"], help="default: dmnas's CPU default")
    ap.add_argument(
        "--exclude",
        type=Path,
        nargs="*",
        default=[],
        help="tables (folders with table.json) whose architectures this sample must not contain",
    )
    ap.add_argument(
        "--manifest-only", action="store_true", help="rewrite table.json from the records present"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    command = command_line()
    recipe = replace(FULL_RECIPE, epochs=args.epochs)
    manifests = [json.loads((t / "table.json").read_text()) for t in args.exclude]
    excluded = {a for m in manifests for a in table_archs(m)}
    screened_out = any(m.get("screened") or m.get("planned_screened") for m in manifests)
    design = (
        f"uniform sample of the {args.space} architectures no excluded table holds (their screened tops "
        "included): read it alone; pooled with the other tables' samples it under-represents the top"
        if screened_out
        else f"uniform sample of {args.space}" + (" (disjoint from the excluded tables' uniform samples)" if manifests else "")
    )
    archs = [a for a in sample_archs(args.space, 0, args.sample_seed) if a not in excluded]
    archs = archs if args.n <= 0 else archs[: args.n]
    store = GroundTruthStore(args.store)
    data_cfg = DataConfig()
    fingerprint = load_dataset(data_cfg).fingerprint
    if args.store == ROOT / "dmnas" / "groundtruth" / "tables" / "shipped" and args.n == 48:
        write_space(archs, args.space, args.n, args.sample_seed)
    manifest_path = store.root / "table.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}

    def write_manifest() -> None:
        recs = store.all(fingerprint, recipe)
        done = [(a, s) for a in archs for s in args.seeds if s in recs.get(a, {})]
        write_json_atomic(
            manifest_path,
            {
                "dataset": data_cfg.name,
                "fingerprint": fingerprint,
                "space": args.space,
                "sample_seed": args.sample_seed,
                "excluded_tables": [str(t) for t in args.exclude],
                # a uniform draw of what the excluded tables leave: uniform over the space only if
                # they hold uniform samples alone; a screened top left out makes it a sample of the rest
                "design": design,
                "sample": archs,
                "seeds": args.seeds,
                **table_fields(recipe, recs, done, len(archs) * len(args.seeds), command, old),
            },
        )

    write_manifest()
    if not args.manifest_only:
        jobs = [Job(a, s, recipe) for a in archs for s in args.seeds]
        try:
            run_jobs(jobs, store, data_cfg, args.processes, command)
        finally:
            write_manifest()
    print(json.dumps(json.loads(manifest_path.read_text()), indent=1)[:2000])


if __name__ == "__main__":
    main()
