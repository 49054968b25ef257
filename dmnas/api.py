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

import inspect
import logging
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from dmnas.errors import DmnasError

if TYPE_CHECKING:
    import torch

    from dmnas.condensation.proxyset import ProxyJob, ProxySet
    from dmnas.data import Dataset
    from dmnas.reporting.report import Report
    from dmnas.nas.config import SearchConfig
    from dmnas.nas.space import SearchSpace


def _split(options: dict[str, Any], fn: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options ``fn`` takes, and the rest."""
    names = set(inspect.signature(fn).parameters)
    return {k: v for k, v in options.items() if k in names}, {k: v for k, v in options.items() if k not in names}


def _refuse_unknown(rest: dict[str, Any], where: str) -> None:
    if rest:
        raise DmnasError(f"{where}() got unknown option(s) {', '.join(sorted(rest))}")


def condense_job(dataset: str = "fashion_mnist", **options: Any) -> ProxyJob:
    """The resolved :class:`ProxyJob` of ``condense(dataset, **options)`` (nothing runs)."""
    from dmnas.condensation.proxyset import proxy_job

    opts = {k: v for k, v in options.items() if v is not None}
    known, rest = _split(opts, proxy_job)
    _refuse_unknown(rest, "condense")
    return proxy_job(dataset, **known)


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
    from dmnas.nas.space import available_spaces

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


SEARCH_DEFAULTS: dict[str, Any] = {
    "max_trials": None, "max_duration": None, "concurrency": 1, "port": 8080, "ui_host": "127.0.0.1",
    "keep_ui": False, "epochs": None, "full_epochs": None, "proxy_seeds": 1, "full_seeds": 2, "recipe": None,
    "ground_truth": None, "confirm": None, "table": None, "test_split": False, "trial_seed": 0,
    "resume": None, "training_service": "local", "machines": None, "workdir": None, "trials_per_gpu": None,
    "trial_mode": "worker", "quiet": False,
}


def search_config(space: str, proxy: str, tuner: str, job: ProxyJob | None, **options: Any) -> SearchConfig:
    """The resolved :class:`SearchConfig` of ``search(...)`` (``job`` None when resuming)."""
    from dmnas.nas.config import CONFIRM, PROXY_EPOCHS, SearchConfig, default_workdir, recipes

    unknown = set(options) - set(SEARCH_DEFAULTS)
    _refuse_unknown({k: options[k] for k in unknown}, "search")
    o = {**SEARCH_DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    proxy_recipe, full_recipe = recipes(
        o["epochs"] if o["epochs"] is not None else PROXY_EPOCHS,
        o["full_epochs"],
        Path(o["recipe"]) if o["recipe"] else None,
        job.condense.strategy if job else "none",
        job.device if job else "cpu",
    )
    from dmnas.defaults import TRIALS_PER_GPU

    return SearchConfig(
        space=space,
        proxy=proxy,
        proxy_recipe=proxy_recipe,
        full_recipe=full_recipe,
        workdir=Path(o["workdir"]).resolve() if o["workdir"] else default_workdir(),
        tuner=tuner,
        max_trials=o["max_trials"],
        max_duration=o["max_duration"],
        concurrency=o["concurrency"],
        port=o["port"],
        ui_host=o["ui_host"],
        keep_ui=o["keep_ui"],
        proxy_seeds=o["proxy_seeds"],
        full_seeds=o["full_seeds"],
        ground_truth=o["ground_truth"],
        confirm=o["confirm"] if o["confirm"] is not None else CONFIRM,
        table=o["table"],
        test_split=o["test_split"],
        trial_seed=o["trial_seed"],
        quiet=o["quiet"],
        resume=o["resume"],
        training_service=o["training_service"],
        machines=Path(o["machines"]) if o["machines"] else None,
        trials_per_gpu=o["trials_per_gpu"] if o["trials_per_gpu"] is not None else TRIALS_PER_GPU,
        trial_mode=o["trial_mode"],
    )


def search(
    space: str = "convnet_small",
    proxy: str = "dm",
    tuner: str = "grid",
    on_report: Callable[[Report], None] | None = None,
    **options: Any,
) -> SearchResult:
    """Run the NNI experiment as ``dmnas search`` does: score every candidate of ``space`` on the
    proxy, then (with ``ground_truth=N``) full-data training of an unbiased sample and the proxy's
    top picks, then the report. Options: the ``dmnas search`` flags, and the ``condense`` options
    for the proxy set (``ipc``, ``iterations``, ``dataset``, ``device``, ...)."""
    from dmnas.nas.resume import resume_search
    from dmnas.nas.run import start_search
    from dmnas.reporting.make import report_searches
    from dmnas.nas.space import load_space as _load

    from dmnas.proxykinds import proxy_kind

    proxy_kind(proxy)  # an unknown proxy is refused with the valid names
    progress = bool(options.pop("progress", False))  # a condensation progress line on stderr (the CLI's)
    search_opts = {k: v for k, v in options.items() if k in SEARCH_DEFAULTS}
    condense_opts = {k: v for k, v in options.items() if k not in SEARCH_DEFAULTS}
    resume = search_opts.get("resume")
    if not resume:
        _load(space)  # a mistyped space fails before anything about the proxy is said
    job = None if resume else condense_job(**{**condense_opts, "quiet": not progress})
    cfg = search_config(space, proxy, tuner, job, **search_opts)
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
    from dmnas.nas.folder import load_search

    meta, results = load_search(workdir, search_id)
    rows = [
        ArchResult(t["record"]["arch"], float(t["record"]["score"]), float(t["record"].get("train_seconds", 0.0)),
                   t.get("trial_id"), t["record"])
        for t in results["trials"]
        if t.get("record")
    ]
    nni_ids = [search_id, *(r["nni_id"] for r in meta.get("resumed", []))]
    if (workdir / "searches" / search_id / "ground_truth" / "results.json").exists():
        nni_ids.append(json.loads((workdir / "searches" / search_id / "ground_truth" / "results.json").read_text())["experiment"])
    return SearchResult(search_id, results.get("url", ""), workdir / "searches" / search_id, rows, report, nni_ids)


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
