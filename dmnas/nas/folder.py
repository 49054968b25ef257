"""A search's folder on disk, ``<workdir>/searches/<id>/``: what it records and how it is read back.

One id per search: the folder, the proxy experiment in NNI (``<id>``), the ground-truth phase
(``<id>/ground_truth/``, NNI experiment ``<id>_gt``) and each resumption (``<id>_r<k>``) all
carry it. Every file is written atomically, so a report may read while a search writes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmnas.util.atomic import write_json_atomic
from dmnas.errors import DmnasError
from dmnas.nas.config import CONFIRM
from dmnas.groundtruth.store import GroundTruthStore
from dmnas.train import TrainRecipe

log = logging.getLogger(__name__)

GT_PHASE = "ground_truth"  # subfolder of a search holding its full-data phase
# What a remote trial folder holds besides context.json and the proxy set: nothing of the results.
NNI_IGNORE = "trials\nresults.json\nground_truth_plan.json\nconfig.yaml\nsearch.json\nground_truth\n"


SEARCHES = "searches"  # under the workdir: one folder per search


@dataclass(frozen=True)
class SearchMeta:
    """What ``search.json`` holds: how a search was run, read back by resume, the report and the
    ground truth. Files written before a field existed read with its default."""

    id: str
    space: str  # the space file's path
    proxy: str
    fingerprint: str
    full_recipe: dict[str, Any]
    full_images: int
    space_size: int = 0
    tuner: str = "grid"
    max_trials: int = 0
    concurrency: int = 1
    dataset: str = ""
    entry_key: str | None = None
    proxy_movement: dict[str, Any] | None = None  # how far the DM set moved (the report says it)
    ipc: int = 0
    proxy_recipe: dict[str, Any] = field(default_factory=dict)
    trial_recipe: dict[str, Any] | None = None  # None for a zero-cost proxy
    early_images: int = 0
    proxy_seeds: int = 1
    proxy_draws: int = 1
    draw_keys: tuple[str, ...] = ()
    full_seeds: int = 2
    confirm: int = CONFIRM
    tables: tuple[str, ...] = ("none",)
    device: str = "cpu"
    training_service: str = "local"
    machines: str | None = None
    ui_host: str = "127.0.0.1"
    trials_per_gpu: int = 1
    trial_mode: str = "worker"
    resumed: tuple[dict[str, Any], ...] = ()  # one entry per resumption: nni_id, recorded, missing

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "SearchMeta":
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        if "tables" not in raw and "table" in raw:  # searches before tables were pooled
            known["tables"] = [raw["table"] or "none"]
        for name in ("draw_keys", "tables", "resumed"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for name in ("draw_keys", "tables", "resumed"):
            out[name] = list(out[name])
        return out

    @property
    def trial_epochs(self) -> int:
        """Epochs of one proxy trial (0 for a zero-cost score)."""
        return int((self.trial_recipe or {}).get("epochs") or 0)

    @property
    def nni_ids(self) -> list[str]:
        """The NNI experiments of the proxy phase: the first and each resumption's."""
        return [self.id, *(r["nni_id"] for r in self.resumed)]


@dataclass(frozen=True)
class SearchFolder:
    """Every path of one search, ``<workdir>/searches/<id>/``."""

    workdir: Path
    id: str

    @property
    def root(self) -> Path:
        return self.workdir / SEARCHES / self.id

    @property
    def meta_file(self) -> Path:
        return self.root / "search.json"

    @property
    def results_file(self) -> Path:
        return self.root / "results.json"

    @property
    def context_file(self) -> Path:
        return self.root / "context.json"

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def plan_file(self) -> Path:
        return self.root / "ground_truth_plan.json"

    @property
    def gt(self) -> Path:
        """The full-data phase's own folder (its context, results and trials)."""
        return self.root / GT_PHASE

    @property
    def lock_file(self) -> Path:
        return self.root / RUN_LOCK

    def meta(self) -> SearchMeta:
        return SearchMeta.from_dict(json.loads(self.meta_file.read_text()))

    def write_meta(self, meta: SearchMeta) -> None:
        write_json_atomic(self.meta_file, meta.to_dict())

    def nni_db(self, nni_id: str) -> Path:
        """NNI's SQLite file of one of this search's experiments (kept under the workdir)."""
        return self.workdir / "nni" / nni_id / "db" / "nni.sqlite"


def search_dir(workdir: Path, search_id: str) -> Path:
    return SearchFolder(workdir, search_id).root


def gt_nni_id(search_id: str) -> str:
    return f"{search_id}_gt"


def resume_nni_id(search_id: str, k: int) -> str:
    return f"{search_id}_r{k}"


RUN_LOCK = ".running.lock"  # held (flock) by the process running or resuming the search


def lock_search(folder: Path) -> Any:
    """Hold the search's run lock for as long as the returned handle stays open (the kernel frees it
    when the process ends, even by SIGKILL). A search that another live process holds is refused:
    two runs of one search would fight over its workers and overwrite each other's results."""
    import os

    from dmnas.util.locks import open_lock

    path = folder / RUN_LOCK
    handle = open_lock(path)
    if handle is None:
        try:
            owner = path.read_text().strip()
        except OSError:
            owner = ""
        raise DmnasError(
            f"search {folder.name} is still running (pid {owner or 'of another process'}); wait for it to finish, "
            "or stop it first"
        )
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def known_searches(workdir: Path) -> list[str]:
    folder = workdir / SEARCHES
    return sorted(p.name for p in folder.glob("*") if SearchFolder(workdir, p.name).meta_file.exists()) if folder.is_dir() else []


