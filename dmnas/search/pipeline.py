"""The search stage as calls: proxy set -> NNI experiment -> ground truth -> report; and ``view``.

Takes typed configs only (:class:`SearchConfig` plus the condensation stage's
:class:`dmnas.pipeline.ProxyJob`); :mod:`dmnas.cli` parses the command line into them.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ..atomic import write_json_atomic
from ..errors import DmnasError
from ..pipeline import ProxyJob
from ..train import TrainRecipe

log = logging.getLogger(__name__)

# 40 epochs on IPC 50 x 10 classes = 20 000 image passes per candidate, as 200 epochs on IPC 10 were;
# see DEFAULT_IPC in dmnas/dm.py for why the images per class changed rather than the passes.
PROXY_EPOCHS = 40
# Full-data (ground-truth) training: benchmarks/results/full_epochs_study.md measured where the
# ranking stops changing: Spearman(2 ep, 4 ep) = 0.988, equal to the seed-to-seed value at 2 ep,
# while Spearman(1, 2) = 0.939 stayed below it (10 architectures x 2 seeds, cosine, no DSA).
# That point is a property of the recipe, not of the device, and CUDA keeps it too so that GPU
# searches reuse the shipped CPU table; --full-epochs 4 (also measured) costs twice as much.
FULL_EPOCHS = {"cpu": 2, "cuda": 2}
FULL_RECIPE = TrainRecipe(epochs=FULL_EPOCHS["cpu"], schedule="cosine", strategy="none")
CONFIRM = 3
TRAINING_SERVICES = ("local", "remote")  # NNI's: this machine, or other machines over SSH
# What a remote trial folder holds besides context.json and the proxy set: nothing of the results.
NNI_IGNORE = "trials\nresults.json\nground_truth_plan.json\nconfig.yaml\nsearch.json\n"
BUDGETED_PROXIES = ("dm", "random")  # proxies trained for --epochs on a small set: a budget is their epochs
# The ground-truth table shipped with the repository (an editable install or a checkout).
SHIPPED_TABLE = Path(__file__).resolve().parents[2] / "benchmarks" / "ground_truth"


def default_workdir() -> Path:
    return Path(os.environ.get("DMNAS_WORKDIR") or "experiments").resolve()


def table_store(arg: str | None):  # noqa: ANN201
    """The read-only ground-truth table: --table PATH, 'none', or the shipped one if present."""
    from .ground_truth import GroundTruthStore

    if arg == "none":
        return None
    path = Path(arg) if arg else SHIPPED_TABLE
    if arg and not path.is_dir():
        raise DmnasError(
            f"ground-truth table {path} is not a folder (expected a store with table.json, e.g. {SHIPPED_TABLE})"
        )
    return GroundTruthStore(path) if path.is_dir() else None


def full_epochs_default(device: str) -> int:
    return FULL_EPOCHS["cuda" if device.startswith("cuda") else "cpu"]


def recipes(
    epochs: int, full_epochs: int | None, recipe_file: Path | None, strategy: str, device: str = "cpu"
) -> tuple[TrainRecipe, TrainRecipe]:
    """The proxy and full-data training recipes: defaults, then a recipe file's overrides."""
    proxy = TrainRecipe(epochs=epochs, strategy=strategy)
    full = replace(
        FULL_RECIPE, epochs=full_epochs if full_epochs is not None else full_epochs_default(device)
    )
    if recipe_file is not None:
        try:
            raw = yaml.safe_load(Path(recipe_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise DmnasError(f"cannot read recipe file {recipe_file}: {err}") from None
        unknown = set(raw) - {"proxy", "full"}
        if unknown:
            raise DmnasError(
                f"recipe file {recipe_file}: unknown section(s) {sorted(unknown)}; valid: proxy, full"
            )
        fields = set(TrainRecipe.__dataclass_fields__)
        for section in ("proxy", "full"):
            bad = set(raw.get(section) or {}) - fields
            if bad:
                raise DmnasError(
                    f"recipe file {recipe_file}: unknown key(s) {sorted(bad)} in {section}; valid: {', '.join(sorted(fields))}"
                )
        proxy = replace(proxy, **(raw.get("proxy") or {}))
        full = replace(full, **(raw.get("full") or {}))
    for r in (proxy, full):
        if r.epochs < 1:
            raise DmnasError(f"training epochs must be positive, got {r.epochs}")
    return proxy, full


@dataclass(frozen=True)
class SearchConfig:
    """One ``dmnas search``: what to search, how, and what ground truth to add afterwards."""

    space: str
    proxy: str
    proxy_recipe: TrainRecipe
    full_recipe: TrainRecipe
    workdir: Path
    tuner: str = "grid"
    max_trials: int | None = None
    max_duration: str | None = None
    concurrency: int = 1
    port: int = 8080
    keep_ui: bool = False
    proxy_seeds: int = 1
    full_seeds: int = 2
    ground_truth: int | None = None
    confirm: int = CONFIRM
    table: str | None = None
    test_split: bool = False
    trial_seed: int = 0
    quiet: bool = False
    resume: str | None = None  # id of an interrupted search to continue
    training_service: str = "local"  # or "remote": NNI's SSH training service over `machines`
    machines: Path | None = None  # machines.yaml (see dmnas.search.machines)

    def check(self) -> None:
        """Everything about the numbers that can be refused before anything runs."""
        for flag, value, least in (
            ("--concurrency", self.concurrency, 1),
            ("--ground-truth", self.ground_truth or 0, 0),
            ("--confirm", self.confirm, 0),
            ("--proxy-seeds", self.proxy_seeds, 1),
            ("--full-seeds", self.full_seeds, 1),
        ):
            if value < least:
                raise DmnasError(f"{flag} must be >= {least}, got {value}")
        if self.training_service not in TRAINING_SERVICES:
            raise DmnasError(
                f"unknown --training-service {self.training_service!r}; valid: {', '.join(TRAINING_SERVICES)}"
            )
        if (self.training_service == "remote") != (self.machines is not None):
            raise DmnasError("--training-service remote and --machines FILE go together")
        from .experiment import TUNERS

        tuner = TUNERS.get(self.tuner)
        missing = tuner.missing()
        if missing:
            raise DmnasError(
                f"--tuner {self.tuner} needs {' and '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not installed: "
                f"pip install {' '.join(missing)} (or dmnas[{self.tuner}])"
            )
        if tuner.budgeted and self.proxy not in BUDGETED_PROXIES:
            raise DmnasError(
                f"--tuner {self.tuner} gives trials a budget in proxy epochs; it needs --proxy "
                f"{' or '.join(BUDGETED_PROXIES)}, not {self.proxy}"
            )


class StatusPrinter:
    """One line whenever trials finish (or the first start): running counts alone flicker too often."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.last = label, quiet, None

    def __call__(self, stats: dict[str, int]) -> None:
        key = tuple(sorted((k, v) for k, v in stats.items() if k not in ("RUNNING", "WAITING")))
        if self.quiet or not stats or key == self.last:
            return
        self.last = key
        print(
            f"{self.label}: " + ", ".join(f"{v} {k.lower()}" for k, v in sorted(stats.items())),
            file=sys.stderr,
            flush=True,
        )


def _experiment_settings(
    name: str,
    nni_space: dict[str, Any],
    size: int,
    cfg: SearchConfig,
    port: int,
    workdir: Path,
    search_dir: Path,
    use_gpu: bool,
    max_trials: int | None,
    tuner: str,
    nni_id: str | None = None,
    machines: Any = None,
):  # noqa: ANN202
    from .experiment import ExperimentSettings

    if machines is not None:
        from .machines import trial_command

        (search_dir / ".nniignore").write_text(NNI_IGNORE)
        command = trial_command(machines)  # runs in the uploaded copy of search_dir
    else:
        command = f"{sys.executable} -m dmnas.search.trial --context {search_dir / 'context.json'}"
    return ExperimentSettings(
        name=name,
        nni_space=nni_space,
        space_size=size,
        tuner=tuner,
        max_trials=max_trials,
        concurrency=cfg.concurrency,
        max_duration=cfg.max_duration,
        port=port,
        nni_dir=workdir / "nni",
        trial_command=command,
        trial_code_dir=search_dir,
        use_gpu=use_gpu,
        seed=cfg.trial_seed,
        exp_id=nni_id or exp_id_for(search_dir),
        max_budget=cfg.proxy_recipe.epochs,
        machines=machines,
    )


def exp_id_for(search_dir: Path) -> str:
    """NNI ids allow letters, digits, '-' and '_'; the ground-truth run gets its own folder and id."""
    return search_dir.name.replace("-", "_")


def save_outcome(search_dir: Path, outcome, prior: list[dict[str, Any]] = ()) -> dict[str, Any]:  # noqa: ANN001
    """results.json of a search: ``prior`` trials (recorded before an interruption) and this outcome's."""
    from .experiment import last_error_line

    for t in outcome.failed:
        print(
            f"trial {t.trial_id} failed: {last_error_line(t.stderr_path) or 'no stderr'} (log: {t.stderr_path})",
            file=sys.stderr,
        )
    summary = {
        "experiment": outcome.id,
        "status": outcome.status,
        "url": outcome.url,
        "succeeded": len(outcome.succeeded) + len(prior),
        "failed": len(outcome.failed),
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
    # Atomic: `dmnas report` may read this file while a later search rewrites its own.
    write_json_atomic(search_dir / "results.json", summary)
    return summary


def run_search(cfg: SearchConfig, job: ProxyJob | None) -> str:
    """Search ``cfg.space`` on the proxy; then the ground truth and the report. Returns the search id."""
    if cfg.resume:
        return resume_search(cfg)
    import torch

    from ..dm import check_ipc
    from ..pipeline import load_data, obtain_proxy
    from .experiment import TUNERS, capped_trials, choose_port, hyperband_iteration_trials
    from .ground_truth import GroundTruthStore
    from .space import check_fits, load_space
    from .trial import TrialContext
    from .zero_cost import ZERO_COST

    # Everything that can be checked before NNI starts, cheapest first.
    space = load_space(cfg.space)
    tuner = TUNERS.get(cfg.tuner)
    cfg.check()
    machines = None
    if cfg.machines is not None:
        from .machines import load_machines

        machines = load_machines(cfg.machines)
    table = table_store(cfg.table)
    device = job.device
    # Without --max-trials: the grid's size, one Hyperband iteration, or 20 for the other tuners.
    default_trials = hyperband_iteration_trials(cfg.proxy_recipe.epochs) if tuner.budgeted else 20
    max_trials = capped_trials(
        tuner, cfg.max_trials if cfg.max_trials or tuner.exhaustive else default_trials, space.size
    )
    port = choose_port(cfg.port)
    if port != cfg.port:
        print(f"port {cfg.port} is in use; the web UI will use port {port}", file=sys.stderr)
    workdir = cfg.workdir
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DmnasError(f"cannot create --workdir {workdir}: {err.strerror}") from None
    proxy_recipe, full_recipe = cfg.proxy_recipe, cfg.full_recipe

    entry_key, cache_dir, ipc = None, None, job.condense.ipc
    data = load_data(job.data, job.data_root)
    check_fits(space, data.image_shape)
    check_ipc(data, ipc)
    if machines is not None:  # before condensing (minutes) and before NNI starts
        from .machines import check_machines

        check_machines(machines, job.data.__dict__, data.fingerprint)
        print(f"machines: {len(machines.machines)} ready ({', '.join(m.label for m in machines.machines)})")
    if cfg.proxy == "dm":  # condensing may take minutes: only once everything else checked out
        _, result = obtain_proxy(job, data)
        entry_key, cache_dir = result.entry.key, str(job.cache().root)
        print(
            f"proxy set: {entry_key} ({'cache hit' if result.cache_hit else 'condensed now'}) {result.entry.path}"
        )
    use_gpu = machines.use_gpu if machines else device.startswith("cuda") and torch.cuda.is_available()
    # `early` makes as many image passes over the full split as one DM-proxy trial makes over its set.
    early_images = proxy_recipe.epochs * ipc * data.num_classes
    trial_recipe = {"full": full_recipe, "early": replace(full_recipe, epochs=1)}.get(cfg.proxy, proxy_recipe)

    exp_id = secrets.token_hex(4)  # a name, not a seed: nothing random depends on it
    # The search folder and the NNI experiment share this id.
    search_dir = workdir / "searches" / exp_id
    search_dir.mkdir(parents=True)
    gt_store = GroundTruthStore(workdir / "ground_truth")
    if machines is not None and entry_key:
        cache_dir = ship_proxy_set(Path(cache_dir), entry_key, search_dir)
    ctx = TrialContext(
        proxy=cfg.proxy,
        data=job.data.__dict__,
        data_dir=str(job.data_root.resolve()) if job.data_root else None,
        recipe=trial_recipe.to_dict(),
        device=device,
        seed=cfg.trial_seed,
        results_dir=str(search_dir / "trials"),
        ground_truth_dir=str(gt_store.root),
        entry_key=entry_key,
        cache_dir=cache_dir,
        ipc=ipc,
        # Concurrent CPU trials share the cores instead of each spinning up all of them.
        threads=0 if use_gpu else max(1, (os.cpu_count() or 1) // cfg.concurrency),
        seeds=cfg.full_seeds if cfg.proxy == "full" else cfg.proxy_seeds,
        early_images=early_images,
        test_split=cfg.test_split,
    )
    if machines is not None:
        ctx = remote_context(ctx, machines, data.fingerprint, cfg.concurrency)
    ctx.save(search_dir / "context.json")
    meta = {
        "id": exp_id,
        "space": str(space.path),
        "space_size": space.size,
        "proxy": cfg.proxy,
        "tuner": cfg.tuner,
        "max_trials": max_trials,
        "concurrency": cfg.concurrency,
        "dataset": data.name,
        "fingerprint": data.fingerprint,
        "entry_key": entry_key,
        "ipc": ipc,
        "proxy_recipe": proxy_recipe.to_dict(),
        "full_recipe": full_recipe.to_dict(),
        "trial_recipe": None if cfg.proxy in ZERO_COST else trial_recipe.to_dict(),
        "early_images": early_images,
        "proxy_seeds": ctx.seeds,
        "full_seeds": cfg.full_seeds,
        "confirm": cfg.confirm,
        "table": str(table.root) if table else "none",
        "full_images": len(data.train_x),
        "device": device,
        "training_service": cfg.training_service,
        "machines": str(machines.path.resolve()) if machines else None,
    }
    (search_dir / "search.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    (search_dir / "config.yaml").write_text(
        yaml.safe_dump({"search": meta, "trial_context": ctx.__dict__}, sort_keys=True)
    )

    print(
        f"NNI experiment {exp_id}: {space.name} ({space.size} architectures, {max_trials} trials, tuner {cfg.tuner}, "
        f"proxy {cfg.proxy}) - web UI http://127.0.0.1:{port}",
        flush=True,
    )
    run = SearchRun(exp_id, search_dir, space, ctx, meta, port, use_gpu, table, machines)
    return search_and_report(
        cfg, run, space.nni_space, space.size, max_trials, cfg.tuner, exp_id_for(search_dir)
    )


def ship_proxy_set(cache_root: Path, key: str, search_dir: Path) -> str:
    """Copy the proxy set's entry (images, manifest; not the preview grid) into the trial folder that
    NNI uploads to every machine; returns the cache folder as the trials see it (relative)."""
    import shutil

    target = search_dir / "proxy" / key
    target.mkdir(parents=True)
    for name in ("images.pt", "manifest.json", "config.yaml"):
        if (cache_root / key / name).is_file():
            shutil.copy2(cache_root / key / name, target / name)
    size = sum(p.stat().st_size for p in target.iterdir())
    print(f"proxy set {key} travels with the trials ({size / 1e6:.1f} MB in {search_dir.name}/proxy)")
    return "proxy"


def remote_context(ctx, machines, fingerprint: str, concurrency: int):  # noqa: ANN001, ANN201
    """The trial context as a remote machine sees it: paths relative to the uploaded trial folder,
    each machine's data root, its own device and cores."""
    import math

    return replace(
        ctx,
        results_dir="trials",
        ground_truth_dir="ground_truth",
        data_dir=None,
        data_dirs=machines.data_roots(),
        fingerprint=fingerprint,
        device="auto",
        threads=0,
        trials_per_machine=math.ceil(concurrency / len(machines.machines)),
    )


@dataclass(frozen=True)
class SearchRun:
    """One search's fixed parts, whether it starts now or resumes."""

    exp_id: str
    search_dir: Path
    space: Any  # dmnas.search.space.Space
    ctx: Any  # dmnas.search.trial.TrialContext
    meta: dict[str, Any]
    port: int
    use_gpu: bool
    table: Any  # GroundTruthStore | None
    machines: Any = None  # MachineList for NNI's remote service, None for local


def search_and_report(
    cfg: SearchConfig,
    run: SearchRun,
    nni_space: dict[str, Any],
    size: int,
    max_trials: int,
    tuner: str,
    nni_id: str,
    prior: list[dict[str, Any]] = (),
) -> str:
    """Run the proxy experiment (over ``nni_space``), then the ground truth and the report."""
    from .experiment import run_experiment
    from .ground_truth import GroundTruthStore, merged
    from .sampling import plan_ground_truth
    from .trial import job_name

    exp_id, search_dir, space, ctx, port, use_gpu, table = (
        run.exp_id,
        run.search_dir,
        run.space,
        run.ctx,
        run.port,
        run.use_gpu,
        run.table,
    )
    workdir = cfg.workdir
    full_recipe = TrainRecipe(**run.meta["full_recipe"])
    fingerprint = run.meta["fingerprint"]
    gt_store = GroundTruthStore(workdir / "ground_truth")  # the trials' own path may be a remote one

    def finish() -> None:
        # Called while the last experiment's web UI is still up, so --keep-ui shows a finished report.
        make_report([exp_id], workdir, quiet=cfg.quiet, table=cfg.table)

    need_gt = cfg.ground_truth is not None and ctx.proxy != "full"
    settings = _experiment_settings(
        f"dmnas {space.name} {ctx.proxy}",
        nni_space,
        size,
        cfg,
        port,
        workdir,
        search_dir,
        use_gpu,
        max_trials,
        tuner,
        nni_id,
        run.machines,
    )
    try:
        if size:
            run_experiment(  # its outcome reaches results.json through on_done
                settings,
                on_progress=StatusPrinter(f"search {exp_id}", cfg.quiet),
                keep_ui=cfg.keep_ui and not need_gt,
                on_done=lambda o: (
                    adopt_records(search_dir, o, gt_store, fingerprint, TrainRecipe(**ctx.recipe)),
                    save_outcome(search_dir, o, prior),
                    None if need_gt else finish(),
                ),
            )
        else:  # everything was recorded before the interruption
            from .experiment import ExperimentOutcome

            save_outcome(search_dir, ExperimentOutcome(nni_id, "", "DONE"), prior)
            if not need_gt:
                finish()
    except KeyboardInterrupt:
        print(
            f"search {exp_id} interrupted: continue it with `dmnas search --resume {exp_id}` "
            "(architectures already scored are not trained again)",
            file=sys.stderr,
        )
        raise
    summary = json.loads((search_dir / "results.json").read_text())
    print(
        f"search {exp_id}: {summary['succeeded']} succeeded, {summary['failed']} failed"
        + (
            f"; NNI's trial table mislabelled {summary['nni_mislabelled']} (dmnas used the trials' own reports)"
            if summary["nni_mislabelled"]
            else ""
        )
    )

    if need_gt:
        scores = proxy_scores(summary)[0]
        plan = plan_ground_truth(
            scores,
            space.size,
            cfg.ground_truth,
            cfg.confirm,
            list(range(cfg.full_seeds)),
            seed=cfg.trial_seed,
        )
        write_json_atomic(search_dir / "ground_truth_plan.json", plan.to_dict())
        known = merged([gt_store, *([table] if table else [])], fingerprint, full_recipe)
        missing = [(a, s) for a, s in plan.jobs() if s not in known.get(a, {})]
        est = len(missing) * full_seconds_estimate(known)
        print(
            f"ground truth ({full_recipe.describe()}, seeds {plan.seeds}): unbiased sample of {len(plan.sample)} "
            f"(inclusion probability {plan.inclusion_probability:.2f} each) + the proxy's top {len(plan.confirm)} to confirm; "
            f"{len(plan.jobs()) - len(missing)} of {len(plan.jobs())} trainings already known"
            + (f" (table {table.root})" if table else "")
            + (
                f", training {len(missing)} on full data (about {est / 60:.0f} min of training in all, "
                "judged from the records at hand)"
                if missing
                else ""
            )
        )
        if missing:
            gt_dir = workdir / "searches" / f"{exp_id}-gt"
            gt_dir.mkdir(parents=True)
            replace(
                ctx,
                proxy="full",
                recipe=full_recipe.to_dict(),
                results_dir="trials" if run.machines else str(gt_dir / "trials"),
                seeds=1,
            ).save(gt_dir / "context.json")
            jobs = [job_name(a, s) for a, s in missing]
            gt_outcome = run_experiment(
                _experiment_settings(
                    f"dmnas {space.name} ground truth",
                    {"job": {"_type": "choice", "_value": jobs}},
                    len(jobs),
                    cfg,
                    port,
                    workdir,
                    gt_dir,
                    use_gpu,
                    len(jobs),
                    "grid",
                    machines=run.machines,
                ),
                on_progress=StatusPrinter(f"ground truth {exp_id}", cfg.quiet),
                keep_ui=cfg.keep_ui,
                on_done=lambda o: (
                    adopt_records(gt_dir, o, gt_store, fingerprint, full_recipe),
                    save_outcome(gt_dir, o),
                    finish(),
                ),
            )
            if gt_outcome.failed:
                print(
                    f"ground truth: {len(gt_outcome.failed)} full-data trials failed; see {gt_dir / 'results.json'}"
                )
        else:
            finish()
    views = (
        [exp_id]
        + ([nni_id] if nni_id != exp_id and size else [])
        + (
            [exp_id_for(workdir / "searches" / f"{exp_id}-gt")]
            if (workdir / "searches" / f"{exp_id}-gt").is_dir()
            else []
        )
    )
    print("reopen the web UI later: " + " / ".join(f"`dmnas view {v}`" for v in views))
    return exp_id


def adopt_records(search_dir: Path, outcome, gt_store, fingerprint: str, recipe: TrainRecipe) -> None:  # noqa: ANN001
    """Keep here what trials on other machines recorded there (from their final reports to NNI):
    the trial record, and full-data results in the ground-truth store, one per seed. Local trials
    wrote both themselves; nothing is overwritten."""
    for t in outcome.succeeded:
        rec = t.record
        path = search_dir / "trials" / f"{rec['arch']}__{t.trial_id}.json"
        if not path.exists():
            write_json_atomic(path, rec)
        if rec.get("proxy") != "full":
            continue
        seeds, accs = rec.get("seeds", [rec.get("seed")]), rec.get("seed_scores", [rec["val_acc"]])
        for seed, acc in zip(seeds, accs, strict=True):
            if gt_store.get(fingerprint, rec["arch"], recipe, int(seed)) is None:
                per_seed = {**rec, "seed": int(seed), "val_acc": acc, "trial_id": t.trial_id}
                if len(rec.get("seeds", [])) > 1:
                    per_seed["test_acc"] = None  # only the mean over seeds came back
                gt_store.put(fingerprint, rec["arch"], recipe, int(seed), per_seed)


def recorded_trials(search_dir: Path) -> dict[str, dict[str, Any]]:
    """arch -> the first final record a trial of this search wrote (trials write it before they
    report to NNI, so a record on disk is a finished trial, whatever happened to NNI after)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((search_dir / "trials").glob("*.json")):
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
    import sqlite3

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


def resume_search(cfg: SearchConfig) -> str:
    """Continue an interrupted grid search: architectures with a recorded proxy result are kept,
    a new NNI experiment (``<id>_r<k>``) scores only the others, and the report covers each
    architecture once. The search's own settings (space, proxy, recipe, data, proxy set) are
    reused (said so); this command's options that would change them do not apply."""
    from .experiment import TUNERS, choose_port
    from .ground_truth import GroundTruthStore
    from .space import load_space
    from .trial import TrialContext

    exp_id = cfg.resume or ""
    search_dir = cfg.workdir / "searches" / exp_id
    try:
        meta = json.loads((search_dir / "search.json").read_text())
        ctx = TrialContext.load(search_dir / "context.json")
    except FileNotFoundError:
        known = sorted(p.name for p in (cfg.workdir / "searches").glob("*") if (p / "search.json").exists())
        raise DmnasError(
            f"--resume {exp_id}: no search of that id in {cfg.workdir}; known: {', '.join(known) or 'none'}"
        ) from None
    except (ValueError, TypeError) as err:
        raise DmnasError(f"--resume {exp_id}: its search.json or context.json is corrupt ({err})") from None
    if not TUNERS.get(meta["tuner"]).exhaustive:
        raise DmnasError(
            f"--resume continues grid searches; search {exp_id} used tuner {meta['tuner']} "
            "(start it again, or use --tuner grid)"
        )
    space = load_space(meta["space"])
    names = [spec.name for spec in space.specs()][: int(meta["max_trials"])]
    resumed = list(meta.get("resumed", []))
    # Records on disk first; then what NNI's manager kept of trials that wrote theirs elsewhere.
    done = recorded_trials(search_dir)
    for nni_id in [exp_id_for(search_dir), *(r["nni_id"] for r in resumed)]:
        for rec in nni_final_records(cfg.workdir / "nni" / nni_id / "db" / "nni.sqlite"):
            if rec["arch"] not in done:
                done[rec["arch"]] = rec
                write_json_atomic(search_dir / "trials" / f"{rec['arch']}__{rec['trial_id']}.json", rec)
    missing = [n for n in names if n not in done]
    prior = [
        {"trial_id": r.get("trial_id"), "status": "SUCCEEDED", "record": r, "recorded_before_resume": True}
        for n, r in done.items()
        if n in names
    ]
    nni_id = f"{exp_id_for(search_dir)}_r{len(resumed) + 1}"
    print(
        f"resuming search {exp_id} ({meta['proxy']} on {space.name}): {len(prior)} of {len(names)} architectures "
        f"already scored (not trained again); "
        + (
            f"scoring the other {len(missing)} in NNI experiment {nni_id}"
            if missing
            else "nothing left to score"
        )
        + "; the search's own space, proxy, recipes, data and proxy set are kept",
        flush=True,
    )
    port = choose_port(cfg.port)
    meta["resumed"] = resumed + [{"nni_id": nni_id, "recorded": len(prior), "missing": len(missing)}]
    write_json_atomic(search_dir / "search.json", meta)
    table = None if meta.get("table") == "none" else GroundTruthStore(Path(meta["table"]))
    machines = None
    if meta.get("machines"):  # a remote search resumes on its machines (checked again)
        from .machines import check_machines, load_machines

        machines = load_machines(cfg.machines or Path(meta["machines"]))
        check_machines(machines, ctx.data, meta["fingerprint"])
    use_gpu = machines.use_gpu if machines else ctx.device.startswith("cuda") and ctx.threads == 0
    run = SearchRun(exp_id, search_dir, space, ctx, meta, port, use_gpu, table, machines)
    nni_space = {"arch": {"_type": "choice", "_value": missing}}
    if missing:
        print(f"NNI experiment {nni_id}: web UI http://127.0.0.1:{port}", flush=True)
    return search_and_report(cfg, run, nni_space, len(missing), len(missing), "grid", nni_id, prior)


def full_seconds_estimate(known: dict[str, dict[int, dict[str, Any]]]) -> float:
    """Mean training seconds of the full-data records at hand (a rough guide for what is missing)."""
    secs = [float(r.get("train_seconds", 0.0)) for seeds in known.values() for r in seeds.values()]
    return sum(secs) / len(secs) if secs else 60.0


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


def budget(record: dict[str, Any]) -> int:
    return int(record.get("budget_epochs") or 0)


def load_search(workdir: Path, exp_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    folder = workdir / "searches" / exp_id
    try:
        meta = json.loads((folder / "search.json").read_text())
        results = json.loads((folder / "results.json").read_text())
    except FileNotFoundError:
        known = (
            sorted(
                p.name
                for p in (workdir / "searches").glob("*")
                if (p / "results.json").exists() and "-gt" not in p.name
            )
            if (workdir / "searches").is_dir()
            else []
        )
        raise DmnasError(
            f"no finished search {exp_id!r} in {workdir}; known: {', '.join(known) or 'none'}"
        ) from None
    except ValueError as err:
        raise DmnasError(f"search {exp_id} has a corrupt results file ({err})") from None
    return meta, results


def _label(meta: dict[str, Any]) -> str:
    proxy, seeds = meta["proxy"], meta.get("proxy_seeds", 1)
    recipe = meta.get("trial_recipe") or {}
    detail = {
        "full": f"{recipe.get('epochs')}ep",
        "early": f"{meta.get('early_images')} img passes",
        "dm": f"ipc{meta['ipc']} {recipe.get('epochs')}ep",
        "random": f"ipc{meta['ipc']} {recipe.get('epochs')}ep",
    }.get(proxy, "at init")
    return f"{proxy} {detail}" + (f" x{seeds} seeds" if seeds > 1 else "") + f" ({meta['id']})"


UNBIASED_TUNERS = ("grid", "random")


def ground_truth_for(
    loaded: list[tuple[dict[str, Any], dict[str, Any]]],
    workdir: Path,
    table: str | None,
    full_recipe: TrainRecipe,
    archs: set[str],
    full_images: int,
):  # noqa: ANN201
    """Full-data results of ``archs`` from the project's store and the table, and which of them
    are an unbiased sample: the table's (a seeded uniform sample of its space) and each search's
    planned sample. Confirmation picks count only for the winner and the best known."""
    from .ground_truth import GroundTruthStore, merged, recipe_key
    from .report import GroundTruth

    stores = [GroundTruthStore(workdir / "ground_truth")]
    tstore = table_store(table)
    sources: dict[str, int] = {}
    unbiased: set[str] = set()
    fingerprint = loaded[0][0]["fingerprint"]
    records = merged(stores + ([tstore] if tstore else []), fingerprint, full_recipe)
    known = {a for a in records if a in archs}
    if tstore:
        manifest = tstore.root / "table.json"
        try:
            sample = set(json.loads(manifest.read_text())["sample"]) if manifest.exists() else set()
        except (ValueError, KeyError) as err:
            raise DmnasError(f"ground-truth table manifest {manifest} is corrupt ({err})") from None
        in_table = merged([tstore], fingerprint, full_recipe)
        from_table = {a for a in sample & known if a in in_table}
        if from_table:
            sources[f"table {tstore.root}"] = len(from_table)
        unbiased |= from_table
    for meta, results in loaded:
        plan_file = workdir / "searches" / meta["id"] / "ground_truth_plan.json"
        if plan_file.exists():
            planned = set(json.loads(plan_file.read_text())["sample"]) & known
            sources[f"search {meta['id']} sample"] = len(planned)
            unbiased |= planned
        # A full-data search is an unbiased sample only if its tuner chose without looking at
        # scores (the grid: all of them; random: uniform draws), and only of what it trained.
        tuner = meta.get("tuner", "grid")
        if meta["proxy"] == "full" and tuner in UNBIASED_TUNERS and TrainRecipe(**meta["full_recipe"]) == full_recipe:
            census = known & {t["record"]["arch"] for t in results["trials"] if t["record"]}
            drawn = "every architecture" if tuner == "grid" else "uniform draws"
            sources[f"search {meta['id']} ({drawn})"] = len(census)
            unbiased |= census
    per_seed = {a: {s: float(r["val_acc"]) for s, r in records[a].items()} for a in known}
    return GroundTruth(
        per_seed, frozenset(unbiased), full_recipe.describe(), recipe_key(full_recipe), full_images, sources
    )


def space_architectures(space: str) -> frozenset[str]:
    """The names in a search's space; empty when the space file is gone (then only what the
    search scored is known to belong to it)."""
    from .space import load_space

    try:
        return frozenset(spec.name for spec in load_space(space).specs())
    except (DmnasError, OSError) as err:
        log.warning("space %s of the search cannot be read (%s): regret counts only scored architectures", space, err)
        return frozenset()


def make_report(
    ids: list[str],
    workdir: Path,
    quiet: bool = False,
    full_epochs: int | None = None,
    table: str | None = None,
    confirm: int | None = None,
) -> dict[str, Any]:
    """Proxy vs full-data agreement for one or more searches, side by side; printed and written."""
    from .report import ProxyScores, build_rows, markdown, write_report

    loaded = [load_search(workdir, i) for i in ids]
    first = loaded[0][0]
    full_recipe = TrainRecipe(**first["full_recipe"])
    if full_epochs is not None:
        full_recipe = replace(full_recipe, epochs=full_epochs)
    fingerprints = {m["fingerprint"] for m, _ in loaded}
    if len(fingerprints) > 1:
        raise DmnasError(f"searches {', '.join(ids)} use different datasets/splits; report them separately")
    confirm_k = confirm if confirm is not None else int(first.get("confirm", CONFIRM))
    proxies = []
    for meta, results in loaded:
        scores, seconds, repeats = proxy_scores(results)
        recs = [t["record"] for t in results["trials"] if t["record"]]
        proxies.append(
            ProxyScores(
                _label(meta),
                meta["id"],
                meta["proxy"],
                scores,
                seconds,
                recs[0]["images"] if recs else 0,
                results["failed"],
                repeats,
                space_architectures(meta["space"]),
            )
        )
        if repeats:
            print(
                f"search {meta['id']}: {repeats} architectures were scored more than once; their scores are averaged"
            )
    archs = set().union(*(p.scores.keys() | p.space for p in proxies))
    truth = ground_truth_for(
        loaded,
        workdir,
        table if table is not None else first.get("table"),
        full_recipe,
        archs,
        int(first["full_images"]),
    )
    rows = build_rows(proxies, truth, confirm_k)
    out = workdir / "reports" / "+".join(ids)
    paths = write_report(out, rows, proxies, truth, confirm_k)
    print(markdown(rows, truth, confirm_k))
    for kind, p in paths.items():
        print(f"report {kind}: {p}")
    return {"rows": rows, "paths": paths, "truth": truth}


def view(exp_id: str, port: int) -> None:
    """Reopen a finished experiment's web UI (read-only) until Ctrl-C."""
    from nni.experiment import Experiment

    from .experiment import choose_port, quiet_nni

    quiet_nni()
    port = choose_port(port)
    try:
        exp = Experiment(None, id=exp_id)
    except ValueError as err:
        raise DmnasError(f"cannot open experiment {exp_id}: {err}") from None
    try:
        # NNI's blocking view() leaks its detached manager if interrupted while starting; stop it ourselves.
        exp.view(port=port, non_blocking=True)
        print(f"web UI of experiment {exp_id}: http://127.0.0.1:{port} (Ctrl-C closes it)", flush=True)
        while True:
            time.sleep(3600)
    except RuntimeError as err:
        raise DmnasError(f"cannot open experiment {exp_id}: {err}") from None
    except KeyboardInterrupt:
        pass
    finally:
        exp.stop()
