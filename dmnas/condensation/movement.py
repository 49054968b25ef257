"""How far a synthetic set moved from the real images it was initialised with.

A DM set that moved little is a random real subset in all but name; the manifest, ``dmnas condense``
and ``dmnas cache list`` say how far each set moved, so nobody mistakes one for the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from dmnas.condensation.dm import CondenseConfig, initial_images
from dmnas.data import Dataset


@dataclass(frozen=True)
class Movement:
    """How far a synthetic set moved from the images it was initialised with, in units of the
    dataset's per-channel pixel standard deviation (the images are normalised, so this is the mean
    absolute change of the stored tensors)."""

    moved_sd: float  # mean absolute change over every pixel of every image
    per_class_sd: list[float]
    median_relative_l2: float  # median over images of |final - init| / |init|

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def movement(data: Dataset, cfg: CondenseConfig, images: torch.Tensor) -> Movement:
    """Compare ``images`` with the initialisation that ``cfg`` draws (its seed makes it exact)."""
    init = initial_images(data, cfg, torch.Generator().manual_seed(cfg.seed))
    diff = (images.float() - init.float()).abs()
    groups = torch.arange(data.num_classes).repeat_interleave(cfg.ipc)
    per_image = diff.flatten(1).mean(1)
    per_class = [float(per_image[groups == c].mean()) for c in range(data.num_classes)]
    rel = (images.float() - init.float()).flatten(1).norm(dim=1) / init.float().flatten(1).norm(dim=1).clamp_min(1e-12)
    return Movement(float(diff.mean()), per_class, float(rel.median()))