def save_outcome(folder: Path, outcome: Any, prior: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """results.json of a search phase: ``prior`` trials (recorded before an interruption) and this
    outcome's (a :class:`dmnas.nas.nni.outcome.ExperimentOutcome`)."""
    from dmnas.nas.nni.outcome import last_error_line

    for t in outcome.failed:
        log.warning(
            "trial %s failed: %s (log: %s)", t.trial_id, last_error_line(t.stderr_path) or "no stderr", t.stderr_path
        )
    summary = {
        "experiment": outcome.id,
        "status": outcome.status,
        "url": outcome.url,
        "succeeded": len(outcome.succeeded) + len(prior),
        "failed": len(outcome.failed),
        "failed_logs": [t.stderr_path for t in outcome.failed if t.stderr_path],
        "nni_mislabelled": outcome.mislabelled,
        "resumed_from_records": len(prior),
        "trials": list(prior)
        + [
            {
                "trial_id": t.trial_id,
                "status": t.status,
                "nni_shown_arch": t.nni_shown_arch,
                "parameter_id": t.parameter_id,
                "tuner_arch": t.tuner_arch,
                "record": t.record,
                "stderr": t.stderr_path,
                "nni_seconds": t.nni_seconds,
            }
            for t in outcome.trials
        ],
    }
    write_json_atomic(folder / "results.json", summary)
    return summary


def is_full_data(proxy: str | None) -> bool:
    from dmnas.proxykinds import PROXY_KINDS

    return proxy in PROXY_KINDS and PROXY_KINDS.get(proxy).full_data


def adopt_records(folder: Path, outcome: Any, gt_store: GroundTruthStore, fingerprint: str, recipe: TrainRecipe) -> None:
    """Keep here what trials on other machines recorded there (from their final reports to NNI):
    the trial record, and full-data results in the ground-truth store, one per seed. Local trials
    wrote both themselves; nothing is overwritten."""
    for t in outcome.succeeded:
        rec = t.record
        path = folder / "trials" / f"{rec['arch']}__{t.trial_id}.json"
        if not path.exists():
            write_json_atomic(path, rec)
        if not is_full_data(rec.get("proxy")):
            continue
        seeds, accs = rec.get("seeds", [rec.get("seed")]), rec.get("seed_scores", [rec["val_acc"]])
        for seed, acc in zip(seeds, accs, strict=True):
            if gt_store.get(fingerprint, rec["arch"], recipe, int(seed)) is None:
                per_seed = {**rec, "seed": int(seed), "val_acc": acc, "trial_id": t.trial_id}
                if len(rec.get("seeds", [])) > 1:
                    per_seed["test_acc"] = None  # only the mean over seeds came back
                gt_store.put(fingerprint, rec["arch"], recipe, int(seed), per_seed)


def recorded_trials(folder: Path) -> dict[str, dict[str, Any]]:
    """arch -> the first final record a trial of this search wrote (trials write it before they
    report to NNI, so a record on disk is a finished trial, whatever happened to NNI after)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / "trials").glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # half-written by a killed trial: that architecture runs again
        if isinstance(rec, dict) and "arch" in rec and "score" in rec:
            out.setdefault(rec["arch"], rec)
    return out


def nni_final_records(db: Path) -> list[dict[str, Any]]:
    """The final reports that NNI's manager stored for an experiment (its SQLite file, here even when
    the trials ran on other machines): what a killed remote search had finished."""
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT trialJobId, data FROM MetricData WHERE type = 'FINAL'").fetchall()
    except sqlite3.Error as err:
        log.warning("cannot read NNI's records in %s (%s)", db, err)
        return []
    out = []
    for trial_id, data in rows:
        try:
            rec = json.loads(json.loads(data))  # NNI stores the reported JSON as a JSON string
        except (TypeError, ValueError):
            continue
        if isinstance(rec, dict) and "arch" in rec and "score" in rec:
            out.append({**rec, "trial_id": rec.get("trial_id", trial_id)})
    return out


def load_search(workdir: Path, search_id: str) -> tuple[SearchMeta, dict[str, Any]]:
    """search.json and results.json of a finished search."""
    folder = SearchFolder(workdir, search_id)
    try:
        meta = folder.meta()
        results = json.loads(folder.results_file.read_text())
    except FileNotFoundError:
        finished = [s for s in known_searches(workdir) if SearchFolder(workdir, s).results_file.exists()]
        raise DmnasError(
            f"no finished search {search_id!r} in {workdir}; known: {', '.join(finished) or 'none'}"
        ) from None
    except (ValueError, TypeError) as err:
        raise DmnasError(f"search {search_id} has a corrupt results file ({err})") from None
    return meta, results


def budget(record: dict[str, Any]) -> int:
    return int(record.get("budget_epochs") or 0)


def proxy_scores(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, float], int]:
    """arch -> score (mean over repeated trials of one architecture, e.g. from a random tuner),
    arch -> summed seconds of all its trials, and how many architectures were scored more than once.
    A multi-fidelity tuner (hyperband) scores an architecture at several budgets: its score is the
    mean at its highest budget, its seconds count every budget."""
    by_arch: dict[str, list[dict[str, Any]]] = {}
    for t in results["trials"]:
        if t["record"]:
            by_arch.setdefault(t["record"]["arch"], []).append(t["record"])
    seconds = {a: sum(float(r["train_seconds"]) for r in rs) for a, rs in by_arch.items()}
    top = {a: [r for r in rs if budget(r) == max(map(budget, rs))] for a, rs in by_arch.items()}
    scores = {a: sum(r.get("score", r.get("val_acc")) for r in rs) / len(rs) for a, rs in top.items()}
    return scores, seconds, sum(len(rs) > 1 for rs in top.values())
