"""A search as calls: checks -> proxy set -> NNI experiment -> ground truth -> report.

Takes typed configs only (:class:`dmnas.nas.config.SearchConfig` and the condensation stage's
:class:`dmnas.condensation.job.ProxyJob`); it logs and raises, and hands the finished report to
``on_finished(search_id)`` while the last web UI is still up (the API builds and hands on the report
there, so this stage does not depend on the reporting one). One id names the search, its folder
and its NNI experiments.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from dmnas.util.atomic import check_writable, write_json_atomic
from dmnas.condensation.job import ProxyJob
from dmnas.errors import DmnasError
from dmnas.groundtruth.store import GroundTruthStore, merged
from dmnas.groundtruth.tables import full_seconds_estimate, table_stores
from dmnas.nas.config import SearchConfig
from dmnas.nas.launch import Launcher, launcher_for
from dmnas.nas.status import SearchProgress
from dmnas.proxykinds import proxy_kind
from dmnas.nas.folder import (
    SearchFolder, SearchMeta, adopt_records, gt_nni_id, lock_search, proxy_scores, save_outcome,
)
from dmnas.train import TrainRecipe

log = logging.getLogger(__name__)
MIN_RANKED = 2  # a search with fewer scored architectures than this ranked nothing
OnFinished = Callable[[str], None]  # called with the search id once its results are complete


def no_report(search_id: str) -> None:
    log.info("search %s finished; `dmnas report %s` reports it", search_id, search_id)


@dataclass(frozen=True)
class SearchRun:
    """One search's fixed parts, whether it starts now or resumes."""

    paths: SearchFolder  # its id and every path of its folder
    space: Any  # dmnas.nas.space.SearchSpace
    ctx: Any  # dmnas.nas.trials.context.TrialContext
    meta: SearchMeta
    port: Any  # dmnas.nas.nni.manager.PortClaim, held for the whole search
    launcher: Launcher
    tables: list[GroundTruthStore]
    lock: Any = None  # the search folder's run lock (folder.lock_search), held while it runs

    @property
    def search_id(self) -> str:
        return self.paths.id

    @property
    def folder(self) -> Path:
        return self.paths.root


def experiment_settings(
    name: str, nni_space: dict[str, Any], size: int, cfg: SearchConfig, run: SearchRun, folder: Path,
    max_trials: int | None, tuner: str, nni_id: str,
) -> Any:
    from dmnas.nas.nni.experiment import ExperimentSettings

    launch = run.launcher.launch(folder, cfg.concurrency, cfg.trials_per_gpu)
    return ExperimentSettings(
        name=name,
        nni_space=nni_space,
        space_size=size,
        tuner=tuner,
        max_trials=max_trials,
        concurrency=launch.concurrency,
        max_duration=cfg.max_duration,
        port=run.port.port,
        nni_dir=cfg.workdir / "nni",
        trial_command=launch.command,
        trial_code_dir=folder,
        use_gpu=run.launcher.use_gpu,
        seed=cfg.trial_seed,
        exp_id=nni_id,
        max_budget=cfg.proxy_recipe.epochs,
        machines=run.launcher.machines,
        ui_host=cfg.ui_host,
        trials_per_gpu=launch.trials_per_gpu,
        workers_dir=launch.workers_dir,
    )


def draw_jobs(job: ProxyJob, draws: int) -> list[ProxyJob]:
    """The proxy set of each draw: draw d condenses with the set's seed + d (draw 0 is ``job``)."""
    return [replace(job, condense=replace(job.condense, seed=job.condense.seed + d)) for d in range(draws)]


