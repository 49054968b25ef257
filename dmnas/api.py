"""dmnas from Python: the same stages as the command line, with the same names and defaults.

    import dmnas
    proxy = dmnas.condense("fashion_mnist")             # cached; the device's default budget
    result = dmnas.search("convnet_bench48", ground_truth=0, concurrency=2)
    print(result.report.to_markdown())

Keyword names are the CLI's option names (``--max-trials`` -> ``max_trials``). Every function
logs (``logging.getLogger("dmnas")``) and raises :class:`dmnas.DmnasError` on bad input before
any work starts; none prints.
"""

from __future__ import annotations

import logging
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from dmnas.errors import DmnasError
from dmnas.nas.config import SEARCH

if TYPE_CHECKING:
    import torch

    from dmnas.condensation.job import ProxyJob
    from dmnas.condensation.proxyset import ProxySet
    from dmnas.data import Dataset
    from dmnas.reporting.report import Report
    from dmnas.nas.config import SearchConfig, SearchOptions
    from dmnas.nas.space import SearchSpace


def condense_job(dataset: str = "fashion_mnist", **options: Any) -> ProxyJob:
    """The resolved :class:`ProxyJob` of ``condense(dataset, **options)`` (nothing runs); ``options``
    are :func:`dmnas.condensation.job.proxy_job`'s keywords, ``None`` meaning its default."""
    from dmnas.condensation.job import proxy_job

    opts = {k: v for k, v in options.items() if v is not None}
    space = opts.pop("embed_space", None)
    if space is not None:
        opts["embed_pool"] = space_pool(space, opts.get("embed_pool"))
    try:
        return proxy_job(dataset, **opts)
    except TypeError as err:  # an unknown keyword: Python names it
        if "unexpected keyword argument" not in str(err):
            raise
        raise DmnasError(f"unknown option {str(err).split('argument ')[-1]}") from None


def space_pool(space: str, embed_pool: str | None) -> str:
    """``--embed-space SPACE`` as the ``--embed-pool`` it stands for: every architecture of the space
    (resolved here, above both the condensation and the search, so neither imports the other)."""
    from dmnas.nas.space import load_space

    if embed_pool:
        raise DmnasError("--embed-space and --embed-pool both name the embedding pool; give one")
    names = [spec.name for spec in load_space(space).specs()]
    if len(names) < 2:
        raise DmnasError(f"--embed-space {space} has {len(names)} architecture; a pool needs two or more")
    return ",".join(names)


def condense(
    dataset: str = "fashion_mnist",
    ipc: int | None = None,
    iterations: int | None = None,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    **options: Any,
) -> ProxySet:
    """The DM proxy set of ``dataset``: from the cache, or condensed now (resumable: an interrupted
    run continues from its last checkpoint). ``None`` means the device's default (50 iterations on
    a CPU, the paper's 20 000 on CUDA; IPC 50). Other options: the ``dmnas condense`` flags
    (``lr_img``, ``batch_real``, ``init``, ``strategy``, ``embed_arch``, ``embed_pool``, ``seed``,
    ``data_root``, ``real_chunk``, ``checkpoint_every``, ``compile``, ``force``, ...)."""
    from dmnas.condensation.proxyset import obtain_proxy

    job = condense_job(dataset, ipc=ipc, iterations=iterations, device=device, cache_dir=cache_dir, quiet=True, **options)
    return obtain_proxy(job)[1]


def load_dataset(name: str = "fashion_mnist", data_root: str | Path | None = None, **config: Any) -> Dataset:
    """A dataset as ready tensors (train/val/test splits, normalised); ``config``: DataConfig fields."""
    from dmnas.data import DataConfig
    from dmnas.data import load_dataset as _load

    return _load(DataConfig(name=name, **config), Path(data_root) if data_root else None)


def create_model(
    arch: str, image_shape: tuple[int, int, int] = (1, 32, 32), num_classes: int = 10, seed: int = 0
) -> torch.nn.Module:
    """A freshly initialised ConvNet from its name (``d3_w16_relu_instancenorm_avgpooling``)."""
    import torch

    from dmnas.models import build_convnet, parse_arch

    return build_convnet(parse_arch(arch), image_shape, num_classes, generator=torch.Generator().manual_seed(seed))


def list_spaces() -> list[str]:
    """Names of the shipped search spaces (``load_space`` also takes a YAML/JSON path)."""
    from dmnas.catalog import available_spaces

    return available_spaces()


def load_space(name: str) -> SearchSpace:
    from dmnas.nas.space import load_space as _load

    return _load(name)


@dataclass(frozen=True)
class ArchResult:
    """One architecture as the search scored it."""

    arch: str
    score: float
    seconds: float
    trial_id: str | None
    record: dict[str, Any]


@dataclass(frozen=True)
class SearchResult:
    """What ``dmnas.search()`` returns."""

    id: str  # the search's one id: its folder, its NNI experiment, `dmnas report ID`
    url: str  # the web UI while it ran (reopen it with `dmnas view ID`)
    folder: Path
    results: list[ArchResult]
    report: Report | None
    nni_experiments: list[str] = field(default_factory=list)

    def best(self) -> ArchResult | None:
        return max(self.results, key=lambda r: r.score, default=None)


def search_config(space: str, proxy: str, tuner: str, job: ProxyJob | None, options: SearchOptions = SEARCH) -> SearchConfig:
    """The resolved :class:`SearchConfig` of ``search(...)`` (``job`` None when resuming)."""
    return options.to_config(space, proxy, tuner, job.condense.strategy if job else "none", job.device if job else "cpu")


