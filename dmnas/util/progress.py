"""A dependency-free progress line for the terminal: iteration, loss and it/s."""

from __future__ import annotations

import sys
import time
from typing import TextIO


# Not tqdm: on a pipe or a log file (NNI trial logs, CI) tqdm still writes carriage-return
# redraws, which land as one ever-growing line or a flood of partial ones; this line prints a
# plain line every N steps there, redraws only on a TTY, and shows the DM loss without a postfix dict.
class ProgressBar:
    """Redraws one line on a TTY; on a pipe or log file prints a line every ``every`` steps."""

    def __init__(
        self, label: str, stream: TextIO = sys.stderr, every: int = 10, enabled: bool = True
    ) -> None:
        self.label, self.stream, self.every, self.enabled = label, stream, every, enabled
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.t0 = time.perf_counter()
        self.first: int | None = None

    def __call__(self, step: int, total: int, loss: float) -> None:
        if not self.enabled:
            return
        if self.first is None:
            # The rate is measured from the first report on, so start-up time is not counted.
            self.first, self.t0 = step, time.perf_counter()
        elapsed = time.perf_counter() - self.t0
        rate = (step - self.first) / elapsed if elapsed > 0 else 0.0
        width = 24
        filled = int(width * step / max(total, 1))
        eta = (total - step) / rate if rate > 0 else float("nan")
        speed = f"{rate:.2f} it/s eta {eta:.0f}s" if rate > 0 else "measuring it/s"
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {step}/{total} loss {loss:.4f} {speed}"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if step >= total else ""))
            self.stream.flush()
        elif step % self.every == 0 or step >= total or step == self.first:
            self.stream.write(line + "\n")
            self.stream.flush()