def start_search(cfg: SearchConfig, job: ProxyJob, on_finished: OnFinished = no_report) -> str:
    """Search ``cfg.space`` on the proxy; then the ground truth and the report. Returns the search id."""

    from dmnas.condensation.dm import check_ipc
    from dmnas.condensation.proxyset import obtain_proxy
    from dmnas.data import load_dataset
    from dmnas.nas.trials.context import TrialContext
    from dmnas.nas.nni.manager import claim_port
    from dmnas.nas.space import check_fits, load_space
    from dmnas.nas.tuners import TUNERS, capped_trials, hyperband_iteration_trials

    # Everything that can be checked before NNI starts, cheapest first.
    space = load_space(cfg.space)
    cfg.check()
    tuner = TUNERS.get(cfg.tuner)
    launcher = launcher_for(cfg.machines, cfg.trial_mode, job.device)
    tables = table_stores(cfg.table)
    device = job.device
    # Without --max-trials: the grid's size, one Hyperband iteration, or 20 for the other tuners.
    default_trials = hyperband_iteration_trials(cfg.proxy_recipe.epochs) if tuner.budgeted else 20
    max_trials = capped_trials(
        tuner, cfg.max_trials if cfg.max_trials or tuner.exhaustive else default_trials, space.size
    )
    workdir = cfg.workdir
    check_writable(workdir, "--workdir")
    kind = proxy_kind(cfg.proxy)
    if kind.needs_dm_set:
        check_writable(job.cache().root, "the proxy-set cache (--cache-dir)")
    data = load_dataset(job.data, job.data_root)
    check_fits(space, data.image_shape)
    check_ipc(data, job.condense.ipc)
    launcher.check(job.data.__dict__, data.fingerprint)  # before condensing (minutes) and before NNI starts
    port = claim_port(cfg.port)  # held until this process ends: no other dmnas search takes it
    if port.port != cfg.port:
        log.warning("port %d is in use; the web UI will use port %d", cfg.port, port.port)
    warn_open_ui(cfg.ui_host, port.port)
    entry_key, cache_dir, ipc, moved, draw_keys = None, None, job.condense.ipc, None, ()
    if kind.needs_dm_set:  # condensing may take minutes: only once everything else checked out
        keys = []
        for d, draw_job in enumerate(draw_jobs(job, cfg.proxy_draws)):
            _, proxy = obtain_proxy(draw_job, data)
            keys.append(proxy.key)
            moved = moved or proxy.movement  # the report's movement note is draw 0's
            log.info("proxy set%s: %s (%s) %s", f" of draw {d}" if cfg.proxy_draws > 1 else "", proxy.key,
                     "cache hit" if proxy.cache_hit else "condensed now", proxy.path)  # fmt: skip
        entry_key, draw_keys, cache_dir = keys[0], tuple(keys[1:]), str(job.cache().root)
    proxy_recipe, full_recipe = cfg.proxy_recipe, cfg.full_recipe
    # `early` makes as many image passes over the full split as one DM-proxy trial makes over its set.
    early_images = proxy_recipe.epochs * ipc * data.num_classes
    trial_recipe = {"full": full_recipe, "early": replace(full_recipe, epochs=1), "proxy": proxy_recipe}[kind.recipe]

    search_id = secrets.token_hex(4)  # a name, not a seed: nothing random depends on it
    paths = SearchFolder(workdir, search_id)
    folder = paths.root
    folder.mkdir(parents=True)
    lock = lock_search(folder)
    gt_store = GroundTruthStore(workdir / "ground_truth")
    if entry_key:
        cache_dir = launcher.place_proxy_sets(str(cache_dir), [entry_key, *draw_keys], paths)

    ctx = TrialContext(
        proxy=cfg.proxy,
        data=job.data.__dict__,
        data_dir=str(job.data_root.resolve()) if job.data_root else None,
        recipe=trial_recipe.to_dict(),
        device=device,
        seed=cfg.trial_seed,
        results_dir=str(folder / "trials"),
        ground_truth_dir=str(gt_store.root),
        entry_key=entry_key,
        cache_dir=cache_dir,
        ipc=ipc,
        seeds=cfg.full_seeds if kind.full_data else cfg.proxy_seeds,
        draws=cfg.proxy_draws,
        draw_keys=draw_keys,
        early_images=early_images,
        test_split=cfg.test_split,
    )
    ctx = launcher.context(ctx, data.fingerprint, cfg.concurrency)
    ctx.save(paths.context_file)
    meta = SearchMeta(
        id=search_id,
        space=str(space.path),
        space_size=space.size,
        proxy=cfg.proxy,
        tuner=cfg.tuner,
        max_trials=max_trials,
        concurrency=cfg.concurrency,
        dataset=data.name,
        fingerprint=data.fingerprint,
        entry_key=entry_key,
        proxy_movement=moved,
        ipc=ipc,
        proxy_recipe=proxy_recipe.to_dict(),
        full_recipe=full_recipe.to_dict(),
        trial_recipe=trial_recipe.to_dict() if kind.trains else None,
        early_images=early_images,
        proxy_seeds=ctx.seeds,
        proxy_draws=ctx.draws,
        draw_keys=draw_keys,
        full_seeds=cfg.full_seeds,
        confirm=cfg.confirm,
        tables=tuple(str(t.root) for t in tables) or ("none",),
        full_images=len(data.train_x),
        device=device,
        training_service=cfg.training_service,
        machines=str(launcher.machines.path.resolve()) if launcher.machines else None,
        ui_host=cfg.ui_host,
        trials_per_gpu=cfg.trials_per_gpu,
        trial_mode=launcher.trial_mode,
    )
    paths.write_meta(meta)
    paths.config_file.write_text(
        yaml.safe_dump({"search": meta.to_dict(), "trial_context": ctx.__dict__}, sort_keys=True)
    )
    log.info(
        "NNI experiment %s: %s (%d architectures, %d trials, tuner %s, proxy %s) - web UI %s",
        search_id, space.name, space.size, max_trials, cfg.tuner, cfg.proxy, port.url(cfg.ui_host),
    )
    run = SearchRun(paths, space, ctx, meta, port, launcher, tables, lock)
    return run_phases(cfg, run, space.nni_space, space.size, max_trials, cfg.tuner, search_id, on_finished=on_finished)


