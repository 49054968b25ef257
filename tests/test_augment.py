import pytest
import torch

from dmnas.augment import KINDS, AugParams, apply_draw, default_strategy, parse_strategy, sample_draw
from dmnas.errors import DmnasError

ALL = tuple(KINDS)


def draw_for(kinds: tuple[str, ...], groups: int, seed: int = 0, one_kind: bool = False):
    return sample_draw(kinds, groups, torch.Generator().manual_seed(seed), (12, 12), one_kind=one_kind)


@pytest.mark.parametrize("kind", ALL)
def test_same_draw_gives_same_transform_on_both_batches(kind: str) -> None:
    """The siamese property: a class's real and synthetic images share one transform."""
    x = torch.randn(6, 3, 12, 12)
    draw = draw_for((kind,), groups=2)
    groups_a = torch.tensor([0, 0, 0, 1, 1, 1])
    out_a = apply_draw(x, groups_a, draw)
    # The same images in another batch (different order, different batch size) get the same transform.
    perm = torch.tensor([4, 1])
    out_b = apply_draw(x[perm], groups_a[perm], draw)
    torch.testing.assert_close(out_b, out_a[perm])


@pytest.mark.parametrize("kind", ALL)
def test_gradients_reach_the_pixels(kind: str) -> None:
    x = torch.randn(4, 3, 12, 12, requires_grad=True)
    out = apply_draw(x, torch.tensor([0, 0, 1, 1]), draw_for((kind,), groups=2))
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_each_group_gets_its_own_parameters_and_kinds_vary() -> None:
    draw = draw_for(ALL, groups=200, seed=1)
    assert len(set(draw.choice.tolist())) == len(ALL)  # every transform is picked for some group
    one = draw_for(ALL, groups=50, seed=1, one_kind=True)
    assert len(set(one.choice.tolist())) == 1


def test_same_seed_same_draw() -> None:
    a, b = draw_for(ALL, 5, seed=3), draw_for(ALL, 5, seed=3)
    x = torch.randn(5, 1, 12, 12)
    g = torch.arange(5)
    assert torch.equal(apply_draw(x, g, a), apply_draw(x, g, b))


def test_crop_is_a_zero_filled_shift() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    p = {"ty": torch.tensor([1]), "tx": torch.tensor([-1])}
    out = KINDS.get("crop").apply(x, p, AugParams(ratio_crop_pad=0.25))
    # out[i, j] = x[i + 1, j - 1], zero outside
    expected = torch.tensor([[0, 4, 5, 6], [0, 8, 9, 10], [0, 12, 13, 14], [0, 0, 0, 0]], dtype=torch.float)
    assert torch.equal(out[0, 0], expected)


def test_cutout_zeroes_a_square() -> None:
    x = torch.ones(1, 1, 8, 8)
    out = KINDS.get("cutout").apply(x, {"oy": torch.tensor([4]), "ox": torch.tensor([4])}, AugParams())
    assert int((out == 0).sum()) == 16 and out[0, 0, 2:6, 2:6].abs().sum() == 0


def test_strategy_parsing() -> None:
    assert parse_strategy("none") == ()
    assert parse_strategy("color_flip") == ("color", "flip")
    with pytest.raises(DmnasError, match="valid: color"):
        parse_strategy("color_blur")
    assert "flip" not in default_strategy("mnist") and "flip" in default_strategy("fashion_mnist")
