"""Formatting of numbers and value sets for report tables (plain text; renderers escape)."""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except TypeError:
        return False


def num(value: Any, digits: int = 3) -> str:
    """Integers with thousands separators, floats to `digits` significant places, – if absent."""
    if is_missing(value):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        # Lengths come back from log-log fits as 4095.9999…: print them as the integers they are.
        if abs(value) >= 1 and abs(value - round(value)) <= 1e-6 * abs(value) and abs(value) < 1e15:
            return f"{round(value):,}"
        return f"{value:.{digits}g}"
    return str(value)


def fixed(value: Any, digits: int = 3) -> str:
    return "–" if is_missing(value) else f"{value:.{digits}f}"


def bytes_(value: Any) -> str:
    """1536 -> '1.5 KiB'."""
    if is_missing(value):
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.3g} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def seconds(value: Any) -> str:
    if is_missing(value):
        return "–"
    value = float(value)
    if value < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if value < 1:
        return f"{value * 1e3:.3g} ms"
    if value < 120:
        return f"{value:.3g} s"
    return f"{value / 60:.1f} min"


def values(items: Iterable[Any], limit: int = 12) -> str:
    """The distinct values, sorted, comma-separated ("64, 128"); "…" past `limit`."""
    distinct = sorted({_plain(v) for v in items if not is_missing(v)}, key=_sort_key)
    text = ", ".join(num(v) if isinstance(v, (int, float)) else str(v) for v in distinct[:limit])
    return text + (", …" if len(distinct) > limit else "") if distinct else "–"


def counted(items: Iterable[Any]) -> str:
    """One value as itself; several as "a (3), b (1)" so mixed environments stand out."""
    counts = Counter(_plain(v) for v in items if not is_missing(v))
    if not counts:
        return "–"
    if len(counts) == 1:
        return str(next(iter(counts)))
    return ", ".join(f"{v} ({n})" for v, n in counts.most_common())


def knobs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(mapping.items())) or "defaults"


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))
