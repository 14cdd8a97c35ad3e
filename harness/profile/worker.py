"""Worker processes: each runs profile jobs and answers one result per job.

Why a separate process per job (training points) or per batch (decode, counted):
- the RSS method needs a fresh process whose peak reflects only this step;
- an out-of-memory point fails in its own address space (a capped one, see
  `memory.limit_address_space`) and an over-budget point can be killed, while the sweep goes on.

Workers are forked from a forkserver that has imported torch and the architectures once
(`runner.py`), so a fresh process costs milliseconds instead of the seconds of a torch import.
A job is {"spec", "budget_s", "max_memory_bytes"}; a result is {"run_id", "status", "reason",
"metrics", "timings"}. Jobs arrive one at a time, so the parent decides what runs next.

For debugging, `python -m seqbench.harness.profile.worker < jobs.json` runs a JSON list of jobs
in this
process and prints one JSON result per line.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import torch

# FlopCounterMode imports torch._dynamo (about 800 modules) on first use; importing it here
# puts it in the forkserver once instead of costing every fresh worker seconds.
import torch._dynamo

from seqbench import architectures  # noqa: F401  (registers every preset before the fork)
from seqbench.harness.profile.decode import measure_decode
from seqbench.harness.profile.memory import (
    is_oom_error,
    lift_address_space_limit,
    limit_address_space,
)
from seqbench.harness.profile.meta import count_on_meta
from seqbench.harness.profile.outcome import one_line
from seqbench.harness.profile.points import point_id
from seqbench.harness.profile.train_step import measure_train

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def fix_malloc_thresholds() -> bool:
    """glibc: every allocation ≥ 64 KiB gets its own mapping, returned to the OS when freed.

    Without this, glibc raises its mmap threshold after the first large free and keeps freed
    blocks on the heap; the measured step would then reuse pages the warm-up step touched and
    its RSS peak would under-count (measured: up to 3x too low at short lengths).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
    )


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job and classify its outcome: ok, oom or failed (with a one-line reason)."""
    spec = job["spec"]
    started = time.perf_counter()
    status, reason, metrics = "ok", None, {}
    limited = spec["device"] == "cpu" and job.get("max_memory_bytes") is not None
    if spec.get("threads"):
        # Why a knob: on a CPU shared with other work, each parallel op waits for its slowest
        # thread; with more threads than free cores that is a descheduled one, so small ops
        # take a time slice each (measured: Mamba 7x slower on 2 threads than on 1).
        torch.set_num_threads(spec["threads"])
    try:
        if limited:
            limit_address_space(job["max_memory_bytes"])
        if spec["mode"] == "train":
            metrics = measure_train(spec, job.get("budget_s"))
        elif spec["mode"] == "decode":
            metrics = measure_decode(spec)
        else:
            metrics = count_on_meta(spec)
    except Exception as exc:  # classified and recorded; the sweep goes on
        status = "oom" if is_oom_error(exc) else "failed"
        reason = one_line(exc)
        if status == "oom" and limited:
            reason += f" (per-point memory cap {job['max_memory_bytes'] / 2**20:,.0f} MiB)"
    finally:
        if limited:
            lift_address_space_limit()
    return {
        "run_id": point_id(spec),
        "status": status,
        "reason": reason,
        "metrics": metrics,
        "timings": {"point_s": time.perf_counter() - started},
    }


def child_main(conn: Connection, log_path: str) -> None:
    """Entry point of a forked worker: jobs in through `conn` until None, results out.

    Output goes to a log file whose last line explains a crash.
    """
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    exit_with_parent()
    fix_malloc_thresholds()
    start_thread_pools()
    while (job := conn.recv()) is not None:
        conn.send(run_job(job))
    conn.close()


def exit_with_parent() -> None:
    """End this worker as soon as the sweep that started it is gone (killed, interrupted).

    Why: the per-point budget is enforced by the parent; without it an orphaned worker could
    run a long point to its end on a machine others share.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def start_thread_pools() -> None:
    """Create torch's intra-op threads now, before any memory cap.

    A thread started under the address-space cap can abort the whole process (glibc: "cannot
    allocate memory for thread-local data") instead of raising an error we could record.
    """
    a = torch.ones(256, 256)
    (a @ a).add_(1).sum()


def main() -> None:
    fix_malloc_thresholds()
    for job in json.load(sys.stdin):
        print(json.dumps(run_job(job)), flush=True)


if __name__ == "__main__":
    main()
