"""Seed derivation: one user seed fans out into independent streams by name.

Train, validation and test draws must never share a seed. Deriving every stream's seed from a
hash of its parts ("train", step) / ("val",) / ("test", length) makes them distinct by
construction and identical on every machine.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts, e.g. derive_seed(0, "test", 1024)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
