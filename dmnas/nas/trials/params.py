"""What NNI hands a trial, as dmnas reads it: parameters -> architecture spec (and seed, budget)."""

from __future__ import annotations

from typing import Any

from dmnas.errors import DmnasError
from dmnas.models import ConvNetSpec, parse_arch
from dmnas.nas.space import DEFAULTS

BUDGET_KEY = "TRIAL_BUDGET"  # what NNI's Hyperband adds to a trial's parameters


def budget_epochs(budget: object, full_epochs: int) -> int:
    """A Hyperband budget (proxy epochs, up to the full recipe's) as whole epochs."""
    try:
        epochs = round(float(budget))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DmnasError(f"trial budget {budget!r} is not a number") from None
    return max(1, min(full_epochs, epochs))



def parse_job(job: str) -> tuple[str, int]:
    """``'<arch>/seed<k>'``: one full-data training of the ground-truth experiment."""
    arch, sep, seed = job.rpartition("/seed")
    if not sep or not seed.isdigit():
        raise DmnasError(f"trial job {job!r} is not of the form <arch>/seed<k>")
    return arch, int(seed)


def job_name(arch: str, seed: int) -> str:
    return f"{arch}/seed{seed}"


def spec_from_params(params: dict[str, Any]) -> tuple[ConvNetSpec, int | None]:
    """NNI parameters -> (spec, seed or None for the context's): the five fields (defaults fill
    gaps), ``{'arch': name}`` or ``{'job': '<arch>/seed<k>'}``. No parameters at all means NNI
    gave this trial nothing to do: training the default network then would be a silent lie."""
    if not params:
        raise DmnasError("the trial received no parameters (was it started outside an NNI experiment?)")
    if "job" in params:
        arch, seed = parse_job(str(params["job"]))
        return parse_arch(arch), seed
    if "arch" in params:
        return parse_arch(str(params["arch"])), None
    return ConvNetSpec.from_dict({**DEFAULTS, **params}), None
