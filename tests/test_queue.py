"""IDM-style trained embedding networks (condensation/queue.py) in the DM loop."""

from dataclasses import replace

import pytest
import torch

from dmnas.condensation.dm import CondenseConfig, condense
from dmnas.condensation.queue import EmbedQueue, sgd_step
from dmnas.errors import DmnasError
from dmnas.models import ConvNetSpec, build_convnet

SPEC = ConvNetSpec(depth=1, width=8)
QUEUED = CondenseConfig(ipc=2, iterations=6, batch_real=8, strategy="none", embed=SPEC, embed_queue=2, embed_retire=3)


def test_sgd_step_lowers_the_cross_entropy_and_leaves_the_network_frozen() -> None:
    g = torch.Generator().manual_seed(0)
    net = build_convnet(SPEC, (1, 8, 8), 3, generator=g).requires_grad_(False)
    x, y = torch.randn(24, 1, 8, 8, generator=g), torch.arange(3).repeat(8)
    losses = [sgd_step(net, x, y, 0.1) for _ in range(20)]
    assert losses[-1] < 0.8 * losses[0]
    assert not any(p.requires_grad for p in net.parameters())


def test_the_queue_retires_a_network_after_its_steps() -> None:
    g = torch.Generator().manual_seed(0)
    q = EmbedQueue.fresh(lambda gen: build_convnet(SPEC, (1, 8, 8), 3, generator=gen).requires_grad_(False), 1, 2, g)
    x, y = torch.randn(6, 1, 8, 8, generator=g), torch.arange(3).repeat(2)
    first = q.draw(g)
    q.train_drawn(x, y, g)
    assert q.draw(g) is first and q.members[0].steps == 1
    q.train_drawn(x, y, g)  # second step: retired
    assert q.draw(g) is not first and q.members[0].steps == 0


def test_a_queued_run_differs_from_dm_and_is_keyed_apart(tiny_data) -> None:  # noqa: ANN001
    plain = replace(QUEUED, embed_queue=0)
    assert "embed_queue" not in plain.to_dict()  # earlier cache keys unchanged
    assert QUEUED.to_dict()["embed_queue"] == 2
    a, b = condense(tiny_data, QUEUED), condense(tiny_data, plain)
    assert all(torch.isfinite(torch.tensor(a.losses)))
    assert not torch.equal(a.images, b.images)
    assert len(a.embed_queue) == 2 and b.embed_queue is None


def test_a_resumed_queued_run_equals_an_uninterrupted_one(tiny_data) -> None:  # noqa: ANN001
    whole = condense(tiny_data, QUEUED)
    half = condense(tiny_data, replace(QUEUED, iterations=4))
    resumed = condense(tiny_data, QUEUED, resume=half)
    assert torch.equal(whole.images, resumed.images)
    assert whole.losses == resumed.losses


def test_bad_queue_settings_are_refused() -> None:
    with pytest.raises(DmnasError, match="--embed-queue"):
        CondenseConfig(embed_queue=-1)
    with pytest.raises(DmnasError, match="--embed-retire"):
        CondenseConfig(embed_queue=2, embed_retire=0)
    with pytest.raises(DmnasError, match="embedding pool"):
        CondenseConfig(embed_queue=2, embed_pool=(SPEC, ConvNetSpec()))
