"""Differentiable siamese augmentation (DSA) as pure batch functions.

Augmentation parameters are sampled once into an immutable :class:`AugDraw` and then applied,
so the *same* draw can transform the real and the synthetic batch (the siamese property)
without reseeding any global RNG. A draw holds parameters per *group*: in distribution
matching a group is a class (all images of a class share one transform, real and synthetic
alike); when training a network each image is its own group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from dmnas.catalog import DEFAULT_STRATEGY
from dmnas.errors import DmnasError
from dmnas.util.registry import Registry


@dataclass(frozen=True)
class AugParams:
    """Magnitudes of each transform (the DSA paper's values)."""

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0  # degrees
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


@dataclass(frozen=True)
class AugKind:
    """How to sample one transform's parameters for ``n`` groups and how to apply them."""

    sample: Callable[[int, torch.Generator, AugParams, tuple[int, int]], dict[str, torch.Tensor]]
    apply: Callable[[torch.Tensor, dict[str, torch.Tensor], AugParams], torch.Tensor]


KINDS: Registry[AugKind] = Registry("augmentation")


def _u(n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen)


def _col(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


# --- colour: brightness, saturation and contrast in sequence
def _color_apply(x: torch.Tensor, p: dict[str, torch.Tensor], a: AugParams) -> torch.Tensor:
    x = x + (_col(p["b"]) - 0.5) * a.brightness
    m = x.mean(dim=1, keepdim=True)
    x = (x - m) * (_col(p["s"]) * a.saturation) + m
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * (_col(p["c"]) + a.contrast) + m


KINDS.add("color", AugKind(lambda n, g, a, hw: {"b": _u(n, g), "s": _u(n, g), "c": _u(n, g)}, _color_apply))


# --- crop: integer translation with zero fill (zero = dataset mean after normalisation)
def _crop_shift(hw: tuple[int, int], a: AugParams) -> tuple[int, int]:
    return int(hw[0] * a.ratio_crop_pad + 0.5), int(hw[1] * a.ratio_crop_pad + 0.5)


def _crop_sample(n: int, g: torch.Generator, a: AugParams, hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    sh, sw = _crop_shift(hw, a)
    return {
        "ty": torch.randint(-sh, sh + 1, (n,), generator=g),
        "tx": torch.randint(-sw, sw + 1, (n,), generator=g),
    }


def _crop_apply(x: torch.Tensor, p: dict[str, torch.Tensor], a: AugParams) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = _crop_shift((h, w), a)
    padded = F.pad(x, (sw, sw, sh, sh))
    rows = torch.arange(h, device=x.device).view(1, h) + p["ty"].view(-1, 1) + sh
    cols = torch.arange(w, device=x.device).view(1, w) + p["tx"].view(-1, 1) + sw
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # Advanced indexing moves the channel axis last: (n, h, w, c) -> (n, c, h, w).
    return padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)


KINDS.add("crop", AugKind(_crop_sample, _crop_apply))


# --- cutout: zero a square of side ratio*size centred at a random position (clipped at borders)
def _cutout_size(hw: tuple[int, int], a: AugParams) -> tuple[int, int]:
    return int(hw[0] * a.ratio_cutout + 0.5), int(hw[1] * a.ratio_cutout + 0.5)


def _cutout_sample(n: int, g: torch.Generator, a: AugParams, hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    ch, cw = _cutout_size(hw, a)
    return {
        "oy": torch.randint(0, hw[0] + (1 - ch % 2), (n,), generator=g),
        "ox": torch.randint(0, hw[1] + (1 - cw % 2), (n,), generator=g),
    }


def _cutout_apply(x: torch.Tensor, p: dict[str, torch.Tensor], a: AugParams) -> torch.Tensor:
    _, _, h, w = x.shape
    ch, cw = _cutout_size((h, w), a)
    r = torch.arange(h, device=x.device).view(1, h) - (p["oy"].view(-1, 1) - ch // 2)
    c = torch.arange(w, device=x.device).view(1, w) - (p["ox"].view(-1, 1) - cw // 2)
    inside = ((r >= 0) & (r < ch)).unsqueeze(2) & ((c >= 0) & (c < cw)).unsqueeze(1)
    return x * (~inside).unsqueeze(1).to(x.dtype)


KINDS.add("cutout", AugKind(_cutout_sample, _cutout_apply))


# --- horizontal flip
KINDS.add(
    "flip",
    AugKind(
        lambda n, g, a, hw: {"f": _u(n, g)},
        lambda x, p, a: torch.where(_col(p["f"]) < a.prob_flip, x.flip(3), x),
    ),
)


# --- scale and rotate: affine resampling
def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def _scale_sample(n: int, g: torch.Generator, a: AugParams, hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    lo, hi = 1.0 / a.ratio_scale, a.ratio_scale
    return {"sx": _u(n, g) * (hi - lo) + lo, "sy": _u(n, g) * (hi - lo) + lo}


def _scale_apply(x: torch.Tensor, p: dict[str, torch.Tensor], a: AugParams) -> torch.Tensor:
    zero = torch.zeros_like(p["sx"])
    theta = torch.stack([torch.stack([p["sx"], zero, zero], 1), torch.stack([zero, p["sy"], zero], 1)], 1)
    return _affine(x, theta)


KINDS.add("scale", AugKind(_scale_sample, _scale_apply))


def _rotate_apply(x: torch.Tensor, p: dict[str, torch.Tensor], a: AugParams) -> torch.Tensor:
    cos, sin, zero = torch.cos(p["t"]), torch.sin(p["t"]), torch.zeros_like(p["t"])
    theta = torch.stack([torch.stack([cos, sin, zero], 1), torch.stack([-sin, cos, zero], 1)], 1)
    return _affine(x, theta)


KINDS.add(
    "rotate",
    AugKind(
        lambda n, g, a, hw: {"t": (_u(n, g) - 0.5) * 2 * a.ratio_rotate / 180 * math.pi},
        _rotate_apply,
    ),
)



def parse_strategy(strategy: str) -> tuple[str, ...]:
    """``'color_crop_flip'`` -> ``('color', 'crop', 'flip')``; ``'none'`` -> ``()``."""
    if strategy.lower() in ("", "none"):
        return ()
    kinds = tuple(strategy.split("_"))
    for k in kinds:
        KINDS.get(k)
    if len(set(kinds)) != len(kinds):
        raise DmnasError(f"augmentation strategy {strategy!r} repeats a transform")
    return kinds


def default_strategy(dataset_name: str) -> str:
    """Flip is off by default for digits (a mirrored digit is another symbol or none)."""
    from dmnas.data import FLIP_UNSAFE

    if dataset_name in FLIP_UNSAFE:
        return DEFAULT_STRATEGY.replace("_flip", "")
    return DEFAULT_STRATEGY


@dataclass(frozen=True)
class AugDraw:
    """One sampled augmentation: for each group, which transform and its parameters."""

    kinds: tuple[str, ...]
    choice: torch.Tensor  # (G,) index into ``kinds`` per group
    values: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # kind -> name -> (G,)
    params: AugParams = AugParams()


def sample_draw(
    kinds: tuple[str, ...],
    n_groups: int,
    generator: torch.Generator,
    image_hw: tuple[int, int],
    params: AugParams = AugParams(),
    one_kind: bool = False,
    device: torch.device | str = "cpu",
) -> AugDraw:
    """Sample parameters for ``n_groups`` groups on the CPU generator, then move them to ``device``.

    Like DSA's single mode, each group gets one transform picked uniformly from ``kinds``
    (``one_kind`` picks one for all groups, as DSA does for a training batch).
    """
    if not kinds:
        return AugDraw((), torch.zeros(0, dtype=torch.long), {}, params)
    if one_kind:
        choice = torch.randint(0, len(kinds), (1,), generator=generator).expand(n_groups)
    else:
        choice = torch.randint(0, len(kinds), (n_groups,), generator=generator)
    values = {
        k: {
            name: v.to(device)
            for name, v in KINDS.get(k).sample(n_groups, generator, params, image_hw).items()
        }
        for k in kinds
    }
    return AugDraw(kinds, choice.to(device), values, params)


def apply_draw(x: torch.Tensor, groups: torch.Tensor, draw: AugDraw) -> torch.Tensor:
    """Transform each row of ``x`` with the parameters of its group (``groups[i]``)."""
    if not draw.kinds:
        return x
    row_choice = draw.choice[groups]
    for i, kind in enumerate(draw.kinds):
        rows = torch.nonzero(row_choice == i).flatten()
        if rows.numel() == 0:
            continue
        group_of_row = groups[rows]
        p = {name: v[group_of_row] for name, v in draw.values[kind].items()}
        if rows.numel() == x.shape[0]:
            x = KINDS.get(kind).apply(x, p, draw.params)
        else:
            # index_copy is out of place and differentiable, so gradients reach every row.
            x = x.index_copy(0, rows, KINDS.get(kind).apply(x[rows], p, draw.params))
    return x