def warn_open_ui(ui_host: str, port: int) -> None:
    if ui_host == "0.0.0.0":
        import socket

        log.warning(
            "--ui-host 0.0.0.0: the web UI and NNI's REST API answer on every interface (http://%s:%d): anyone "
            "who reaches this machine can read, change or stop the experiment", socket.gethostname(), port,
        )


def say_if_out_of_time(summary: dict[str, Any], cfg: SearchConfig, search_id: str, max_trials: int) -> None:
    from dmnas.nas.nni.outcome import OUT_OF_TIME

    if summary.get("status") == OUT_OF_TIME:
        log.warning(
            "search %s: stopped by --max-duration %s: %d of %d architectures scored, the trials still running "
            "were stopped (a grid search continues with `dmnas search --resume %s`)",
            search_id, cfg.max_duration, summary["succeeded"], max_trials, search_id,
        )


def check_enough(summary: dict[str, Any], search_id: str) -> None:
    """An exit status that tells the truth: a search that ranked (almost) nothing failed. A trial
    without a result counts as failed whatever NNI labelled it (a SIGKILLed one can read SUCCEEDED)."""
    unscored = sum(1 for t in summary["trials"] if not t.get("record"))
    if summary["succeeded"] >= MIN_RANKED or not unscored:
        return
    logs = summary.get("failed_logs") or [t.get("stderr") for t in summary["trials"] if t.get("stderr")]
    raise DmnasError(
        f"search {search_id}: {unscored} trial(s) failed and {summary['succeeded']} succeeded, too few to rank; "
        f"see {logs[0] if logs else 'the trial logs'}"
    )


def run_phases(
    cfg: SearchConfig,
    run: SearchRun,
    nni_space: dict[str, Any],
    size: int,
    max_trials: int,
    tuner: str,
    nni_id: str,
    prior: list[dict[str, Any]] = (),
    on_finished: OnFinished = no_report,
) -> str:
    """Run the proxy experiment (over ``nni_space``), then the ground truth and the report."""
    from dmnas.nas.nni.experiment import run_experiment
    from dmnas.nas.nni.outcome import ExperimentOutcome

    search_id, folder, ctx = run.search_id, run.folder, run.ctx
    full_recipe = TrainRecipe(**run.meta.full_recipe)
    fingerprint = run.meta.fingerprint
    gt_store = GroundTruthStore(cfg.workdir / "ground_truth")  # the trials' own path may be a remote one

    def finish() -> None:
        # Called while the last experiment's web UI is still up, so --keep-ui shows a finished report.
        on_finished(search_id)

    need_gt = cfg.ground_truth is not None and not proxy_kind(ctx.proxy).full_data

    def proxy_done(outcome: Any) -> None:
        adopt_records(folder, outcome, gt_store, fingerprint, TrainRecipe(**ctx.recipe))
        summary = save_outcome(folder, outcome, prior)
        say_if_out_of_time(summary, cfg, search_id, max_trials)
        if not need_gt:
            check_enough(summary, search_id)
            finish()

    try:
        if size:
            run_experiment(  # its outcome reaches results.json through on_done
                experiment_settings(
                    f"dmnas {run.space.name} {ctx.proxy}", nni_space, size, cfg, run, folder, max_trials, tuner, nni_id
                ),
                on_progress=SearchProgress(f"search {search_id}", min(size, max_trials), folder / "trials"),
                keep_ui=cfg.keep_ui and not need_gt,
                on_done=proxy_done,
            )
        else:  # everything was recorded before the interruption
            save_outcome(folder, ExperimentOutcome(nni_id, "", "DONE"), prior)
            if not need_gt:
                finish()
    except KeyboardInterrupt:
        log.warning(
            "search %s interrupted: continue it with `dmnas search --resume %s` "
            "(architectures already scored are not trained again)", search_id, search_id,
        )
        raise
    summary = _summary(run.paths)
    log.info(
        "search %s: %d succeeded, %d failed%s", search_id, summary["succeeded"], summary["failed"],
        f"; NNI's trial table mislabelled {summary['nni_mislabelled']} (dmnas used the trials' own reports)"
        if summary["nni_mislabelled"] else "",
    )
    check_enough(summary, search_id)
    if need_gt:
        ground_truth_phase(cfg, run, summary, full_recipe, fingerprint, gt_store, finish)
    # A resumption with nothing left to score started no experiment of its own: offer the search's.
    views = [nni_id if size else search_id] + ([gt_nni_id(search_id)] if run.paths.gt.is_dir() else [])
    log.info("reopen the web UI later: %s", " / ".join(f"`dmnas view {v}`" for v in views))
    return search_id


