"""Reading what the CLI printed, shared by the tests that run it."""

from __future__ import annotations

import re


def search_id(stdout: str) -> str:
    """The id from the last line `dmnas search` prints on stdout (printed with -q too):
    ``search <id>: N architectures scored; folder ...``."""
    found = re.findall(r"^search (\w+): \d+ architectures scored", stdout, flags=re.M)
    assert found, f"no search id in the output: {stdout[-2000:]}"
    return found[-1]
