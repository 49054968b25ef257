"""A report over finished searches: their proxy scores, the ground truth they share, written to
``<workdir>/reports/<id>+<id>/``. What ``dmnas report`` and ``dmnas.report()`` run."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from dmnas.errors import DmnasError
from dmnas.groundtruth.tables import ground_truth_for, table_stores
from dmnas.reporting.report import Report, make_report, write_report
from dmnas.reporting.types import ProxyScores
from dmnas.groundtruth.store import GroundTruthStore
from dmnas.groundtruth.tables import UNBIASED_TUNERS, SearchSample
from dmnas.nas.folder import SearchFolder, SearchMeta, load_search, proxy_scores
from dmnas.proxykinds import proxy_kind
from dmnas.train import TrainRecipe

log = logging.getLogger(__name__)


def proxy_label(meta: SearchMeta) -> str:
    return proxy_kind(meta.proxy).label(meta)


def space_architectures(space: str) -> frozenset[str]:
    """The names in a search's space; empty when the space file is gone (then only what the
    search scored is known to belong to it)."""
    from dmnas.nas.space import load_space

    try:
        return frozenset(spec.name for spec in load_space(space).specs())
    except (DmnasError, OSError) as err:
        log.warning("space %s of the search cannot be read (%s): regret counts only scored architectures", space, err)
        return frozenset()


def search_proxy_scores(meta: SearchMeta, results: dict[str, Any]) -> ProxyScores:
    scores, seconds, repeats = proxy_scores(results)
    recs = [t["record"] for t in results["trials"] if t["record"]]
    if repeats:
        log.info("search %s: %d architectures were scored more than once; their scores are averaged", meta.id, repeats)
    images = recs[0]["images"] if recs else 0
    epochs = meta.trial_epochs
    return ProxyScores(
        proxy_label(meta),
        meta.id,
        meta.proxy,
        scores,
        seconds,
        images,
        results["failed"],
        repeats,
        space_architectures(meta.space),
        details={r["arch"]: {k: r[k] for k in ("params", "seed_scores", "draw_scores") if k in r} for r in recs},
        passes_per_arch=images * epochs,
        tuner=meta.tuner,
        concurrency=meta.concurrency,
        space_name=Path(meta.space).stem,
    )


def report_searches(
    ids: list[str],
    workdir: Path,
    full_epochs: int | None = None,
    table: str | list[str] | None = None,
    confirm: int | None = None,
) -> Report:
    """Proxy vs full-data agreement for one or more searches, side by side; written to disk.

    ``table``: None = what the first search used, 'none', or one or more table names/paths
    (tables of the same recipe are pooled)."""
    if confirm is not None and confirm < 0:
        raise DmnasError(f"--confirm must be >= 0, got {confirm}")
    if not ids:
        raise DmnasError("name at least one search id")
    loaded = [load_search(workdir, i) for i in ids]
    first = loaded[0][0]
    full_recipe = TrainRecipe(**first.full_recipe)
    if full_epochs is not None:
        full_recipe = replace(full_recipe, epochs=full_epochs)
    if len({m.fingerprint for m, _ in loaded}) > 1:
        raise DmnasError(f"searches {', '.join(ids)} use different datasets/splits; report them separately")
    confirm_k = confirm if confirm is not None else first.confirm
    proxies = [search_proxy_scores(meta, results) for meta, results in loaded]
    archs = set().union(*(p.scores.keys() | p.space for p in proxies))
    tables = table_stores(table if table is not None else list(first.tables))
    truth = ground_truth_for(
        first.fingerprint, search_samples(loaded, workdir, full_recipe), GroundTruthStore(workdir / "ground_truth"),
        tables, full_recipe, archs, first.full_images,
    )  # fmt: skip
    hw, channels = IMAGE_GEOMETRY.get(first.dataset, (32, 3))
    notes = movement_notes(loaded, workdir) + baseline_notes(truth, first.dataset, hw, channels)
    report = replace(
        make_report(proxies, truth, confirm_k), notes=notes, full_epochs=full_recipe.epochs,
        train_rate=training_rate(workdir, first.fingerprint, full_recipe, hw, channels), image_geometry=(hw, channels),
    )
    paths = write_report(workdir / "reports" / "+".join(ids), report)
    return replace(report, paths=paths)


# Image side and channels of the built-in datasets (pricing full-data training by forward cost).
IMAGE_GEOMETRY = {"fashion_mnist": (28, 1), "mnist": (28, 1), "cifar10": (32, 3), "cifar100": (32, 3)}
CLASSES = {"cifar100": 100}  # the others have 10


def parameter_counts(archs: list[str], hw: int, channels: int, classes: int) -> dict[str, float]:
    import torch

    from dmnas.models import build_convnet, count_parameters, parse_arch

    return {
        a: float(count_parameters(build_convnet(parse_arch(a), (channels, hw, hw), classes, torch.Generator())))
        for a in archs
    }


def baseline_notes(truth: Any, dataset: str, hw: int, channels: int) -> list[str]:
    """The cheapest baseline on the same footing as the proxies: the parameter count of the
    architectures with full-data results. On the 20 best of the tables it orders the 2-epoch truth
    at Spearman 0.89, above every proxy that trains (benchmarks/results/proxy_frontier.md), while
    over a uniform sample it reads 0.29: a proxy's figures at the top mean little unless they beat it."""
    import numpy as np

    from dmnas.reporting.build import top_population
    from dmnas.reporting.draws import spearman_all, weighted_tau

    mean = truth.mean
    unbiased = sorted(truth.unbiased & set(mean))
    top = sorted(top_population(truth))
    if len(top) < 5 and len(unbiased) < 3:
        return []
    counts = parameter_counts(sorted(set(unbiased) | set(top)), hw, channels, CLASSES.get(dataset, 10))
    parts = []
    if len(unbiased) >= 3:
        rho = spearman_all(np.array([counts[a] for a in unbiased]), np.array([mean[a] for a in unbiased]))
        parts.append(f"Spearman {rho:.3f} on the unbiased sample (n={len(unbiased)})")
    if len(top) >= 5:
        y = np.array([mean[a] for a in top])
        tau = weighted_tau(np.array([counts[a] for a in top]), y)
        parts.append(f"weighted Kendall τ {tau:.3f} on the {len(top)} architectures of the top population")
    return [f"Cheap baseline, the parameter count of the same architectures (`--proxy params`): {'; '.join(parts)}."]


