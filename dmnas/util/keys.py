"""Content keys: 16 hex digits of the SHA-256 of a description's canonical JSON.

One function, used by each store with its own version tag, so that a change of one store's format
(the proxy-set cache's ``FORMAT_VERSION``) re-keys that store only, never another's (the ground
truth's recipe keys, under which the shipped tables are filed).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_LENGTH = 16


def content_key(description: dict[str, Any]) -> str:
    """The key of ``description`` (JSON-serialisable; key order does not matter)."""
    canonical = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


def is_key(name: str) -> bool:
    """A folder name that a content key could be (16 lowercase hex digits)."""
    return len(name) == KEY_LENGTH and all(c in "0123456789abcdef" for c in name)
