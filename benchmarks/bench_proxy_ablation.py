"""Which proxy setting ranks the shipped ground-truth table best, and at what cost?

Every row scores all architectures of the table (``dmnas/groundtruth/tables/shipped``, the 48-architecture
uniform sample of ``convnet_bench``, Fashion-MNIST, two seeds of full training) with one proxy
setting, through the product's own code (``dmnas.condensation.proxyset.get_or_condense`` for the DM set, the
trials' own :func:`dmnas.nas.trials.proxies.score`), and reads it against the
table exactly as ``dmnas report`` does: Spearman with its bootstrap interval, Kendall, top-5,
top-10 %, rho in the top 10 %, regret of the confirmed pick, seconds per architecture, and the
one-off condensation seconds. Levers: DM images per class (1 / 10 / 50 at equal image passes per
architecture), proxy augmentation, an embedding-network pool instead of one ConvNet-3, more DM
iterations, averaging two proxy seeds; baselines at the same compute: the random real subset,
early-stopped full-data training, synflow and NASWOT.

Resumable: every (setting, architecture, seed) score is a file under the work folder; a rerun
trains only what is missing. Settings run in the order listed (most informative first), so a
partial run still answers the main questions; ``--report-only`` scores what is there.

    cd benchmarks && OMP_NUM_THREADS=1 ../.venv/bin/python bench_proxy_ablation.py

Writes ``benchmarks/results/proxy_ablation.{json,md}``. The same settings against a held-out table
(architectures the shipped table does not contain, built by ``build_ground_truth_table.py
--exclude``), to check a setting chosen on the shipped table on ground truth it was not chosen on:

    cd benchmarks && OMP_NUM_THREADS=1 ../.venv/bin/python bench_proxy_ablation.py \
        --table ../dmnas/groundtruth/tables/heldout --out proxy_ablation_heldout --only "dm ipc50 40ep it50 (default)" ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, ROOT, command_line, machine
from dmnas.util.atomic import write_json_atomic
from dmnas.augment import default_strategy
from dmnas.condensation.cache import Cache, cache_key
from dmnas.data import DataConfig, load_dataset
from dmnas.condensation.dm import CondenseConfig, RunOptions
from dmnas.defaults import for_device
from dmnas.models import parse_arch
from dmnas.reporting.stats import spearman
from dmnas.reporting.build import build_rows, ceiling_of
from dmnas.groundtruth.truth import GroundTruth
from dmnas.reporting.types import ProxyScores
from dmnas.nas.trials.zero_cost import ZERO_COST
from dmnas.train import TrainRecipe

log = logging.getLogger("proxy_ablation")
TABLE = ROOT / "dmnas" / "groundtruth" / "tables" / "shipped"
DATA = DataConfig(name="fashion_mnist")
STRATEGY = default_strategy(DATA.name)
# Varied ConvNets of the DM embedding's width, spanning convnet_grid's axes (not the table's
# sample): depth, activation, normalisation and pooling all vary.
POOL = (
    "d3_w128_relu_instancenorm_avgpooling",
    "d2_w128_sigmoid_layernorm_maxpooling",
    "d4_w128_leakyrelu_groupnorm_none",
    "d3_w128_relu_batchnorm_maxpooling",
    "d1_w128_leakyrelu_none_avgpooling",
)


@dataclass(frozen=True)
class Setting:
    """One proxy: what it trains on (or scores at init) and how."""

    name: str
    proxy: str  # dm | random | early | synflow | naswot
    ipc: int = 10
    epochs: int = 200
    strategy: str = STRATEGY  # proxy training augmentation ("none" = off)
    # DM iterations. 100 was the CPU default until the `it50` row below made it 50; the field keeps
    # 100 so that the records (keyed by every field) of the rows that ran at 100 stay theirs.
    iterations: int = 100
    embed_pool: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    early_images: int = 20000  # image passes of an early-stopped full-data run
    # DM levers added later: left out of the record key at their defaults (see ``slug``), so the
    # records of the rows that ran before them keep their key.
    lr_img: float = 1.0
    batch_real: int = 256
    # A set condensed elsewhere (e.g. the GPU check's $OUT/gpu_set/<key>), imported into the cache
    # under its own key: scored as it is, never condensed here.
    entry: str = ""

    @property
    def image_passes(self) -> int:
        if self.proxy == "early":
            return self.early_images
        return 0 if self.proxy in ZERO_COST else self.ipc * 10 * self.epochs

    def condense_config(self) -> CondenseConfig:
        return CondenseConfig(
            ipc=self.ipc,
            iterations=self.iterations,
            strategy=STRATEGY,
            embed_pool=tuple(parse_arch(a) for a in self.embed_pool),
            lr_img=self.lr_img,
            batch_real=self.batch_real,
        )

    def recipe(self) -> TrainRecipe:
        if self.proxy == "early":  # as `dmnas search --proxy early`: the full recipe, one pass of a prefix
            return TrainRecipe(epochs=1, schedule="cosine", strategy="none")
        return TrainRecipe(epochs=self.epochs, strategy=self.strategy)


# 20 000 image passes per architecture (one default DM-proxy trial) unless the name says otherwise.
SETTINGS = (
    Setting("dm ipc10 200ep (old default)", "dm"),
    Setting("random ipc10 200ep", "random"),
    Setting("early 20k passes", "early"),
    Setting("synflow", "synflow"),
    Setting("naswot", "naswot"),
    Setting("dm ipc10 200ep no-aug", "dm", strategy="none"),
    Setting("dm ipc50 40ep it100 (previous default)", "dm", ipc=50, epochs=40),
    Setting("dm ipc10 pool5 200ep", "dm", embed_pool=POOL),
    Setting("dm ipc10 200ep x2 seeds (40k passes)", "dm", seeds=(0, 1)),
    Setting("early 40k passes", "early", early_images=40000),
    Setting("dm ipc1 2000ep", "dm", ipc=1, epochs=2000),
    Setting("random ipc50 40ep", "random", ipc=50, epochs=40),
    Setting("dm ipc10 it400 200ep", "dm", iterations=400),
    Setting("dm ipc50 40ep x2 seeds (40k passes)", "dm", ipc=50, epochs=40, seeds=(0, 1)),
    Setting("random ipc50 40ep x2 seeds (40k passes)", "random", ipc=50, epochs=40, seeds=(0, 1)),
    # Half the CPU condensation of 100 iterations: brings the README pipeline near 15 minutes.
    Setting("dm ipc50 40ep it50 (default)", "dm", ipc=50, epochs=40, iterations=50),
    # The CPU default of 50 iterations also applies to `--ipc 10`: is that still as good as 100?
    Setting("dm ipc10 200ep it50", "dm", iterations=50),
    # The trend at the default IPC: 50 and 100 iterations ranked alike; does 200 move it?
    Setting("dm ipc50 40ep it200", "dm", ipc=50, epochs=40, iterations=200),
    # The pool at the default setting (its IPC 10 row's first try diverged before the relative loss).
    Setting("dm ipc50 40ep pool5 it50", "dm", ipc=50, epochs=40, iterations=50, embed_pool=POOL),
    # DM run long (issue: does DM that has moved its images rank better than a random subset?).
    Setting("dm ipc10 it1000 200ep", "dm", iterations=1000),
    Setting("dm ipc50 40ep it1000", "dm", ipc=50, epochs=40, iterations=1000),
    Setting("dm ipc10 it5000 200ep", "dm", iterations=5000),
    # More movement per CPU-minute: a larger image learning rate (at IPC 50 each image gets a fifth of
    # the gradient it gets at IPC 10), fewer real images per iteration.
    Setting("dm ipc50 40ep it50 lr10", "dm", ipc=50, epochs=40, iterations=50, lr_img=10.0),
    Setting("dm ipc50 40ep it200 lr10 real64", "dm", ipc=50, epochs=40, iterations=200, lr_img=10.0, batch_real=64),
    Setting("dm ipc10 200ep it200 lr10 real64", "dm", iterations=200, lr_img=10.0, batch_real=64),
)
# The random real subset each DM row is compared with: same IPC and image passes per architecture.
RANDOM_AT = {10: "random ipc10 200ep", 50: "random ipc50 40ep"}


LATER_FIELDS = {"lr_img": 1.0, "batch_real": 256, "entry": ""}


def slug(setting: Setting) -> str:
    """What a score depends on apart from its seed (settings that differ only in seeds share records)."""
    d = {k: v for k, v in asdict(setting).items() if k not in ("name", "seeds")}
    for k, default in LATER_FIELDS.items():
        if d[k] == default:
            del d[k]
    return cache_key(d)


def condense_setting(setting: Setting, data: Any, cache: Cache, threads: int = 2) -> str | None:
    """The DM set of a setting: its cache key (condensed now, with ``threads`` cores, when missing)."""
    if setting.proxy != "dm":
        return None
    if setting.entry:
        return setting.entry
    import torch

    from dmnas.condensation.proxyset import get_or_condense

    torch.set_num_threads(threads)
    cfg = setting.condense_config()
    opts = RunOptions(
        device="cpu",
        real_chunk=for_device("cpu").real_chunk,
        checkpoint_every=25,
        channels_last=True,
        compile=not cfg.embed_pool,
    )
    t0 = time.perf_counter()
    res = get_or_condense(data, DATA, cfg, opts, cache)
    if not res.cache_hit:
        log.info("%s: condensed %s in %.0f s", setting.name, res.key, time.perf_counter() - t0)
    return res.key


def _score_one(setting: Setting, arch: str, seed: int, key: str | None, cache_dir: str, out: str) -> None:
    """One architecture at one training seed, through the product's own scoring (what a trial of a
    search with --trial-seed 0 computes: the training set of seed 0, training at ``seed``)."""
    import torch

    from dmnas.nas.trials.context import TrialContext
    from dmnas.nas.trials.params import job_name
    from dmnas.nas.trials.proxies import score

    torch.set_num_threads(1)
    ctx = TrialContext(
        proxy=setting.proxy,
        data=DATA.__dict__,
        data_dir=None,
        recipe=setting.recipe().to_dict(),
        device="cpu",
        seed=0,  # the training set's seed, as in a search with --trial-seed 0
        results_dir="",
        ground_truth_dir="",
        entry_key=key,
        cache_dir=cache_dir,
        ipc=setting.ipc,
        early_images=setting.early_images,
    )
    write_json_atomic(Path(out), score({"job": job_name(arch, seed)}, ctx).record)


def record_path(work: Path, setting: Setting, arch: str, seed: int) -> Path:
    return work / "records" / slug(setting) / f"{arch}__seed{seed}.json"


def run(
    settings: list[Setting],
    archs: list[str],
    work: Path,
    cache: Cache,
    processes: int,
    threads: int = 2,
    stored: dict[str, dict[str, float]] | None = None,
) -> None:
    """Score what is neither recorded nor stored by an earlier results file (``--scores-from``)."""
    data = load_dataset(DATA)
    ctx = mp.get_context("spawn")  # fresh interpreters: no forked OpenMP pools
    for s in settings:
        known = (stored or {}).get(s.name, {}) if len(s.seeds) == 1 else {}
        if all(a in known for a in archs):
            continue  # every score at hand: no condensation needed either
        key = condense_setting(s, data, cache, threads)
        known = (stored or {}).get(s.name, {}) if len(s.seeds) == 1 else {}
        todo = [(a, k) for a in archs for k in s.seeds if not record_path(work, s, a, k).exists() and a not in known]
        log.info("%s: %d of %d scores to compute", s.name, len(todo), len(archs) * len(s.seeds))
        t0 = time.perf_counter()
        with ctx.Pool(processes, maxtasksperchild=16) as pool:
            pending = [
                pool.apply_async(
                    _score_one,
                    (s, a, k, key, str(cache.root), str(record_path(work, s, a, k))),
                )
                for a, k in todo
            ]
            for p in pending:
                p.get()
        if todo:
            log.info("%s: done in %.0f s", s.name, time.perf_counter() - t0)


def load_scores(
    setting: Setting, archs: list[str], work: Path, stored: dict[str, dict[str, float]] | None = None
) -> ProxyScores | None:
    """Mean score over the setting's seeds per architecture (complete architectures only); where
    the records are not at hand, the per-architecture scores an earlier results file stored
    (``--scores-from``: the same setting, scored by this script)."""
    scores, seconds = {}, {}
    for a in archs:
        recs = [record_path(work, setting, a, k) for k in setting.seeds]
        if all(p.exists() for p in recs):
            loaded = [json.loads(p.read_text()) for p in recs]
            scores[a] = sum(r["score"] for r in loaded) / len(loaded)
            seconds[a] = sum(float(r["train_seconds"]) for r in loaded)
        elif stored and a in stored.get(setting.name, {}):
            scores[a] = float(stored[setting.name][a])
            seconds[a] = float(stored.get(f"{setting.name}/seconds", {}).get(a, float("nan")))
    if not scores:
        return None
    return ProxyScores(setting.name, slug(setting), setting.proxy, scores, seconds, setting.image_passes, 0)


def stored_scores(files: list[Path]) -> dict[str, dict[str, float]]:
    """setting name -> arch -> score, from earlier results files (their rows' ``scores``), and the
    seconds per architecture they stood for (``<name>/seconds``: the row's mean, per architecture)."""
    out: dict[str, dict[str, float]] = {}
    for f in files:
        for row in json.loads(f.read_text())["rows"]:
            name = row["setting"]["name"]
            out.setdefault(name, {}).update(row.get("scores") or {})
            secs = row.get("seconds_per_arch")
            if secs is not None:
                out.setdefault(f"{name}/seconds", {}).update(dict.fromkeys(row.get("scores") or {}, secs))
            if row.get("moved_sd") is not None:
                out.setdefault("moved", {})[name] = row["moved_sd"]
    return out


def seed_agreement(setting: Setting, archs: list[str], work: Path) -> tuple[float, int] | None:
    """Spearman between a multi-seed setting's first two seeds: how repeatable the proxy itself is."""
    if len(setting.seeds) < 2:
        return None
    pairs = [
        [json.loads(record_path(work, setting, a, k).read_text())["score"] for k in setting.seeds[:2]]
        for a in archs
        if all(record_path(work, setting, a, k).exists() for k in setting.seeds[:2])
    ]
    if len(pairs) < 3:
        return None
    return spearman(np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))[0], len(pairs)


def table_truth(tables: list[Path]) -> tuple[GroundTruth, list[str]]:
    """The tables' records pooled (they share one recipe): their uniform samples form the unbiased
    sample, a screened top joins it for top-k figures (as in ``dmnas report --table A B``)."""
    from dmnas.groundtruth.store import GroundTruthStore as Store
    from dmnas.groundtruth.tables import ground_truth_for

    manifests = [json.loads((t / "table.json").read_text()) for t in tables]
    recipe = TrainRecipe(**manifests[0]["recipe"])
    if any(TrainRecipe(**m["recipe"]) != recipe for m in manifests):
        raise SystemExit("tables of different recipes cannot be pooled")
    fingerprint = load_dataset(DATA).fingerprint
    archs = list(dict.fromkeys(a for m in manifests for a in [*m["sample"], *m.get("screened", [])]))
    truth = ground_truth_for(fingerprint, [], Store(Path("/nonexistent")), [Store(t) for t in tables],
                             recipe, set(archs), int(manifests[0].get("full_images", 54000)))  # fmt: skip
    return truth, [a for a in archs if a in truth.per_seed]


def import_set(folder: Path, cache: Cache) -> Setting:
    """A cache entry condensed elsewhere (its folder holds ``manifest.json``), copied into ``cache``
    under its key, as a setting named after where and how it was condensed. Its training recipe is
    the one of its IPC's random row, so the paired comparison is at equal image passes."""
    import shutil

    manifest = json.loads((folder / "manifest.json").read_text())
    if manifest["dataset"]["fingerprint"] != load_dataset(DATA).fingerprint:
        raise SystemExit(f"{folder}: condensed from another copy of {DATA.name} (fingerprint differs)")
    key, cond = manifest["key"], manifest["config"]["condense"]
    if not cache.exists(key):
        shutil.copytree(folder, cache.root / key)
    device = manifest["config"]["run"].get("device", "?")
    ipc, iterations = int(cond["ipc"]), int(cond["iterations"])
    partner = next((s for s in SETTINGS if s.name == RANDOM_AT.get(ipc)), None)
    epochs = partner.epochs if partner else 200
    return Setting(
        f"dm ipc{ipc} {epochs}ep it{iterations} ({device.split(':')[0]} set {key[:8]})", "dm", ipc=ipc,
        epochs=epochs, iterations=iterations, lr_img=float(cond["lr_img"]),
        batch_real=int(cond["batch_real"]), entry=key,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "ablation")
    ap.add_argument("--cache-dir", type=Path, default=None, help="DM cache (default: <work>/cache)")
    ap.add_argument("--table", type=Path, nargs="+", default=[TABLE], help="one table, or several pooled")
    ap.add_argument(
        "--scores-from", type=Path, nargs="*", default=[], help="earlier results files whose stored scores fill in missing records"
    )
    ap.add_argument("--processes", type=int, default=2, help="single-threaded scoring processes")
    ap.add_argument("--condense-threads", type=int, default=2, help="threads of a missing DM condensation")
    ap.add_argument("--only", nargs="*", default=None, help="names of settings to run (default: all)")
    ap.add_argument(
        "--import-set", type=Path, nargs="*", default=[],
        help="cache entry folders condensed elsewhere (e.g. the GPU check's gpu_set/<key>) to score as rows",
    )  # fmt: skip
    ap.add_argument("--report-only", action="store_true", help="score the records present; train nothing")
    ap.add_argument("--out", default="proxy_ablation", help="results file name under benchmarks/results/")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    truth, archs = table_truth(args.table)
    cache = Cache((args.cache_dir or args.work / "cache").resolve())
    imported = [import_set(f, cache) for f in args.import_set]
    chosen = [s for s in SETTINGS if args.only is None or s.name in args.only] + imported
    unknown = set(args.only or ()) - {s.name for s in SETTINGS}
    if unknown:
        raise SystemExit(f"unknown setting(s) {sorted(unknown)}; valid: {[s.name for s in SETTINGS]}")
    stored = stored_scores(args.scores_from)
    if not args.report_only:
        run(chosen, archs, args.work, cache, args.processes, args.condense_threads, stored)
    proxies = [p for p in (load_scores(s, archs, args.work, stored) for s in chosen) if p is not None]
    args.stored = stored
    print(report(proxies, chosen, truth, cache, args, archs))


def set_manifest(setting: Setting, cache: Cache) -> dict[str, Any] | None:
    if setting.proxy != "dm":
        return None
    from dmnas.condensation.proxyset import entry_key

    key = setting.entry or entry_key(DATA, setting.condense_config(), load_dataset(DATA).fingerprint)
    if not cache.exists(key):
        return None
    return json.loads((cache.root / key / "manifest.json").read_text())


def condensation_seconds(setting: Setting, cache: Cache) -> float | None:
    m = set_manifest(setting, cache)
    return float(m["wall_seconds"]) if m else None


def moved_sd(setting: Setting, cache: Cache, stored: dict[str, Any]) -> float | None:
    """How far the DM set moved from its real initialisation (pixel sds); None for other proxies
    or when the set is not at hand (then what an earlier results file recorded, if anything)."""
    if setting.proxy != "dm":
        return None
    from dmnas.condensation.movement import movement

    entry = set_manifest(setting, cache)
    if entry is None:
        return stored.get("moved", {}).get(setting.name)
    if "movement" in entry:
        return float(entry["movement"]["moved_sd"])
    loaded = cache.load(entry["key"])
    return movement(load_dataset(DATA), setting.condense_config(), loaded.images).moved_sd


def paired_vs_random(
    setting: Setting, proxies: dict[str, ProxyScores], truth: GroundTruth
) -> list[dict[str, Any]]:
    """The row against the random real subset of the same IPC and image passes: Δρ whole table
    and within each top k, paired bootstrap over the architectures both scored."""
    from dmnas.reporting.build import PAIRED_MEASURES, top_population
    from dmnas.reporting.stats import paired_delta, top_k_sizes

    other = RANDOM_AT.get(setting.ipc)
    if setting.proxy != "dm" or other not in proxies or setting.name not in proxies:
        return []
    a, b, mean = proxies[setting.name], proxies[other], truth.mean
    out = []
    for measure in PAIRED_MEASURES:
        pool = truth.unbiased if measure == "spearman" else top_population(truth)
        names = sorted(set(a.scores) & set(b.scores) & set(pool) & set(mean))
        k = None if measure == "spearman" else top_k_sizes(len(names))[measure]
        d = paired_delta(
            np.array([a.scores[n] for n in names]), np.array([b.scores[n] for n in names]),
            np.array([mean[n] for n in names]), (setting.name, other), k=k, measure=measure, samples=2000,
        )  # fmt: skip
        out.append({**d.to_dict(), "k": k, "of": len(names)})
    return out


def report(
    proxies: list[ProxyScores],
    settings: list[Setting],
    truth: GroundTruth,
    cache: Cache,
    args: Any,
    archs: list[str],
) -> str:
    import torch

    from dmnas.reporting.build import ceilings_of

    by_name = {s.name: s for s in settings}
    by_label = {p.label: p for p in proxies}
    rows = build_rows(proxies, truth, confirm_k=3)
    ceiling = ceiling_of(truth)
    ceilings = ceilings_of(truth)
    stored = getattr(args, "stored", {})
    out_rows = []
    for r in rows:
        s = by_name[r.scores.label]
        est = r.estimate.to_dict() if r.estimate else {}
        out_rows.append(
            {
                "setting": asdict(s),
                "n": est.get("n"),
                "spearman": est.get("spearman"),
                "spearman_ci95": est.get("spearman_ci95"),
                # On the same footing: rho against the seed mean over the Spearman-Brown ceiling of that mean.
                "spearman_over_mean_ceiling": (est.get("spearman") / ceilings.mean) if ceilings and est else None,
                "spearman_per_seed": r.per_seed_spearman,
                "kendall": est.get("kendall_tau"),
                "top5_overlap": est.get("top5_overlap"),
                "top10pct_overlap": est.get("top10pct_overlap"),
                "spearman_top10pct": r.top_spearman.get("top10pct"),
                "spearman_top20pct": r.top_spearman.get("top20pct"),
                "spearman_top10": r.top_spearman.get("top10"),
                "spearman_top20": r.top_spearman.get("top20"),
                "top_n": r.top_n,
                "regret_at": {str(k): v for k, v in r.regret_at.items()},
                "winner": r.confirm.winner,
                "regret": r.confirm.regret,
                "image_passes_per_arch": s.image_passes * len(s.seeds),
                "seconds_per_arch": r.seconds_per_arch,
                "condensation_seconds": condensation_seconds(s, cache),
                "moved_sd": moved_sd(s, cache, stored),
                "proxy_seed_spearman": seed_agreement(s, archs, args.work),
                "paired": paired_vs_random(s, by_label, truth),
                "scores": r.scores.scores,
            }
        )
    missing = [s.name for s in settings if s.name not in {p.label for p in proxies}]
    result = {
        "ceiling": {**ceiling.to_dict(), "spearman_brown": ceilings.mean if ceilings else None} if ceiling else None,
        "ceilings": ceilings.to_dict() if ceilings else None,
        "ceiling_top10": ceilings.mean_top.get("top10") if ceilings else None,
        "ceiling_top20": ceilings.mean_top.get("top20") if ceilings else None,
        "seed_sd_pts": ceiling.seed_sd * 100 if ceiling else None,
        "rows": out_rows,
        "not_run": missing,
        "tables": [str(t.relative_to(ROOT)) if t.is_relative_to(ROOT) else str(t) for t in args.table],
        "unbiased_n": len(truth.unbiased & set(truth.mean)),
        "top_population_n": len(archs),
        "command": command_line(),
        "machine": f"{machine()}, torch {torch.__version__}",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2, default=str))
    md = markdown_summary(result, rows, truth)
    (RESULTS / f"{args.out}.md").write_text(md)
    return md


