"""What one search is: :class:`SearchConfig`, its training recipes and the checks made before anything runs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from dmnas.defaults import FULL_EPOCHS, TRIALS_PER_GPU, kind
from dmnas.errors import DmnasError
from dmnas.util.fieldcheck import check_field_types
from dmnas.proxykinds import budgeted_names, proxy_kind
from dmnas.recipe import TrainRecipe

# 40 epochs on IPC 50 x 10 classes = 20 000 image passes per candidate, as 200 epochs on IPC 10 were;
# see DEFAULT_IPC in dmnas/catalog.py for why the images per class changed rather than the passes.
PROXY_EPOCHS = 40
# The full-data recipe of the shipped tables; its epochs per device come from dmnas.defaults.
FULL_RECIPE = TrainRecipe(epochs=FULL_EPOCHS["cpu"], schedule="cosine", strategy="none")
CONFIRM = 3
TRAINING_SERVICES = ("local", "remote")  # NNI's: this machine, or other machines over SSH
UI_HOST = "127.0.0.1"  # the web UI and NNI's REST API answer only on this machine unless --ui-host says otherwise
# NNI's own clients (dmnas's calls, the trials, the tuner) reach the manager at localhost, so it can
# listen on the loopback address or on every interface, not on one other address alone.
UI_HOSTS = ("127.0.0.1", "0.0.0.0")
# NNI's duration syntax: a number and a unit (seconds, minutes, hours, days).
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def default_workdir() -> Path:
    return Path(os.environ.get("DMNAS_WORKDIR") or "experiments").resolve()


def check_recipe(recipe: TrainRecipe, where: str) -> None:
    """Values a training cannot start with, refused before NNI starts every trial only to fail."""
    for name, value, ok, want in (
        ("epochs", recipe.epochs, recipe.epochs >= 1, "a positive integer"),
        ("lr", recipe.lr, recipe.lr > 0, "positive"),
        ("batch_size", recipe.batch_size, recipe.batch_size >= 1, "a positive integer"),
        ("weight_decay", recipe.weight_decay, recipe.weight_decay >= 0, ">= 0"),
        ("momentum", recipe.momentum, 0 <= recipe.momentum < 1, "in [0, 1)"),
    ):
        if not ok:
            raise DmnasError(f"{where}: {name} must be {want}, got {value}")


def _recipe_section(raw: Any, section: str, source: Path) -> dict[str, Any]:
    value = raw.get(section) or {}
    if not isinstance(value, dict):
        raise DmnasError(f"recipe file {source}: '{section}' must be a mapping of TrainRecipe fields")
    fields = set(TrainRecipe.__dataclass_fields__)
    bad = set(value) - fields
    if bad:
        raise DmnasError(
            f"recipe file {source}: unknown key(s) {sorted(bad)} in {section}; valid: {', '.join(sorted(fields))}"
        )
    return value


def recipes(
    epochs: int, full_epochs: int | None, recipe_file: Path | None, strategy: str, device: str = "cpu"
) -> tuple[TrainRecipe, TrainRecipe]:
    """The proxy and full-data training recipes: defaults, then a recipe file's overrides, checked."""
    proxy = TrainRecipe(epochs=epochs, strategy=strategy)
    full = replace(FULL_RECIPE, epochs=full_epochs if full_epochs is not None else FULL_EPOCHS[kind(device)])
    where = {"proxy": "--epochs", "full": "--full-epochs"}
    if recipe_file is not None:
        path = Path(recipe_file)
        if not path.is_file():
            raise DmnasError(f"recipe file {path} {'is a folder' if path.is_dir() else 'does not exist'}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise DmnasError(f"recipe file {path} is not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
        except OSError as err:
            raise DmnasError(f"cannot read recipe file {path}: {err.strerror}") from None
        if not isinstance(raw, dict):
            raise DmnasError(f"recipe file {path}: expected 'proxy:' and/or 'full:' sections")
        unknown = set(raw) - {"proxy", "full"}
        if unknown:
            raise DmnasError(f"recipe file {path}: unknown section(s) {sorted(unknown)}; valid: proxy, full")
        try:
            proxy = replace(proxy, **_recipe_section(raw, "proxy", path))
            full = replace(full, **_recipe_section(raw, "full", path))
        except (TypeError, DmnasError) as err:
            raise DmnasError(f"recipe file {path}: {err}") from None
        where = {"proxy": f"recipe file {path}, proxy", "full": f"recipe file {path}, full"}
    check_recipe(proxy, where["proxy"])
    check_recipe(full, where["full"])
    return proxy, full


def duration_seconds(text: str) -> float:
    """NNI's duration syntax in seconds (``30m`` -> 1800.0); the text must have passed check_duration."""
    m = DURATION.match(str(text))
    assert m is not None, text
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def check_duration(text: str | None) -> None:
    if text is not None:
        m = DURATION.match(str(text))
        if not m or float(m.group(1)) <= 0:
            raise DmnasError(f"--max-duration must be a positive number with a unit s, m, h or d (e.g. 30m), got {text!r}")


@dataclass(frozen=True)
class SearchOptions:
    """What a user chooses for a search, with the one set of defaults that ``dmnas search --help``
    shows and ``dmnas.search()``'s signature reads; :meth:`to_config` resolves it into the
    :class:`SearchConfig` that runs (recipes built, the workdir made absolute, None made default)."""

    max_trials: int | None = None
    max_duration: str | None = None
    concurrency: int = 1
    port: int = 8080
    ui_host: str = UI_HOST
    keep_ui: bool = False
    epochs: int = PROXY_EPOCHS
    full_epochs: int | None = None  # None: the device's (dmnas.defaults.FULL_EPOCHS)
    proxy_seeds: int = 1
    proxy_draws: int = 1
    full_seeds: int = 2
    recipe: Path | str | None = None
    ground_truth: int | None = None
    confirm: int = CONFIRM
    table: str | list[str] | None = None
    test_split: bool = False
    trial_seed: int = 0
    resume: str | None = None
    training_service: str = "local"
    machines: Path | str | None = None
    workdir: Path | str | None = None  # None: $DMNAS_WORKDIR or ./experiments
    trials_per_gpu: int = TRIALS_PER_GPU
    trial_mode: str = "worker"
    quiet: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)  # before the recipes are built from them

    def to_config(self, space: str, proxy: str, tuner: str, strategy: str = "none", device: str = "cpu") -> SearchConfig:
        """The search these options ask for; ``strategy`` and ``device`` are the proxy set's (its
        augmentation trains the proxy, its device picks the full-data epochs)."""
        proxy_recipe, full_recipe = recipes(
            self.epochs, self.full_epochs, Path(self.recipe) if self.recipe else None, strategy, device
        )
        same = {f: getattr(self, f) for f in SearchConfig.__dataclass_fields__ if f in self.__dataclass_fields__}
        return SearchConfig(
            **{**same, "workdir": Path(self.workdir).resolve() if self.workdir else default_workdir(),
               "machines": Path(self.machines) if self.machines else None},  # fmt: skip
            space=space, proxy=proxy, tuner=tuner, proxy_recipe=proxy_recipe, full_recipe=full_recipe,
        )  # fmt: skip


