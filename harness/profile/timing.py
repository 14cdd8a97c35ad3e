"""Timing of device work: synchronised, repeated, summarised by the median, wall and CPU.

Why the median: a repeat can be hit by another process; the median of a few repeats ignores
one outlier where the mean would not. Every repeat is kept in the record.

Why CPU time beside wall time: on a CPU shared with other work, a whole point can run at half
speed while another job holds a core, and wall-clock exponents then wander (measured here:
the same sweep gave attention slopes from 1.2 to 1.6). The worker's CPU time counts only the
cycles it got, so with one thread it is the work itself and is barely moved by other load.
It is the sum over threads, so with several threads it exceeds wall time; on CUDA it only
measures the host side and is not recorded.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float | None  # process CPU time (all threads); None on CUDA


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA runs asynchronously; CPU work is already done)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], T], device: torch.device) -> tuple[Timing, T]:
    """Wall and CPU seconds of one call of `fn`, including its device work, and its value."""
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    synchronize(device)
    cpu_s = None if device.type == "cuda" else time.process_time() - cpu
    return Timing(time.perf_counter() - wall, cpu_s), value


def repeat_times(fn: Callable[[], object], device: torch.device, repeats: int) -> list[Timing]:
    return [timed_call(fn, device)[0] for _ in range(repeats)]


def summarise(timings: list[Timing], prefix: str) -> dict[str, object]:
    """`{prefix}_s` (median wall), `{prefix}_cpu_s` (median CPU) and every repeat of both."""
    walls = [t.wall_s for t in timings]
    cpus = [t.cpu_s for t in timings if t.cpu_s is not None]
    return {
        f"{prefix}_s": median(walls),
        f"{prefix}_cpu_s": median(cpus) if cpus else None,
        f"{prefix}_s_repeats": walls,
        f"{prefix}_cpu_s_repeats": cpus or None,
    }


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
