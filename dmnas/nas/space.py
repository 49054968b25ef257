"""Search spaces: NNI ``choice`` lists over :class:`ConvNetSpec` fields, loaded and validated."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dmnas.catalog import SPACES_DIR, available_spaces
from dmnas.errors import DmnasError
from dmnas.models import ACTIVATIONS, DEPTHS, NORMS, POOLS, ConvNetSpec, Shape, block_geometry, parse_arch


FIELDS = ("depth", "width", "act", "norm", "pool")
# A space may instead list architectures by name (e.g. the shipped ground-truth table's sample).
ARCH_KEY = "arch"
ALLOWED: dict[str, tuple[Any, ...] | None] = {
    "arch": None,
    "depth": DEPTHS,
    "width": None,
    "act": tuple(ACTIVATIONS),
    "norm": tuple(NORMS),
    "pool": tuple(POOLS),
}
DEFAULTS = ConvNetSpec().to_dict()


@dataclass(frozen=True)
class SearchSpace:
    name: str
    path: Path
    nni_space: dict[str, dict[str, Any]]  # exactly what NNI receives

    def specs(self) -> list[ConvNetSpec]:
        """Every architecture of the grid (or of the list); fields the space leaves out take the default."""
        if ARCH_KEY in self.nni_space:
            return [parse_arch(a) for a in self.nni_space[ARCH_KEY]["_value"]]
        keys = list(self.nni_space)
        values = [self.nni_space[k]["_value"] for k in keys]
        return [
            ConvNetSpec.from_dict({**DEFAULTS, **dict(zip(keys, combo, strict=True))})
            for combo in itertools.product(*values)
        ]

    @property
    def size(self) -> int:
        n = 1
        for entry in self.nni_space.values():
            n *= len(entry["_value"])
        return n


def check_fits(space: SearchSpace, image_shape: Shape) -> None:
    """Reject a space whose architectures cannot all run on the dataset's images, before NNI
    starts: otherwise each of them would become a failed trial."""
    unfit = []
    for spec in space.specs():
        try:
            block_geometry(spec, image_shape)
        except DmnasError:
            unfit.append(spec.name)
    if unfit:
        raise DmnasError(
            f"{len(unfit)} of the {space.size} architectures of {space.name} pool {tuple(image_shape)} images "
            f"below 1x1 (e.g. {unfit[0]}); drop their depth or pooling values from {space.path}"
        )


def resolve_space_path(name_or_path: str, folder: Path = SPACES_DIR) -> Path:
    """``NAME`` looks in ``search_spaces/``; anything with a slash or suffix is a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml", ".json") or "/" in name_or_path:
        if candidate.is_dir():
            raise DmnasError(f"search space {candidate} is a folder; give a YAML/JSON file or a name")
        if not candidate.is_file():
            raise DmnasError(f"search space file {candidate} does not exist")
        return candidate
    path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        raise DmnasError(
            f"unknown search space {name_or_path!r}; available: {', '.join(available_spaces(folder))} (or a file path)"
        )
    return path


def validate(raw: object, source: str) -> dict[str, dict[str, Any]]:
    """Check an NNI search space against the ConvNet family; name the offending entry."""
    if not isinstance(raw, dict) or not raw:
        raise DmnasError(
            f"{source}: a search space is a mapping of {', '.join(FIELDS)} to choice lists "
            f"(or of {ARCH_KEY!r} to a choice list of architecture names)"
        )
    if ARCH_KEY in raw and len(raw) > 1:
        raise DmnasError(
            f"{source}: {ARCH_KEY!r} lists whole architectures and cannot be combined with {sorted(set(raw) - {ARCH_KEY})}"
        )
    space: dict[str, dict[str, Any]] = {}
    for key, entry in raw.items():
        if key not in (*FIELDS, ARCH_KEY):
            raise DmnasError(
                f"{source}: unknown key {key!r}; valid: {', '.join(FIELDS)} (or {ARCH_KEY} alone)"
            )
        if (
            not isinstance(entry, dict)
            or entry.get("_type") != "choice"
            or not isinstance(entry.get("_value"), list)
            or not entry["_value"]
        ):
            raise DmnasError(
                f"{source}: {key} must be {{_type: choice, _value: [...]}} with a non-empty list"
            )
        values = entry["_value"]
        allowed = ALLOWED[key]
        for v in values:
            if key == ARCH_KEY:
                try:
                    parse_arch(str(v))
                except DmnasError as err:
                    raise DmnasError(f"{source}: {err}") from None
            elif key == "width":
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise DmnasError(f"{source}: width value {v!r} is not a positive integer")
            elif v not in allowed:  # type: ignore[operator]
                raise DmnasError(
                    f"{source}: {key} value {v!r} is unknown; valid: {', '.join(map(str, allowed))}"
                )  # type: ignore[arg-type]
        if len(set(map(str, values))) != len(values):
            raise DmnasError(f"{source}: {key} lists a value twice")
        space[key] = {"_type": "choice", "_value": list(values)}
    return space


def load_space(name_or_path: str, folder: Path = SPACES_DIR) -> SearchSpace:
    path = resolve_space_path(name_or_path, folder)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise DmnasError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    space = SearchSpace(path.stem, path.resolve(), validate(raw, str(path)))
    space.specs()  # building every spec rejects bad combinations, e.g. groupnorm with width 6
    return space