def search(
    space: str = "convnet_small",
    proxy: str = "dm",
    tuner: str = "grid",
    on_report: Callable[[Report], None] | None = None,
    *,
    max_trials: int | None = SEARCH.max_trials,
    max_duration: str | None = SEARCH.max_duration,
    concurrency: int = SEARCH.concurrency,
    port: int = SEARCH.port,
    ui_host: str = SEARCH.ui_host,
    keep_ui: bool = SEARCH.keep_ui,
    epochs: int = SEARCH.epochs,
    full_epochs: int | None = SEARCH.full_epochs,
    proxy_seeds: int = SEARCH.proxy_seeds,
    proxy_draws: int = SEARCH.proxy_draws,
    full_seeds: int = SEARCH.full_seeds,
    recipe: Path | str | None = SEARCH.recipe,
    ground_truth: int | None = SEARCH.ground_truth,
    confirm: int = SEARCH.confirm,
    table: str | list[str] | None = SEARCH.table,
    test_split: bool = SEARCH.test_split,
    trial_seed: int = SEARCH.trial_seed,
    resume: str | None = SEARCH.resume,
    training_service: str = SEARCH.training_service,
    machines: Path | str | None = SEARCH.machines,
    workdir: Path | str | None = SEARCH.workdir,
    trials_per_gpu: int = SEARCH.trials_per_gpu,
    trial_mode: str = SEARCH.trial_mode,
    quiet: bool = SEARCH.quiet,
    progress: bool = False,
    **proxy_set: Any,
) -> SearchResult:
    """Run the NNI experiment as ``dmnas search`` does: score every candidate of ``space`` on the
    proxy, then (with ``ground_truth=N``) full-data training of an unbiased sample and the proxy's
    top picks, then the report. The keywords are the ``dmnas search`` flags (defaults:
    :data:`dmnas.nas.config.SEARCH`); ``proxy_set``: the ``dmnas condense`` options of the proxy set
    (``dataset``, ``ipc``, ``iterations``, ``device``, ... -- those of
    :func:`dmnas.condensation.job.proxy_job`). ``progress``: a condensation progress line on
    stderr (the CLI's)."""
    from dmnas.nas.config import SearchOptions
    from dmnas.nas.resume import resume_search
    from dmnas.nas.run import start_search
    from dmnas.nas.space import load_space as _load
    from dmnas.proxykinds import proxy_kind
    from dmnas.reporting.make import report_searches

    options = SearchOptions(
        max_trials=max_trials, max_duration=max_duration, concurrency=concurrency, port=port, ui_host=ui_host,
        keep_ui=keep_ui, epochs=epochs, full_epochs=full_epochs, proxy_seeds=proxy_seeds, proxy_draws=proxy_draws,
        full_seeds=full_seeds, recipe=recipe, ground_truth=ground_truth, confirm=confirm, table=table,
        test_split=test_split, trial_seed=trial_seed, resume=resume, training_service=training_service,
        machines=machines, workdir=workdir, trials_per_gpu=trials_per_gpu, trial_mode=trial_mode, quiet=quiet,
    )  # fmt: skip
    proxy_kind(proxy)  # an unknown proxy is refused with the valid names
    if not resume:
        _load(space)  # a mistyped space fails before anything about the proxy is said
    if proxy_set.get("embed_space") == "search":  # the space being searched embeds its own proxy set
        proxy_set = {**proxy_set, "embed_space": space}
    job = None if resume else condense_job(**{**proxy_set, "quiet": not progress})
    cfg = search_config(space, proxy, tuner, job, options)
    got: list[Report] = []

    def finished(search_id: str) -> None:
        got.append(report_searches([search_id], cfg.workdir))  # against the tables the search used
        (on_report or _log_report)(got[-1])

    search_id = resume_search(cfg, finished) if resume else start_search(cfg, job, finished)
    return search_result(cfg.workdir, search_id, got[-1] if got else None)


def _log_report(report: Report) -> None:
    logging.getLogger("dmnas").info("%s", report.to_markdown())


def search_result(workdir: Path, search_id: str, report: Report | None = None) -> SearchResult:
    """A finished search read back from its folder."""
    from dmnas.nas.folder import SearchFolder, load_search

    meta, results = load_search(workdir, search_id)
    rows = [
        ArchResult(t["record"]["arch"], float(t["record"]["score"]), float(t["record"].get("train_seconds", 0.0)),
                   t.get("trial_id"), t["record"])
        for t in results["trials"]
        if t.get("record")
    ]
    folder = SearchFolder(workdir, search_id)
    nni_ids = meta.nni_ids
    gt_results = folder.gt / "results.json"
    if gt_results.exists():
        nni_ids.append(json.loads(gt_results.read_text())["experiment"])
    return SearchResult(search_id, results.get("url", ""), folder.root, rows, report, nni_ids)


def report(
    *search_ids: str,
    table: str | list[str] | None = None,
    workdir: str | Path | None = None,
    full_epochs: int | None = None,
    confirm: int | None = None,
) -> Report:
    """Rank agreement of finished searches with full-data training, side by side (and pairwise).
    ``table``: a shipped table's name (``shipped``, ``heldout``), a folder, a list of them (pooled),
    or 'none'; default: the tables the first search used."""
    from dmnas.reporting.make import report_searches
    from dmnas.nas.config import default_workdir

    wd = Path(workdir).resolve() if workdir else default_workdir()
    return report_searches(list(search_ids), wd, full_epochs, table, confirm)