def _summary(paths: SearchFolder) -> dict[str, Any]:
    return json.loads(paths.results_file.read_text())


def ground_truth_phase(
    cfg: SearchConfig,
    run: SearchRun,
    summary: dict[str, Any],
    full_recipe: TrainRecipe,
    fingerprint: str,
    gt_store: GroundTruthStore,
    finish: Callable[[], None],
) -> None:
    """Full-data training of an unbiased sample and the proxy's top to confirm, except what is known."""
    from dmnas.groundtruth.sampling import plan_ground_truth
    from dmnas.nas.nni.experiment import run_experiment
    from dmnas.nas.trials.params import job_name

    plan = plan_ground_truth(
        proxy_scores(summary)[0], run.space.size, cfg.ground_truth, cfg.confirm, list(range(cfg.full_seeds)), seed=cfg.trial_seed
    )
    write_json_atomic(run.paths.plan_file, plan.to_dict())
    known = merged([gt_store, *run.tables], fingerprint, full_recipe)
    missing = [(a, s) for a, s in plan.jobs() if s not in known.get(a, {})]
    est = len(missing) * full_seconds_estimate(known)
    log.info(
        "ground truth (%s, seeds %s): unbiased sample of %d (inclusion probability %.2f each) + the proxy's top %d "
        "to confirm; %d of %d trainings already known%s",
        full_recipe.describe(), plan.seeds, len(plan.sample), plan.inclusion_probability, len(plan.confirm),
        len(plan.jobs()) - len(missing), len(plan.jobs()),
        f", training {len(missing)} on full data (about {est / 60:.0f} min of training in all)" if missing else "",
    )
    if not missing:
        finish()
        return
    gt_dir = run.paths.gt
    gt_dir.mkdir(parents=True)
    replace(
        run.ctx,
        proxy="full",
        recipe=full_recipe.to_dict(),
        results_dir=run.launcher.results_dir(gt_dir),
        seeds=1,
        draws=1,  # a ground-truth job names its seed; full data has no draw of its own
        draw_keys=(),
    ).save(gt_dir / "context.json")
    jobs = [job_name(a, s) for a, s in missing]
    outcome = run_experiment(
        experiment_settings(
            f"dmnas {run.space.name} ground truth", {"job": {"_type": "choice", "_value": jobs}}, len(jobs),
            cfg, run, gt_dir, len(jobs), "grid", gt_nni_id(run.search_id),
        ),
        on_progress=SearchProgress(f"ground truth {run.search_id}", len(jobs), gt_dir / "trials"),
        keep_ui=cfg.keep_ui,
        on_done=lambda o: (adopt_records(gt_dir, o, gt_store, fingerprint, full_recipe), save_outcome(gt_dir, o), finish()),
    )
    if outcome.failed:
        log.warning("ground truth: %d full-data trials failed; see %s", len(outcome.failed), gt_dir / "results.json")
