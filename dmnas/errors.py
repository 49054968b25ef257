"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations


class DmnasError(Exception):
    """A problem the user can fix: bad input, missing data, corrupt cache.

    Library code raises it with a message that names what was wrong and what
    would be right; only the CLI catches it, prints it on one line and exits.
    """
