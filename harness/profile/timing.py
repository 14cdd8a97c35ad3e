"""Wall-clock timing of device work: synchronised, repeated, summarised by the median.

Why the median: on a shared machine a repeat can be hit by another process; the median of a
few repeats ignores one outlier where the mean would not. Every repeat is kept in the record
so a reader can judge the spread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA runs asynchronously; CPU work is already done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], T], device: torch.device) -> tuple[float, T]:
    """Seconds one call of `fn` takes, including its device work, and what it returned."""
    synchronize(device)
    start = time.perf_counter()
    value = fn()
    synchronize(device)
    return time.perf_counter() - start, value


def timed(fn: Callable[[], object], device: torch.device) -> float:
    return timed_call(fn, device)[0]


def repeat_times(fn: Callable[[], object], device: torch.device, repeats: int) -> list[float]:
    return [timed(fn, device) for _ in range(repeats)]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def repeats_within(budget_s: float | None, step_s: float, wanted: int) -> int:
    """How many timed repeats fit in what is left of a budget (at least one).

    Why: a long point that would exceed its budget with the full count of repeats is still
    worth one timed repeat rather than a failure; the record says how many ran.
    """
    if budget_s is None or step_s <= 0:
        return wanted
    return max(1, min(wanted, int(budget_s / step_s)))
