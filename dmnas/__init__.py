"""dmnas: condense a dataset with Distribution Matching, then search architectures on the proxy."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# Exported lazily (PEP 562): `import dmnas` must not import torch, or `dmnas --help` and every
# NNI trial start would pay for it before doing anything.
_EXPORTS = {
    "CondenseConfig": "dm",
    "condense": "dm",
    "dm_loss": "dm",
    "ConvNet": "models",
    "ConvNetSpec": "models",
    "build_convnet": "models",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'dmnas' has no attribute {name!r}")
