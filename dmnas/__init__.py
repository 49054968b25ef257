"""dmnas: condense a dataset with Distribution Matching, then search architectures on the proxy."""

from __future__ import annotations

__version__ = "0.1.0"

from .dm import CondenseConfig, condense, dm_loss
from .models import ConvNet, ConvNetSpec, build_convnet

__all__ = ["CondenseConfig", "ConvNet", "ConvNetSpec", "build_convnet", "condense", "dm_loss", "__version__"]
