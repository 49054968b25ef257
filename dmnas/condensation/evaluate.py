"""Score a proxy set: train a fresh ConvNet on it several times and test on real data."""

from __future__ import annotations

import logging
import statistics
from dataclasses import asdict, dataclass

import torch

from dmnas.data import Dataset
from dmnas.models import ConvNetSpec, build_convnet
from dmnas.train import TrainRecipe, accuracy, train_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalResult:
    name: str
    spec: ConvNetSpec
    recipe: TrainRecipe
    accuracies: tuple[float, ...]
    images: int

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.update(mean=self.mean, std=self.std)
        return d

    def summary(self) -> str:
        return (
            f"{self.name}: {100 * self.mean:.2f} ± {100 * self.std:.2f} % test accuracy "
            f"({len(self.accuracies)} runs, {self.images} images)"
        )


def random_subset(data: Dataset, ipc: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` random real training images per class: the baseline every DC paper reports."""
    gen = torch.Generator().manual_seed(seed)
    picks = [idx[torch.randperm(len(idx), generator=gen)[:ipc]] for idx in data.class_indices()]
    chosen = torch.cat(picks)
    return data.train_x[chosen].clone(), data.train_y[chosen].clone()


def evaluate_images(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    data: Dataset,
    spec: ConvNetSpec,
    recipe: TrainRecipe,
    runs: int,
    seed: int,
    device: torch.device,
) -> EvalResult:
    """Train ``runs`` freshly initialised networks (seeds ``seed..seed+runs-1``); test accuracy of each."""
    accs = []
    for r in range(runs):
        gen = torch.Generator().manual_seed(seed + r)
        model = build_convnet(spec, data.image_shape, data.num_classes, generator=gen)
        train_model(model, images, labels, recipe, gen, device)
        accs.append(accuracy(model, data.test_x, data.test_y, device))
        log.info("%s run %d/%d: %.2f%%", name, r + 1, runs, 100 * accs[-1])
    return EvalResult(name, spec, recipe, tuple(accs), len(images))
