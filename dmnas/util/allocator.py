"""Keep freed activation memory in the process (glibc only).

A training step on the CPU allocates and frees activations of a few MB each; glibc serves blocks
that large with fresh ``mmap`` calls and returns them on free, so every step pays page faults and
zeroing again. Raising the mmap and trim thresholds keeps those blocks in the heap for reuse.
Changes no result (bitwise), only where memory comes from; what it saves per step is measured in
``benchmarks/results/train_step_profile.md``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for this setting on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds; False where there is no glibc (nothing changes)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("glibc mmap/trim thresholds raised: %s", ok)
    return ok
