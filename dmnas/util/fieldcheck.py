"""Type checks of a config dataclass's fields, from its own annotations.

The CLI's argparse types every option, the Python API does not: ``dmnas.search(concurrency="2")``
or ``dmnas.condense(iterations=2.5)`` would otherwise reach NNI or the cache key. Each config calls
:func:`check_field_types` first in ``__post_init__``, so both entry points get the same one line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any

from dmnas.errors import DmnasError


def flag(name: str) -> str:
    """The CLI spelling of a config field (the API's keyword names are the same words)."""
    return "--" + name.replace("_", "-")


def _describe(tp: Any) -> str:
    return {int: "an integer", float: "a finite number", str: "a string", bool: "true or false", Path: "a path"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _accepts(tp: Any, value: Any) -> bool | None:
    """True/False for the simple types; None for what this check leaves to the config itself."""
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    if tp is Path:
        return isinstance(value, (str, os.PathLike))
    return None


def check_value(name: str, tp: Any, value: Any) -> None:
    """Raise DmnasError if ``value`` is not of annotation ``tp`` (``X | None`` and the simple types;
    others, such as nested configs and tuples, are checked by their own classes)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return
        simple = [o for o in options if o is not type(None)]
        verdicts = [_accepts(o, value) for o in simple]
        if any(v is None for v in verdicts) or any(verdicts):
            return
        raise DmnasError(f"{flag(name)} must be {' or '.join(map(_describe, simple))}, got {value!r}")
    verdict = _accepts(tp, value)
    if verdict is False:
        raise DmnasError(f"{flag(name)} must be {_describe(tp)}, got {value!r}")


def check_field_types(config: Any) -> None:
    """Check every field of the dataclass instance ``config`` against its annotation."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        check_value(f.name, hints.get(f.name, Any), getattr(config, f.name))
