"""Zero-cost proxies: score an untrained network from one minibatch at initialisation.

The cheap baselines a training proxy must beat (``--proxy synflow`` / ``naswot``). Both are pure
functions of a freshly initialised model (and, for NASWOT, one batch of real images); neither
changes the model it is given.

- **synflow** (Tanaka et al. 2020, as a NAS proxy in Abdelfattah et al. 2021): with every
  parameter replaced by its absolute value, an all-ones input and R = sum of the outputs,
  score = Σ |θ · ∂R/∂θ| over the weights of convolutions and linear layers. Computed in float64
  (R grows like a product over layers). Normalisation layers are bypassed (identity): on a
  constant input they would divide by a near-zero spread, and Abdelfattah et al. likewise score a
  copy of the network without batchnorm. So synflow sees depth, width, pooling and activation,
  not the normalisation.
- **NASWOT** (Mellor et al. 2021): each input's binary code of active units over every activation
  layer, "active" meaning pre-activation > 0 (ReLU's definition, applied to sigmoid and leaky ReLU
  too); K[i, j] = number of units where inputs i and j agree; score = log |det K|. The network runs
  in training mode (batch statistics in batchnorm), as a freshly initialised network would train.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from dmnas.models import ACTIVATIONS, NORMS, count_parameters
from dmnas.util.registry import Registry

ZeroCostScore = Callable[[nn.Module, torch.Tensor], float]
ZERO_COST: Registry[ZeroCostScore] = Registry("zero-cost proxy")

NORM_TYPES = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
ACT_TYPES = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid)
assert set(NORMS) == {"none", "batchnorm", "layernorm", "instancenorm", "groupnorm"}, "update NORM_TYPES"
assert set(ACTIVATIONS) == {"sigmoid", "relu", "leakyrelu"}, "update ACT_TYPES"


def _without_norms(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model)
    for module in list(clone.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, NORM_TYPES):
                setattr(module, child_name, nn.Identity())
    return clone


@ZERO_COST.register("synflow")
def synflow(model: nn.Module, batch: torch.Tensor) -> float:
    """Synaptic flow of ``model`` (only ``batch``'s shape is used)."""
    net = _without_norms(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *batch.shape[1:]), dtype=torch.float64, device=batch.device)
    net(ones).sum().backward()
    score = 0.0
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None:
            score += float((m.weight * m.weight.grad).abs().sum().detach())
    return score


@ZERO_COST.register("naswot")
def naswot(model: nn.Module, batch: torch.Tensor) -> float:
    """log |det K| of the activation-pattern agreement kernel over ``batch``."""
    net = copy.deepcopy(model).train()
    codes: list[torch.Tensor] = []

    def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        # A pre-hook sees the pre-activation before an in-place ReLU overwrites it.
        codes.append((inputs[0] > 0).flatten(1).to(torch.float64))

    hooks = [m.register_forward_pre_hook(record) for m in net.modules() if isinstance(m, ACT_TYPES)]
    try:
        with torch.no_grad():
            net(batch)
    finally:
        for h in hooks:
            h.remove()
    if not codes:
        return float("nan")
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(k)
    return float(logdet) if float(sign) > 0 else -math.inf


@ZERO_COST.register("params")
def params(model: nn.Module, batch: torch.Tensor) -> float:
    """The number of parameters (all trainable in a fresh network), as the report's baseline line
    counts them (:func:`dmnas.models.count_parameters`): the cheapest baseline of all. On the 20 best
    architectures of the tables it orders the 2-epoch truth at Spearman 0.89, above every trained
    proxy there (benchmarks/results/proxy_frontier.md): a proxy that does not beat it has learnt
    nothing but the network's size."""
    return float(count_parameters(model))


def rankable(score: float) -> float:
    """A finite float for NNI and JSON, in the same order: -inf (singular kernel) and NaN sink
    to the bottom, +inf stays above every finite score."""
    if math.isnan(score) or score == -math.inf:
        return -1e300
    return min(score, 1e300)
