"""A stop request that cannot be lost.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives; if
that is inside a finalizer (urllib3 closing a pooled connection during garbage collection, for
one), Python prints "Exception ignored in ..." and the interrupt is gone: a `dmnas search` then
ignored its Ctrl-C and ran on (seen under load in CI). The CLI's handler therefore also records the
request, and long waits call :func:`check`, which raises it again.
"""

from __future__ import annotations

import signal
import threading

_REQUESTED = threading.Event()


def request_stop(signum: int, frame: object) -> None:
    """Signal handler: remember the request, then interrupt as Python's default handler does."""
    _REQUESTED.set()
    raise KeyboardInterrupt


def install(signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Route ``signals`` through :func:`request_stop` (main thread only); a signal the parent chose
    to ignore (`cmd &` in a script ignores SIGINT) stays ignored."""
    for sig in signals:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, request_stop)


def requested() -> bool:
    return _REQUESTED.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if a stop was requested (whether or not its first raise got through)."""
    if _REQUESTED.is_set():
        raise KeyboardInterrupt
