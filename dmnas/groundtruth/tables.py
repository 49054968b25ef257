"""The ground truth a report reads: the shipped tables (package data) and a project's own store, and
which of their architectures form an unbiased sample.

The tables live inside the package (``dmnas/groundtruth/tables/<name>/``), so a wheel or a
non-editable install scores ``convnet_bench48`` against the same table as a checkout. Each table
folder is a :class:`GroundTruthStore` with a ``table.json`` that says what it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dmnas.catalog import DEFAULT_TABLE, TABLES_DIR, table_names
from dmnas.errors import DmnasError
from dmnas.groundtruth.store import GroundTruthStore, Records, merged, recipe_key
from dmnas.groundtruth.truth import GroundTruth
from dmnas.train import TrainRecipe

# A full-data search is an unbiased sample only if its tuner chose without looking at scores.
UNBIASED_TUNERS = ("grid", "random")


def table_path(name_or_path: str) -> Path:
    """A shipped table by name (``shipped``, ``heldout``, ...) or a table folder by path."""
    if name_or_path in table_names():
        return TABLES_DIR / name_or_path
    path = Path(name_or_path)
    if not (path / "table.json").is_file():
        raise DmnasError(
            f"ground-truth table {name_or_path!r} is neither a shipped table ({', '.join(table_names()) or 'none'}) "
            "nor a folder with table.json"
        )
    return path


def table_stores(arg: str | list[str] | tuple[str, ...] | None) -> list[GroundTruthStore]:
    """--table: None = the default shipped table, 'none' = no table, else one or more names/paths
    (tables of the same recipe pool into one ground truth)."""
    if arg is None:
        return [GroundTruthStore(TABLES_DIR / DEFAULT_TABLE)] if (TABLES_DIR / DEFAULT_TABLE).is_dir() else []
    names = [arg] if isinstance(arg, str) else list(arg)
    if names == ["none"]:
        return []
    return [GroundTruthStore(table_path(n)) for n in names]


def table_sample(store: GroundTruthStore, field: str = "sample") -> set[str]:
    """The architectures a table's manifest lists under ``field``: ``sample``, those it drew
    uniformly (its unbiased part); ``screened``, those a screen chose to complete the top."""
    manifest = store.root / "table.json"
    try:
        return set(json.loads(manifest.read_text()).get(field, [])) if manifest.exists() else set()
    except (ValueError, AttributeError) as err:
        raise DmnasError(f"ground-truth table manifest {manifest} is corrupt ({err})") from None


def full_seconds_estimate(known: Records) -> float:
    """Mean training seconds of the full-data records at hand (a rough guide for what is missing)."""
    secs = [float(r.get("train_seconds", 0.0)) for seeds in known.values() for r in seeds.values()]
    return sum(secs) / len(secs) if secs else 60.0


@dataclass(frozen=True)
class SearchSample:
    """What one search adds to the unbiased sample: the sample its ground-truth plan drew (None:
    no plan) and, for a full-data search over a uniform design, every architecture it trained."""

    search_id: str
    planned: frozenset[str] | None = None
    census: frozenset[str] = frozenset()
    census_kind: str = "every architecture"  # or "uniform draws"


def ground_truth_for(
    fingerprint: str,
    searches: list[SearchSample],
    own: GroundTruthStore,
    tables: list[GroundTruthStore],
    full_recipe: TrainRecipe,
    archs: set[str],
    full_images: int,
) -> GroundTruth:
    """Full-data results of ``archs`` from the project's store (``own``) and the tables, and which of
    them are an unbiased sample: each table's (a seeded uniform sample of its space, or a stated
    design) and each search's. Confirmation picks count only for the winner and the best known."""
    sources: dict[str, int] = {}
    unbiased: set[str] = set()
    screened: set[str] = set()
    records = merged([own, *tables], fingerprint, full_recipe)
    known = {a for a in records if a in archs}
    for store in tables:
        in_table = merged([store], fingerprint, full_recipe)
        from_table = {a for a in table_sample(store) & known if a in in_table}
        name = store.root.name if store.root.parent == TABLES_DIR else str(store.root)
        if from_table:
            sources[f"table {name}"] = len(from_table)
        unbiased |= from_table
        top = {a for a in table_sample(store, "screened") & known if a in in_table}
        if top:
            sources[f"table {name} (screened top, top-k figures only)"] = len(top)
        screened |= top
    for search in searches:
        if search.planned is not None:
            sources[f"search {search.search_id} sample"] = len(search.planned & known)
            unbiased |= search.planned & known
        if search.census:
            sources[f"search {search.search_id} ({search.census_kind})"] = len(search.census & known)
            unbiased |= search.census & known
    per_seed = {a: {s: float(r["val_acc"]) for s, r in records[a].items()} for a in known}
    return GroundTruth(
        per_seed, frozenset(unbiased), full_recipe.describe(), recipe_key(full_recipe), full_images, sources,
        frozenset(screened - unbiased),
    )
