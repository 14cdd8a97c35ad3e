"""How many torch threads a run gets by default: the cores it may use that nothing else keeps busy.

Why not torch's default (one thread per core of the machine): torch's CPU ops are OpenMP
loops whose threads wait for each other at the end of every op. With one thread more than
there are free cores, each small op waits for a thread that is not running, and a step is
paced by the scheduler's time slices instead of by its arithmetic. Measured on this project's
2-core machine beside one busy process: the same training run took 198 s with 2 threads and
37 s with 1 (docs/harness.md, "Threads").

So the default is the cores this process may use (its CPU affinity, capped by a cgroup CPU
quota) minus the cores other processes keep busy, sampled from /proc/stat over those CPUs
for a fraction of a second, split between the workers and at least one each. `--threads N`
overrides it; the record of every run names the threads it ran with
(`environment.torch_threads`).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_S = 0.1  # ten clock ticks per CPU: enough to see a busy core, too short to delay a sweep


@dataclass(frozen=True)
class ThreadChoice:
    """The threads per worker and what they were chosen from."""

    threads: int
    usable: int  # cores this process may run on
    busy: float | None  # cores kept busy by other work (None: not measurable here)
    workers: int = 1

    def describe(self) -> str:
        """E.g. '1 per run (2 usable cores, 1.0 busy with other work; --threads N sets it)'."""
        busy = "" if self.busy is None else f", {self.busy:.1f} busy with other work"
        per = "run" if self.workers == 1 else f"worker, {self.workers} workers"
        return f"{self.threads} per {per} ({self.usable} usable cores{busy}; --threads N sets it)"


def choose_threads(workers: int = 1, sample_s: float = SAMPLE_S) -> ThreadChoice:
    """The default threads per worker for `workers` workers on this machine, now."""
    usable = usable_cores()
    busy = busy_cores(sample_s)
    free = usable if busy is None else max(1, math.floor(usable - busy + 0.5))
    return ThreadChoice(max(1, free // max(1, workers)), usable, busy, workers)


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else max(1, cores)


def cgroup_cpu_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> float | None:
    """CPUs' worth of time this cgroup may use per period ('max' or absent: None)."""
    try:
        quota, period = path.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def busy_cores(sample_s: float = SAMPLE_S, stat: Path = Path("/proc/stat")) -> float | None:
    """Cores' worth of time the allowed CPUs spent busy over `sample_s` while this process
    slept, i.e. what other processes use; None where /proc/stat cannot say."""
    try:
        allowed = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return None
    before = cpu_times(stat)
    time.sleep(sample_s)
    after = cpu_times(stat)
    busy = 0.0
    for cpu in allowed:
        if cpu not in before or cpu not in after:
            return None
        total = sum(after[cpu]) - sum(before[cpu])
        idle = (after[cpu][3] + after[cpu][4]) - (before[cpu][3] + before[cpu][4])
        busy += (total - idle) / total if total > 0 else 0.0
    return busy


def cpu_times(stat: Path = Path("/proc/stat")) -> dict[int, list[int]]:
    """Per-CPU jiffies from /proc/stat: user, nice, system, idle, iowait, irq, softirq, steal."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            times[int(name[3:])] = [int(f) for f in fields[:8]]
    return times


def default_threads(explicit: int | None, workers: int) -> int | None:
    """torch threads per job for a launcher on this machine: `explicit` when given (0 means
    torch's own default: None); torch's own too when OMP_NUM_THREADS is set (the user chose);
    else `choose_threads(workers)`, announced in one line on stderr."""
    if explicit is not None:
        return explicit or None
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    choice = choose_threads(workers)
    print(f"torch threads: {choice.describe()}", file=sys.stderr, flush=True)
    return choice.threads
