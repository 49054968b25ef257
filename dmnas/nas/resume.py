"""Continue an interrupted grid search: what it scored is kept, a new NNI experiment scores the rest."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from dmnas.util.atomic import check_writable, write_json_atomic
from dmnas.errors import DmnasError
from dmnas.groundtruth.store import GroundTruthStore
from dmnas.nas.config import SearchConfig
from dmnas.nas.folder import SearchFolder, known_searches, lock_search, nni_final_records, recorded_trials, resume_nni_id
from dmnas.nas.launch import launcher_for
from dmnas.nas.run import OnFinished, SearchRun, no_report, run_phases, warn_open_ui

log = logging.getLogger(__name__)


def resume_search(cfg: SearchConfig, on_finished: OnFinished = no_report) -> str:
    """Architectures with a recorded proxy result are kept, a new NNI experiment (``<id>_r<k>``)
    scores only the others, and the report covers each architecture once. The search's own
    settings (space, proxy, recipe, data, proxy set) are reused (said so); this command's options
    that would change them do not apply."""
    from dmnas.nas.trials.context import TrialContext
    from dmnas.nas.nni.manager import claim_port
    from dmnas.nas.space import load_space
    from dmnas.nas.tuners import TUNERS

    search_id = cfg.resume or ""
    paths = SearchFolder(cfg.workdir, search_id)
    folder = paths.root
    try:
        meta = paths.meta()
        ctx = TrialContext.load(paths.context_file)
    except FileNotFoundError:
        known = known_searches(cfg.workdir)
        raise DmnasError(
            f"--resume {search_id}: no search of that id in {cfg.workdir}; known: {', '.join(known) or 'none'}"
        ) from None
    except (ValueError, TypeError) as err:
        raise DmnasError(f"--resume {search_id}: its search.json or context.json is corrupt ({err})") from None
    check_writable(folder, "search folder")
    lock = lock_search(folder)  # before anything is read further or written: one run per search
    if not TUNERS.get(meta.tuner).exhaustive:
        raise DmnasError(
            f"--resume continues grid searches; search {search_id} used tuner {meta.tuner} "
            "(start it again, or use --tuner grid)"
        )
    space = load_space(meta.space)
    names = [spec.name for spec in space.specs()][: int(meta.max_trials)]
    # Records on disk first; then what NNI's manager kept of trials that wrote theirs elsewhere.
    done = recorded_trials(folder)
    for nni_id in meta.nni_ids:
        for rec in nni_final_records(paths.nni_db(nni_id)):
            if rec["arch"] not in done:
                done[rec["arch"]] = rec
                write_json_atomic(paths.trials / f"{rec['arch']}__{rec['trial_id']}.json", rec)
    missing = [n for n in names if n not in done]
    prior = [
        {"trial_id": r.get("trial_id"), "status": "SUCCEEDED", "record": r, "recorded_before_resume": True}
        for n, r in done.items()
        if n in names
    ]
    nni_id = resume_nni_id(search_id, len(meta.resumed) + 1)
    log.info(
        "resuming search %s (%s on %s): %d of %d architectures already scored (not trained again); %s; "
        "the search's own space, proxy, recipes, data and proxy set are kept",
        search_id, meta.proxy, space.name, len(prior), len(names),
        f"scoring the other {len(missing)} in NNI experiment {nni_id}" if missing else "nothing left to score",
    )
    port = claim_port(cfg.port)
    warn_open_ui(cfg.ui_host, port.port)
    meta = replace(meta, resumed=(*meta.resumed, {"nni_id": nni_id, "recorded": len(prior), "missing": len(missing)}))
    paths.write_meta(meta)
    tables = [GroundTruthStore(Path(t)) for t in meta.tables if t != "none"]
    # A remote search resumes on its machines (checked again); a local one on this machine.
    machines_file = (cfg.machines or Path(meta.machines)) if meta.machines else None
    launcher = launcher_for(machines_file, cfg.trial_mode, ctx.device)
    launcher.check(ctx.data, meta.fingerprint)
    run = SearchRun(paths, space, ctx, meta, port, launcher, tables, lock)
    if missing:
        log.info("NNI experiment %s: web UI %s", nni_id, port.url(cfg.ui_host))
    nni_space = {"arch": {"_type": "choice", "_value": missing}}
    return run_phases(cfg, run, nni_space, len(missing), len(missing), "grid", nni_id, prior, on_finished=on_finished)