def training_rate(workdir: Path, fingerprint: str, recipe: TrainRecipe, hw: int, channels: int) -> float | None:
    """Seconds per forward multiply-add per image pass of full-data training, from every record of
    this dataset and recipe at hand (the project's store and all shipped tables)."""
    from dmnas.groundtruth.store import GroundTruthStore, merged
    from dmnas.catalog import TABLES_DIR, table_names
    from dmnas.reporting.findings import seconds_per_flop

    stores = [GroundTruthStore(workdir / "ground_truth"), *(GroundTruthStore(TABLES_DIR / t) for t in table_names())]
    per_pass = {
        arch: float(r["train_seconds"]) / (int(r["images"]) * recipe.epochs)
        for arch, seeds in merged(stores, fingerprint, recipe).items()
        for r in list(seeds.values())[:1]
        if r.get("train_seconds") and r.get("images")
    }
    return seconds_per_flop(per_pass, hw, channels)


def set_movement(meta: SearchMeta, workdir: Path) -> dict[str, Any] | None:
    """What the search recorded of its DM set's movement, else what the set's cache manifest says
    (searches made before it was recorded), else None."""
    if meta.proxy_movement:
        return meta.proxy_movement
    try:
        ctx = json.loads(SearchFolder(workdir, meta.id).context_file.read_text())
        manifest = json.loads((Path(ctx["cache_dir"]) / str(meta.entry_key) / "manifest.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest.get("movement")


def movement_notes(loaded: list[tuple[SearchMeta, dict[str, Any]]], workdir: Path) -> list[str]:
    """One line per DM search on how far its set moved: a set DM hardly touched is said to be one."""
    from dmnas.condensation.proxyset import movement_note

    return [
        f"Proxy set {meta.entry_key} of search {meta.id}: {movement_note(set_movement(meta, workdir))}."
        for meta, _ in loaded
        if proxy_kind(meta.proxy).needs_dm_set and meta.entry_key
    ]


def search_samples(
    loaded: list[tuple[SearchMeta, dict[str, Any]]], workdir: Path, full_recipe: TrainRecipe
) -> list[SearchSample]:
    """What each search adds to the unbiased sample: its planned ground-truth sample, and the
    architectures a full-data search trained over a uniform design (grid: all; random: draws)."""
    out = []
    for meta, results in loaded:
        plan = SearchFolder(workdir, meta.id).plan_file
        planned = frozenset(json.loads(plan.read_text())["sample"]) if plan.exists() else None
        census: frozenset[str] = frozenset()
        if (proxy_kind(meta.proxy).full_data and meta.tuner in UNBIASED_TUNERS
                and TrainRecipe(**meta.full_recipe) == full_recipe):  # fmt: skip
            census = frozenset(t["record"]["arch"] for t in results["trials"] if t["record"])
        out.append(SearchSample(meta.id, planned, census, "every architecture" if meta.tuner == "grid" else "uniform draws"))
    return out