@dataclass(frozen=True)
class SearchConfig:
    """One ``dmnas search``: what to search, how, and what ground truth to add afterwards."""

    space: str
    proxy: str
    proxy_recipe: TrainRecipe
    full_recipe: TrainRecipe
    workdir: Path
    tuner: str = "grid"
    max_trials: int | None = SearchOptions.max_trials
    max_duration: str | None = SearchOptions.max_duration
    concurrency: int = SearchOptions.concurrency
    port: int = SearchOptions.port
    ui_host: str = SearchOptions.ui_host
    keep_ui: bool = SearchOptions.keep_ui
    proxy_seeds: int = SearchOptions.proxy_seeds
    # Independent draws of the proxy (its set, subset, shuffle or init, and its training seeds),
    # each scored in full: the report gives every measure's mean and spread over them.
    proxy_draws: int = SearchOptions.proxy_draws
    full_seeds: int = SearchOptions.full_seeds
    ground_truth: int | None = SearchOptions.ground_truth
    confirm: int = SearchOptions.confirm
    table: str | list[str] | None = SearchOptions.table
    test_split: bool = SearchOptions.test_split
    trial_seed: int = SearchOptions.trial_seed
    quiet: bool = SearchOptions.quiet
    resume: str | None = SearchOptions.resume  # id of an interrupted search to continue
    training_service: str = SearchOptions.training_service  # or "remote": NNI's SSH training service over `machines`
    machines: Path | None = SearchOptions.machines  # machines.yaml (see dmnas.nas.remote)
    trials_per_gpu: int = SearchOptions.trials_per_gpu  # NNI's max_trial_number_per_gpu (one GPU shared by this many trials)
    trial_mode: str = SearchOptions.trial_mode  # "worker": warm workers score the trials; "process": one process per trial

    def __post_init__(self) -> None:
        check_field_types(self)
        self.check()  # in the config itself: the CLI and the Python API are refused alike

    def check(self) -> None:
        """Everything about the numbers that can be refused before anything runs."""
        for flag, value, least in (
            ("--concurrency", self.concurrency, 1),
            ("--ground-truth", self.ground_truth or 0, 0),
            ("--confirm", self.confirm, 0),
            ("--proxy-seeds", self.proxy_seeds, 1),
            ("--proxy-draws", self.proxy_draws, 1),
            ("--full-seeds", self.full_seeds, 1),
            ("--max-trials", 1 if self.max_trials is None else self.max_trials, 1),
            ("--trials-per-gpu", self.trials_per_gpu, 1),
        ):
            if value < least:
                raise DmnasError(f"{flag} must be >= {least}, got {value}")
        if not 1024 <= self.port <= 65535:
            raise DmnasError(f"--port must be between 1024 and 65535, got {self.port}")
        check_duration(self.max_duration)
        if self.ui_host not in UI_HOSTS:
            raise DmnasError(
                f"--ui-host must be 127.0.0.1 (this machine only) or 0.0.0.0 (every interface), got {self.ui_host!r}"
            )
        from dmnas.nas.trials.warm_workers import TRIAL_MODES

        if self.trial_mode not in TRIAL_MODES:
            raise DmnasError(f"unknown --trial-mode {self.trial_mode!r}; valid: {', '.join(TRIAL_MODES)}")
        if self.training_service not in TRAINING_SERVICES:
            raise DmnasError(
                f"unknown --training-service {self.training_service!r}; valid: {', '.join(TRAINING_SERVICES)}"
            )
        if (self.training_service == "remote") != (self.machines is not None):
            raise DmnasError("--training-service remote and --machines FILE go together")
        from dmnas.nas.tuners import TUNERS

        tuner = TUNERS.get(self.tuner)
        missing = tuner.missing()
        if missing:
            raise DmnasError(
                f"--tuner {self.tuner} needs {' and '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not installed: "
                f"pip install {' '.join(missing)} (or dmnas[{self.tuner}])"
            )
        if self.proxy_draws > 1 and proxy_kind(self.proxy).full_data:
            raise DmnasError(
                f"--proxy-draws applies to a proxy with its own randomness; --proxy {self.proxy} is the ground truth "
                "(its seeds are --full-seeds)"
            )
        if tuner.budgeted and not proxy_kind(self.proxy).budgeted:
            raise DmnasError(
                f"--tuner {self.tuner} gives trials a budget in proxy epochs; it needs --proxy "
                f"{' or '.join(budgeted_names())}, not {self.proxy}"
            )


SEARCH = SearchOptions()  # the defaults, read by the CLI's --help and dmnas.search()'s signature
