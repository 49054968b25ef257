"""The matching objectives of condensation: pure functions of embeddings, differentiable in the
synthetic ones (float64 finite-difference checks in ``tests/test_dm.py``).

- :func:`dm_loss`: DM's squared distance between class-mean embeddings (Zhao & Bilen, WACV 2023);
- :func:`mean_var_loss`: the mean and the per-dimension variance (the diagonal of the covariance);
- :func:`mmd_loss`: a Gaussian-kernel MMD per class (M3D, AAAI 2024), bandwidth by the median heuristic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from dmnas.util.registry import Registry


def dm_loss(real_means: torch.Tensor, syn_features: torch.Tensor, syn_groups: torch.Tensor) -> torch.Tensor:
    """Sum over classes of the squared distance between real and synthetic mean embeddings.

    ``real_means``: (C, D) class means of real embeddings (constants);
    ``syn_features``: (N, D) synthetic embeddings; ``syn_groups``: (N,) their class indices.
    """
    syn_means = segment_mean(syn_features, syn_groups, real_means.shape[0])
    return ((real_means - syn_means) ** 2).sum()


def mean_var_loss(
    real_means: torch.Tensor, real_sq_means: torch.Tensor, syn_features: torch.Tensor, syn_groups: torch.Tensor
) -> torch.Tensor:
    """DM's mean term plus the squared distance between the per-dimension variances of each class
    (``real_sq_means``: (C, D) class means of the squared real embeddings, constants)."""
    n = real_means.shape[0]
    syn_means = segment_mean(syn_features, syn_groups, n)
    syn_var = segment_mean(syn_features * syn_features, syn_groups, n) - syn_means**2
    real_var = real_sq_means - real_means**2
    return ((real_means - syn_means) ** 2).sum() + ((real_var - syn_var) ** 2).sum()


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidth: torch.Tensor) -> torch.Tensor:
    return torch.exp(-torch.cdist(a, b).pow(2) / (2 * bandwidth**2))


def median_bandwidth(real_features: torch.Tensor) -> torch.Tensor:
    """The median pairwise distance of the real embeddings (the usual MMD heuristic), a constant."""
    with torch.no_grad():
        d = torch.cdist(real_features, real_features)
        return d[d > 0].median().clamp_min(1e-6) if (d > 0).any() else torch.ones((), dtype=real_features.dtype)


def mmd_loss(
    real_features: torch.Tensor,
    real_groups: torch.Tensor,
    syn_features: torch.Tensor,
    syn_groups: torch.Tensor,
    n_classes: int,
    bandwidth: torch.Tensor,
) -> torch.Tensor:
    """Sum over classes of the squared Gaussian-kernel MMD between the real and synthetic embeddings
    of the class (biased estimate: mean kernel values, the real-real term a constant)."""
    total = syn_features.new_zeros(())
    for c in range(n_classes):
        r, s = real_features[real_groups == c], syn_features[syn_groups == c]
        with torch.no_grad():
            k_rr = gaussian_kernel(r, r, bandwidth).mean()
        total = total + k_rr - 2 * gaussian_kernel(r, s, bandwidth).mean() + gaussian_kernel(s, s, bandwidth).mean()
    return total


def segment_sum(x: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Row sums of ``x`` per group index, shape (n_groups, D)."""
    return torch.zeros(n_groups, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, groups, x)


def divide_by_counts(sums: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Turn per-group sums into means (groups must all be non-empty)."""
    return sums / torch.bincount(groups, minlength=sums.shape[0]).to(sums.dtype).unsqueeze(1)


def segment_mean(x: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Row means of ``x`` per group index (groups must all be non-empty)."""
    return divide_by_counts(segment_sum(x, groups, n_groups), groups)


@dataclass(frozen=True)
class RealEmbeddings:
    """What one iteration knows of the real images' embeddings: their class means, and the
    embeddings themselves (with their classes) when the matching needs more than the means."""

    means: torch.Tensor  # (C, D)
    features: torch.Tensor | None = None  # (N, D)
    groups: torch.Tensor | None = None  # (N,)


@dataclass(frozen=True)
class Matching:
    """One ``--match`` objective: whether it needs the real embeddings themselves (the means alone
    come from cheaper chunked sums), whether its loss is already scale-free across embedding
    networks (else an ``--embed-pool`` run rescales it), and the loss."""

    name: str
    needs_features: bool
    scale_free: bool
    loss: Callable[[RealEmbeddings, torch.Tensor, torch.Tensor, int], torch.Tensor]


MATCHINGS: Registry[Matching] = Registry("--match")


def _mean_var(real: RealEmbeddings, syn: torch.Tensor, syn_groups: torch.Tensor, n: int) -> torch.Tensor:
    assert real.features is not None and real.groups is not None
    sq = segment_mean(real.features * real.features, real.groups, n)
    return mean_var_loss(real.means, sq, syn, syn_groups)


def _mmd(real: RealEmbeddings, syn: torch.Tensor, syn_groups: torch.Tensor, n: int) -> torch.Tensor:
    assert real.features is not None and real.groups is not None
    return mmd_loss(real.features, real.groups, syn, syn_groups, n, median_bandwidth(real.features))


for _m in (
    Matching("mean", needs_features=False, scale_free=False, loss=lambda r, s, g, n: dm_loss(r.means, s, g)),
    Matching("mean_var", needs_features=True, scale_free=False, loss=_mean_var),
    # the kernel's median bandwidth already makes the MMD scale-free
    Matching("mmd", needs_features=True, scale_free=True, loss=_mmd),
):
    MATCHINGS.add(_m.name, _m)
