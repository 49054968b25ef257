"""What every trial of one search shares (written once as JSON next to the experiment), and where
a trial runs: its device, its data folder, its CPU threads."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from dmnas.condensation.dm import DEFAULT_IPC
from dmnas.errors import DmnasError

@dataclass(frozen=True)
class TrialContext:
    """What every trial of one search shares; written once as JSON next to the experiment."""

    proxy: str
    data: dict[str, Any]
    data_dir: str | None
    recipe: dict[str, Any]
    device: str
    seed: int
    results_dir: str
    ground_truth_dir: str
    entry_key: str | None = None
    cache_dir: str | None = None
    ipc: int = DEFAULT_IPC  # images per class of a `random` proxy set (the search sets it: its --ipc)
    reports: int = 5  # intermediate results per trial
    threads: int = 0  # CPU threads per trial (0 = torch's default); oversubscribed OpenMP crawls
    seeds: int = 1  # a proxy score is the mean over seeds seed..seed+seeds-1
    # Independent draws of the proxy, each at `seeds` seeds (see draw_context); a DM proxy has
    # one set per draw: draw 0 is `entry_key`, draw d > 0 is draw_keys[d - 1].
    draws: int = 1
    draw_keys: tuple[str, ...] = ()
    early_images: int = 0  # image passes of an `early` trial: those of one DM-proxy trial
    zero_cost_batch: int = 128  # real images a zero-cost proxy scores on
    test_split: bool = False  # also score proxy trials on the test split (full-data trials always are)
    # Remote machines (NNI's remote service): paths above are relative to the uploaded trial folder,
    # the data root is the first of these that exists where the trial runs ("" = that machine's
    # default), the dataset must have this fingerprint, and `device` may be "auto".
    data_dirs: tuple[str, ...] = ()
    fingerprint: str | None = None
    trials_per_machine: int = 0  # > 0: share the machine's cores among this many trials

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> "TrialContext":
        raw = json.loads(path.read_text())
        for name in ("data_dirs", "draw_keys"):
            if name in raw:
                raw[name] = tuple(raw[name])
        return cls(**raw)


def draw_context(ctx: TrialContext, d: int) -> TrialContext:
    """The context of draw ``d`` alone: its own seeds (``seed + d * seeds`` onwards: what is random
    about the proxy -- the subset, the shuffle, the zero-cost init -- and the training) and, for a
    DM proxy, its own set. Draw 0 is the context itself, so ``--proxy-draws 1`` changes nothing."""
    if d == 0:
        return replace(ctx, draws=1, draw_keys=())
    key = ctx.draw_keys[d - 1] if ctx.draw_keys else ctx.entry_key
    return replace(ctx, seed=ctx.seed + d * max(1, ctx.seeds), entry_key=key, draws=1, draw_keys=())


def trial_device(ctx: TrialContext) -> torch.device:
    if ctx.device == "auto":  # a remote machine: its GPU (NNI sets CUDA_VISIBLE_DEVICES) or its CPU
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(ctx.device)


def trial_data_dir(ctx: TrialContext) -> Path | None:
    """Where this machine keeps the dataset: the context's own folder, or on a remote machine the
    first configured data root that exists here."""
    if not ctx.data_dirs:
        return Path(ctx.data_dir) if ctx.data_dir else None
    for root in ctx.data_dirs:
        if not root:
            return None  # this machine's default data folder
        if Path(root).is_dir():
            return Path(root)
    raise DmnasError(
        f"machine {socket.gethostname()}: none of the data roots {', '.join(ctx.data_dirs)} exists here; "
        "set this machine's data_root in the machines file"
    )


def trial_threads(ctx: TrialContext, device: torch.device) -> int:
    """CPU threads for this trial (0: leave torch's default)."""
    if ctx.trials_per_machine > 0 and device.type == "cpu":
        return max(1, (os.cpu_count() or 1) // ctx.trials_per_machine)
    return ctx.threads
