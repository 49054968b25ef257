"""dmnas: condense a dataset with Distribution Matching, then search architectures on the proxy.

    import dmnas
    proxy = dmnas.condense("fashion_mnist")
    result = dmnas.search("convnet_bench48", ground_truth=0, concurrency=2)
    report = dmnas.report(result.id)
"""

from __future__ import annotations

from typing import Any

from dmnas.errors import DmnasError

__version__ = "0.1.0"

# Exported lazily (PEP 562): `import dmnas` must not import torch, or `dmnas --help` and every
# NNI trial start would pay for it before doing anything.
_EXPORTS = {
    "condense": "dmnas.api",
    "search": "dmnas.api",
    "report": "dmnas.api",
    "load_dataset": "dmnas.api",
    "create_model": "dmnas.api",
    "list_spaces": "dmnas.api",
    "load_space": "dmnas.api",
    "SearchResult": "dmnas.api",
    "ArchResult": "dmnas.api",
    "ProxySet": "dmnas.condensation.proxyset",
    "Report": "dmnas.reporting.report",
    "CondenseConfig": "dmnas.condensation.dm",
    "dm_loss": "dmnas.condensation.dm",
    "ConvNet": "dmnas.models",
    "ConvNetSpec": "dmnas.models",
    "build_convnet": "dmnas.models",
}
__all__ = [*_EXPORTS, "DmnasError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dmnas' has no attribute {name!r}")
