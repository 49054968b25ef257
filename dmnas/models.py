"""The parametric ConvNet family shared by condensation (embedding nets) and search (candidates).

A network is described by a frozen :class:`ConvNetSpec`; behaviour is derived from the spec's
fields, never from name substrings. Blocks are ``conv3x3 -> norm -> act -> pool``, as in the
DC/DSA/DM papers' ConvNet, so that the grid of their NAS experiment is reproducible.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from dmnas.errors import DmnasError
from dmnas.util.registry import Registry

Shape = tuple[int, int, int]  # (channels, height, width) of a feature map

ACTIVATIONS: Registry[Callable[[], nn.Module]] = Registry("activation")
ACTIVATIONS.add("sigmoid", nn.Sigmoid)
ACTIVATIONS.add("relu", lambda: nn.ReLU(inplace=True))
ACTIVATIONS.add("leakyrelu", lambda: nn.LeakyReLU(negative_slope=0.01, inplace=True))

# Each norm factory receives the feature shape it normalises.
NORMS: Registry[Callable[[Shape], nn.Module]] = Registry("normalisation")
NORMS.add("none", lambda shape: nn.Identity())
NORMS.add("batchnorm", lambda shape: nn.BatchNorm2d(shape[0], affine=True))
NORMS.add("layernorm", lambda shape: nn.LayerNorm(list(shape), elementwise_affine=True))
# Instance norm as one group per channel (with affine), like the papers' ConvNet.
NORMS.add("instancenorm", lambda shape: nn.GroupNorm(shape[0], shape[0], affine=True))
NORMS.add("groupnorm", lambda shape: nn.GroupNorm(4, shape[0], affine=True))

POOLS: Registry[Callable[[], nn.Module]] = Registry("pooling")
POOLS.add("none", nn.Identity)
POOLS.add("maxpooling", lambda: nn.MaxPool2d(kernel_size=2, stride=2))
POOLS.add("avgpooling", lambda: nn.AvgPool2d(kernel_size=2, stride=2))

DEPTHS = (1, 2, 3, 4)


@dataclass(frozen=True)
class ConvNetSpec:
    """One architecture of the ConvNet family. Defaults are the DM paper's embedding network."""

    depth: int = 3
    width: int = 128
    act: str = "relu"
    norm: str = "instancenorm"
    pool: str = "avgpooling"

    def __post_init__(self) -> None:
        if self.depth not in DEPTHS:
            raise DmnasError(f"depth must be one of {list(DEPTHS)}, got {self.depth!r}")
        if not isinstance(self.width, int) or self.width < 1:
            raise DmnasError(f"width must be a positive integer, got {self.width!r}")
        if self.norm == "groupnorm" and self.width % 4:
            raise DmnasError(f"groupnorm uses 4 groups, so width must be a multiple of 4, got {self.width}")
        ACTIVATIONS.get(self.act)
        NORMS.get(self.norm)
        POOLS.get(self.pool)

    @property
    def name(self) -> str:
        return f"d{self.depth}_w{self.width}_{self.act}_{self.norm}_{self.pool}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, params: dict[str, object]) -> "ConvNetSpec":
        unknown = set(params) - set(cls.__dataclass_fields__)
        if unknown:
            raise DmnasError(
                f"unknown architecture key(s) {sorted(unknown)}; valid: {list(cls.__dataclass_fields__)}"
            )
        return cls(**params)  # type: ignore[arg-type]


def block_geometry(spec: ConvNetSpec, in_shape: Shape) -> tuple[list[tuple[int, Shape]], Shape]:
    """(conv padding, shape after the conv) of every block, and the final feature-map shape.

    Raises DmnasError when pooling would shrink the map below 1x1, so a search can reject such
    architectures before any trial starts.
    """
    blocks: list[tuple[int, Shape]] = []
    channels, height, width = in_shape
    for d in range(spec.depth):
        # Single-channel 28x28 inputs are padded to 32x32 by the first conv (as in the
        # papers' ConvNet), so depth 4 with pooling still leaves a 2x2 map.
        pad = 3 if channels == 1 and d == 0 else 1
        channels, height, width = spec.width, height + 2 * pad - 2, width + 2 * pad - 2
        blocks.append((pad, (channels, height, width)))
        if spec.pool != "none":
            if min(height, width) < 2:
                raise DmnasError(
                    f"{spec.name}: input {in_shape} is too small for {spec.depth} pooling layers"
                )
            height, width = height // 2, width // 2
    return blocks, (channels, height, width)


class ConvNet(nn.Module):
    """``depth`` blocks of conv3x3 -> norm -> act -> pool, then a linear classifier."""

    def __init__(self, spec: ConvNetSpec, in_shape: Shape, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        blocks, (channels, height, width) = block_geometry(spec, in_shape)
        layers: list[nn.Module] = []
        in_channels = in_shape[0]
        for pad, shape in blocks:
            layers.append(nn.Conv2d(in_channels, spec.width, kernel_size=3, padding=pad))
            layers.append(NORMS.get(spec.norm)(shape))
            layers.append(ACTIVATIONS.get(spec.act)())
            if spec.pool != "none":
                layers.append(POOLS.get(spec.pool)())
            in_channels = spec.width
        self.features = nn.Sequential(*layers)
        self.feature_dim = channels * height * width
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened features before the classifier: the space DM matches means in."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def build_convnet(
    spec: ConvNetSpec, in_shape: Shape, num_classes: int, generator: torch.Generator | None = None
) -> ConvNet:
    """Build a network whose initial weights depend only on ``generator`` (when given)."""
    if generator is None:
        return ConvNet(spec, in_shape, num_classes)
    # nn.init draws from the global RNG; fork it so that seeding here leaves callers' RNG alone.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConvNet(spec, in_shape, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def grid_specs(
    depths: tuple[int, ...] = DEPTHS,
    widths: tuple[int, ...] = (32, 64, 128, 256),
    acts: tuple[str, ...] | None = None,
    norms: tuple[str, ...] | None = None,
    pools: tuple[str, ...] | None = None,
) -> Iterator[ConvNetSpec]:
    """Every spec of the cartesian grid (the papers' 720-net grid by default)."""
    for d, w, a, n, p in itertools.product(
        depths, widths, acts or tuple(ACTIVATIONS), norms or tuple(NORMS), pools or tuple(POOLS)
    ):
        yield ConvNetSpec(depth=d, width=w, act=a, norm=n, pool=p)


def parse_arch(name: str) -> ConvNetSpec:
    """Inverse of :attr:`ConvNetSpec.name`: ``'d3_w128_relu_instancenorm_avgpooling'``."""
    parts = name.split("_")
    if len(parts) != 5 or not parts[0].startswith("d") or not parts[1].startswith("w"):
        raise DmnasError(
            f"architecture {name!r} is not of the form d<depth>_w<width>_<act>_<norm>_<pool>, "
            f"e.g. {ConvNetSpec().name}; activations: {', '.join(ACTIVATIONS)}; "
            f"norms: {', '.join(NORMS)}; pools: {', '.join(POOLS)}"
        )
    try:
        depth, width = int(parts[0][1:]), int(parts[1][1:])
    except ValueError:
        raise DmnasError(f"architecture {name!r}: depth and width must be integers") from None
    return ConvNetSpec(depth=depth, width=width, act=parts[2], norm=parts[3], pool=parts[4])
