"""Trained embedding networks for DM (after IDM, Zhao et al., CVPR 2023).

Plain DM matches class means under a freshly initialised network every iteration: features of
an untrained network describe texture and contrast more than the class. IDM keeps a queue of
networks that learn a little on real data as condensation goes on. This implementation (its own
design, not IDM's code): ``size`` networks of the embedding spec, one drawn at random per
iteration; after the DM step the drawn network takes one SGD step of cross-entropy on a random
real batch; a network that has taken ``retire`` steps is replaced by a fresh one, so the queue
always holds networks from untrained to briefly trained. Every draw comes from the run's own
generator and the queue is part of the checkpoint, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


# One SGD step per use, on about this many real images (an equal share per class), at this learning rate
# (plain SGD: the checkpoint holds the weights and nothing else). How this scores on the tables is in
# benchmarks/results/condense_variants.md.
TRAIN_BATCH = 256
TRAIN_LR = 0.05


@dataclass
class QueuedNet:
    net: nn.Module
    steps: int = 0


NetFactory = Callable[[torch.Generator], nn.Module]  # a fresh, frozen embedding network on the run's device


class EmbedQueue:
    """Embedding networks trained one step per use, retired after ``retire`` steps."""

    def __init__(self, make: NetFactory, retire: int, members: list[QueuedNet]) -> None:
        self.make, self.retire, self.members = make, retire, members
        self._drawn: int | None = None

    @classmethod
    def fresh(cls, make: NetFactory, size: int, retire: int, gen: torch.Generator) -> "EmbedQueue":
        return cls(make, retire, [QueuedNet(make(gen)) for _ in range(size)])

    @classmethod
    def from_state(cls, make: NetFactory, retire: int, state: list[dict[str, object]]) -> "EmbedQueue":
        members = []
        for entry in state:
            # The throwaway generator only shapes the network; the stored weights replace its values.
            net = make(torch.Generator())
            net.load_state_dict(entry["weights"])  # type: ignore[arg-type]
            members.append(QueuedNet(net, int(entry["steps"])))  # type: ignore[arg-type]
        return cls(make, retire, members)

    def draw(self, gen: torch.Generator) -> nn.Module:
        """This iteration's embedding network (frozen: DM moves the pixels, not the network)."""
        self._drawn = int(torch.randint(len(self.members), (1,), generator=gen))
        return self.members[self._drawn].net

    def train_drawn(self, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> float:
        """One SGD step of the drawn network on ``images``; retires it (a fresh one from ``gen``) once
        it has taken ``retire`` steps. Returns the step's cross-entropy."""
        assert self._drawn is not None, "draw() first"
        member = self.members[self._drawn]
        loss = sgd_step(member.net, images, labels, TRAIN_LR)
        member.steps += 1
        if member.steps >= self.retire:
            self.members[self._drawn] = QueuedNet(self.make(gen))
        self._drawn = None
        return loss

    def state(self) -> list[dict[str, object]]:
        """The queue as CPU tensors, for the checkpoint."""
        return [
            {"weights": {k: v.detach().to("cpu", copy=True) for k, v in m.net.state_dict().items()}, "steps": m.steps}
            for m in self.members
        ]


def sgd_step(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, lr: float) -> float:
    """One plain SGD step of cross-entropy; the network is left frozen again."""
    params = list(net.parameters())
    for p in params:
        p.requires_grad_(True)
    try:
        loss = nn.functional.cross_entropy(net(images), labels)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p.sub_(lr * g)
    finally:
        for p in params:
            p.requires_grad_(False)
    return float(loss.detach())