def _f(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and x != x) else f"{x:.3f}"


def markdown_summary(result: dict[str, Any], rows: list[Any], truth: GroundTruth) -> str:
    c = result["ceilings"] or {}
    lines = [
        f"# Proxy ablation on {', '.join(result['tables'])} ({result['unbiased_n']} architectures in the unbiased "
        f"sample, {result['top_population_n']} for top-k figures; Fashion-MNIST)",
        "",
        f"- command: `{result['command']}`",
        f"- machine: {result['machine']}",
        f"- date: {result['date']}",
        "- every row scores the table's architectures itself (no NNI); scores are validation accuracy after "
        "proxy training (or the zero-cost score), one seed unless the name says otherwise",
        f"- ceilings: seed vs seed {_f(c.get('single'))}, {c.get('k_seeds', 2)}-seed mean (Spearman–Brown) "
        f"{_f(c.get('mean'))}; within the top 10 % {_f((c.get('mean_top') or {}).get('top10pct'))}, "
        f"top 20 % {_f((c.get('mean_top') or {}).get('top20pct'))} (mean; one seed: "
        f"{_f((c.get('single_top') or {}).get('top10pct'))}, {_f((c.get('single_top') or {}).get('top20pct'))})",
        f"- not run (yet): {', '.join(result['not_run']) or 'none'}",
        "",
        "| setting | n | ρ vs mean [95% CI] | ρ / mean ceiling | ρ top-10 % | ρ top-20 % | regret@1 | regret@3 "
        "| moved (pixel sd) | s/arch | condensation s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        ci = r["spearman_ci95"] or [None, None]
        reg = r["regret_at"]
        lines.append(
            f"| {r['setting']['name']} | {r['n']} | {_f(r['spearman'])} [{_f(ci[0])}, {_f(ci[1])}] "
            f"| {_f(r['spearman_over_mean_ceiling'])} | {_f(r['spearman_top10pct'])} | {_f(r['spearman_top20pct'])} "
            f"| {_f(100 * reg['1'] if reg.get('1') == reg.get('1') else None)} | {_f(100 * reg['3'] if reg.get('3') == reg.get('3') else None)} "
            f"| {_f(r['moved_sd'])} | {_f(r['seconds_per_arch'])} | {_f(r['condensation_seconds'])} |"
        )
    lines += [
        "",
        "## Each DM row against the random real subset at the same IPC and image passes (paired bootstrap)",
        "",
        "| DM setting | measure | architectures | Δρ DM − random [95% CI] | share of resamples DM > random |",
        "|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        for d in r["paired"]:
            archs = str(d["n"]) if d["k"] is None else f"top {d['k']} of {d['of']}"
            lines.append(
                f"| {r['setting']['name']} | {d['measure']} | {archs} "
                f"| {_f(d['delta'])} [{_f(d['ci95'][0])}, {_f(d['ci95'][1])}] | {_f(d['p_a_beats_b'])} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
