"""What each proxy *is*, as one registered object: the properties the search, the trials, the ground
truth and the report read, instead of comparing its name as a string in each of them.

Light (no torch), so the CLI's ``--help`` lists the registered proxies at once. What a training
proxy trains on lives in :data:`dmnas.nas.trials.proxies.TRAINING_SETS`, a zero-cost score in
:data:`dmnas.nas.trials.zero_cost.ZERO_COST`; both are keyed by the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dmnas.util.registry import Registry

Detail = Callable[[Any], str]  # a search's SearchMeta -> the budget part of a report label


@dataclass(frozen=True)
class ProxyKind:
    name: str
    trains: bool  # trains each candidate (False: a score of the network at initialisation)
    needs_dm_set: bool = False  # a DM proxy set is condensed (or taken from the cache) first
    budgeted: bool = False  # trained for --epochs on a small set: a multi-fidelity tuner's budget
    recipe: str = "proxy"  # which recipe a trial trains with: "proxy" (--epochs), "full", "early"
    full_data: bool = False  # its scores are full-data results: they are ground truth, not a proxy
    detail: Detail = lambda meta: "at init"

    def label(self, meta: Any) -> str:
        """How a report names one search (a :class:`dmnas.nas.folder.SearchMeta`) with this proxy,
        e.g. ``dm ipc50 40ep x2 seeds (ab12cd34)``."""
        seeds, draws = meta.proxy_seeds, meta.proxy_draws
        return (
            f"{self.name} {self.detail(meta)}"
            + (f" x{seeds} seeds" if seeds > 1 else "")
            + (f" x{draws} draws" if draws > 1 else "")
            + f" ({meta.id})"
        )


PROXY_KINDS: Registry[ProxyKind] = Registry("proxy")


def _small_set(meta: Any) -> str:
    return f"ipc{meta.ipc} {meta.trial_epochs}ep"


for _kind in (
    ProxyKind("full", trains=True, recipe="full", full_data=True, detail=lambda m: f"{m.trial_epochs}ep"),
    ProxyKind("dm", trains=True, needs_dm_set=True, budgeted=True, detail=_small_set),
    ProxyKind("random", trains=True, budgeted=True, detail=_small_set),
    ProxyKind("early", trains=True, recipe="early", detail=lambda m: f"{m.early_images} img passes"),
    ProxyKind("synflow", trains=False),
    ProxyKind("naswot", trains=False),
    ProxyKind("params", trains=False, detail=lambda m: "count"),
):
    PROXY_KINDS.add(_kind.name, _kind)


def proxy_kind(name: str) -> ProxyKind:
    """The registered proxy ``name`` (DmnasError listing the valid ones otherwise)."""
    return PROXY_KINDS.get(name)


def proxy_names() -> list[str]:
    return PROXY_KINDS.names()


def budgeted_names() -> list[str]:
    return [n for n in PROXY_KINDS if PROXY_KINDS.get(n).budgeted]
