"""A Ctrl-C is never lost: one whose KeyboardInterrupt a finalizer swallowed is raised again."""

from __future__ import annotations

import gc
import signal
import subprocess
import sys

import pytest

from dmnas.util import interrupts


def sigint_as_ctrl_c() -> None:
    """A child's SIGINT acts as Ctrl-C even when the suite runs from a backgrounded shell, whose
    children inherit an ignored SIGINT that dmnas respects (test_an_ignored_signal_stays_ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_swallowed_interrupt_is_raised_again_at_the_next_check() -> None:
    code = """
import gc, os, signal, weakref
from dmnas.util import interrupts
interrupts.install()
class Holder: pass
h = Holder()
# a finalizer that is running when the signal arrives: Python prints "Exception ignored" and goes on
weakref.finalize(h, lambda: os.kill(os.getpid(), signal.SIGINT))
del h
gc.collect()
print("survived the swallowed interrupt", flush=True)
try:
    interrupts.check()
except KeyboardInterrupt:
    print("raised again", flush=True)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, preexec_fn=sigint_as_ctrl_c)
    assert "survived the swallowed interrupt" in out.stdout and "raised again" in out.stdout, out.stdout + out.stderr
    assert "Exception ignored" in out.stderr  # the first raise really was swallowed


def test_no_request_no_interrupt() -> None:
    gc.collect()
    interrupts.check()  # nothing requested in this process: does not raise
    assert not interrupts.requested()


def test_an_ignored_signal_stays_ignored() -> None:
    code = """
import signal
from dmnas.util import interrupts
signal.signal(signal.SIGINT, signal.SIG_IGN)
interrupts.install()
print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_cli_routes_both_signals(sig: signal.Signals) -> None:
    code = f"""
import signal
from dmnas.util import interrupts
interrupts.install()
print(signal.getsignal({int(sig)}) is interrupts.request_stop)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, preexec_fn=sigint_as_ctrl_c)
    assert out.stdout.strip() == "True"
