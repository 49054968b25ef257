"""Train and score a network on in-memory tensors: the one training loop of dmnas.

Used to evaluate a proxy set (the DM paper's protocol) and by every search trial. Data are
tensors; batches are index slices of a generator-driven permutation, so no DataLoader workers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from dmnas.defaults import EVAL_BATCH
from dmnas.augment import AugParams, apply_draw, parse_strategy, sample_draw
from dmnas.recipe import TrainRecipe
from dmnas.util.registry import Registry

log = logging.getLogger(__name__)

# Learning-rate schedules, stepped once per batch: (optimizer, epochs, batches per epoch) -> scheduler.
Scheduler = torch.optim.lr_scheduler.LRScheduler
SCHEDULES: Registry[Callable[[torch.optim.Optimizer, int, int], Scheduler]] = Registry("schedule")
# The DC/DSA/DM evaluation schedule: x0.1 once, after half the epochs.
SCHEDULES.add(
    "step",
    lambda opt, epochs, per_epoch: torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[(epochs // 2) * per_epoch], gamma=0.1
    ),
)
# Cosine to zero over every batch: a short full-data budget trains at a useful rate and still
# anneals at its end, so even a 1-epoch run ends as converged as its length allows.
SCHEDULES.add(
    "cosine",
    lambda opt, epochs, per_epoch: torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, epochs * per_epoch)
    ),
)


@dataclass(frozen=True)
class TrainResult:
    seconds: float
    final_loss: float
    steps: int


DEFAULT_AUG = AugParams()  # frozen: safe to share as a default
EpochCallback = Callable[[int, nn.Module], None]




def eval_batch(device: torch.device) -> int:
    return EVAL_BATCH["cuda" if device.type == "cuda" else "cpu"]


@torch.no_grad()
def accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch: int | None = None
) -> float:
    """Top-1 accuracy in eval mode (batchnorm uses running statistics)."""
    batch = batch or eval_batch(device)
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():  # no graph: evaluation is a large share of a short proxy trial
        for start in range(0, len(x), batch):
            xb = x[start : start + batch].to(device, non_blocking=True)
            correct += int((model(xb).argmax(1).cpu() == y[start : start + batch]).sum())
    model.train(was_training)
    return correct / max(1, len(x))


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: TrainRecipe,
    generator: torch.Generator,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    aug_params: AugParams = DEFAULT_AUG,
) -> TrainResult:
    """Train ``model`` in place on ``(x, y)``; ``on_epoch(epoch, model)`` after each epoch."""
    kinds = parse_strategy(recipe.strategy)
    model.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    sched = SCHEDULES.get(recipe.schedule)(opt, recipe.epochs, -(-len(x) // recipe.batch_size))
    loss_fn = nn.CrossEntropyLoss()
    n, steps, loss_value = len(x), 0, float("nan")
    t0 = time.perf_counter()
    for epoch in range(recipe.epochs):
        perm = torch.randperm(n, generator=generator).to(device)
        for start in range(0, n, recipe.batch_size):
            idx = perm[start : start + recipe.batch_size]
            xb, yb = x[idx], y[idx]
            if kinds:
                # Per-image parameters, one transform kind per batch (DSA's training mode).
                draw = sample_draw(
                    kinds, len(idx), generator, tuple(x.shape[2:]), aug_params, one_kind=True, device=device
                )
                xb = apply_draw(xb, torch.arange(len(idx), device=device), draw)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
        loss_value = float(loss.detach())
        if on_epoch is not None:
            on_epoch(epoch + 1, model)
    return TrainResult(time.perf_counter() - t0, loss_value, steps)
