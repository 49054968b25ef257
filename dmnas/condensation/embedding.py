"""How DM embeds images: the embedding network through one compiled graph for every fresh
random network (:class:`Embedder`), the real images' class means and embeddings without an
autograd graph, in cache-sized chunks, and the precisions a run can use (the real branch in
bfloat16 with channels-last instance norms, :func:`bf16_copy`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call

from dmnas.condensation.losses import divide_by_counts, segment_mean, segment_sum

log = logging.getLogger(__name__)

# fp32; tf32 matmuls (CUDA); bf16 autocast of both branches; bf16-real: the real images' embedding
# (no gradient, most of the FLOPs) in bfloat16 weights and activations, its class means summed in
# fp32, the synthetic branch and its gradient in fp32 (benchmarks/results/condense_speed.md).
PRECISIONS = ("fp32", "tf32", "bf16", "bf16-real")
REAL_BF16 = "bf16-real"

class FastInstanceNorm(nn.Module):
    """``GroupNorm(C, C)`` (the family's instancenorm) computed by ``F.instance_norm``: the same
    function, but PyTorch's CPU group-norm kernel runs bfloat16 channels-last input about 20x slower
    than its instance-norm kernel (23 vs 1 ms on 16x128x28x28, measured on the 2-core AVX512-BF16
    VM), which made the bf16 real branch slower than fp32."""

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = norm.weight, norm.bias, norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        # instance_norm answers in NCHW; the pooling and convolution after it are fast on channels-last
        # input only (bf16 avg_pool2d: 0.1 ms channels-last vs 1.6 ms NCHW on 16x128x28x28)
        return y.contiguous(memory_format=torch.channels_last) if x.is_contiguous(memory_format=torch.channels_last) else y


def bf16_copy(net: nn.Module) -> nn.Module:
    """The same network in bfloat16 (weights and buffers), for a branch that needs no gradient; its
    instance norms run on the fast kernel (:class:`FastInstanceNorm`)."""
    out = copy.deepcopy(net).to(torch.bfloat16)
    for name, module in list(out.named_modules()):
        if isinstance(module, nn.GroupNorm) and module.num_groups == module.num_channels and module.affine:
            parent = out.get_submodule(name.rpartition(".")[0]) if "." in name else out
            setattr(parent, name.rpartition(".")[2], FastInstanceNorm(module))
    return out


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def tf32_matmuls(enabled: bool) -> Iterator[None]:
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def real_class_means(
    embed: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    groups: torch.Tensor,
    n_classes: int,
    chunk: int,
) -> torch.Tensor:
    """Per-class mean embedding of (already augmented) real images, without an autograd graph.

    Chunking bounds peak memory; it is exact for per-sample normalisations, and the caller
    passes ``chunk=0`` (one batch) for batchnorm, whose statistics mix the batch.
    """
    with torch.no_grad():
        if chunk <= 0 or chunk >= len(images):
            feats = embed(images).float()
            return segment_mean(feats, groups, n_classes)
        sums = sum(
            segment_sum(
                embed(images[start : start + chunk]).float(), groups[start : start + chunk], n_classes
            )
            for start in range(0, len(images), chunk)
        )
        return divide_by_counts(sums, groups)


def real_features(embed: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, chunk: int) -> torch.Tensor:
    """Embeddings of (already augmented) real images in fp32, without an autograd graph, in chunks of
    ``chunk`` images (0: one batch): for the losses that need more than the class means."""
    with torch.no_grad():
        if chunk <= 0 or chunk >= len(images):
            return embed(images).float()
        return torch.cat([embed(images[s : s + chunk]).float() for s in range(0, len(images), chunk)])


class Embedder:
    """Computes ``net.embed`` for every fresh network of one spec, optionally through one compiled graph.

    A new random network each iteration would make ``torch.compile`` recompile every time, so the
    compiled function takes the network's parameters as inputs (``functional_call`` on a template
    of the same spec). If compilation fails (no C++ compiler, unsupported op), it falls back to eager.
    Batchnorm mutates running statistics, so it always runs eagerly.
    """

    def __init__(self, template: nn.Module | None, compile: bool) -> None:
        self.fn: Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor] | None = None
        if compile and template is not None:
            features = template.features

            def embed(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
                return functional_call(features, params, (x,)).flatten(1)

            self.fn = torch.compile(embed, dynamic=False)

    def __call__(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.fn is None:
            return net.embed(x)
        try:
            return self.fn(dict(net.features.named_parameters()), x)
        except Exception as err:  # any compiler failure: same numbers, eagerly
            log.warning("torch.compile failed (%s); continuing without it", str(err).splitlines()[0][:200])
            self.fn = None
            return net.embed(x)
