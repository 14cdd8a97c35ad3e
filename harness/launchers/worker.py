"""The child side of a worker process: jobs in as JSON, records out as JSON, one at a time.

Workers are forked from a multiprocessing forkserver that has imported torch and the
architectures once (and the profiler, with torch._dynamo, when a sweep has profile points), so
a fresh worker costs milliseconds instead of the seconds of a torch import, and it has never
run a kernel: no thread pool or CUDA context is inherited. A worker writes its output to a log
file whose last line explains a crash (`seqbench.harness.common.outcome.exit_outcome`).
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import threading
from multiprocessing.connection import Connection

import torch

from seqbench import architectures  # noqa: F401  (registers every preset before the fork)
from seqbench.harness.launchers.base import Job, execute_job


def worker_main(conn: Connection, threads: int | None, log_path: str) -> None:
    """Receive jobs until an empty message (or the pipe closes); answer each with its record."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    exit_with_parent()
    if threads:
        torch.set_num_threads(threads)
    try:
        while message := conn.recv_bytes():
            record = execute_job(Job.from_json(message))
            conn.send_bytes(json.dumps(record).encode())
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return


def exit_with_parent() -> None:
    """End this worker as soon as the sweep that started it is gone (killed, interrupted).

    Why: a job's time budget is enforced by the parent; without this an orphaned worker could
    train or measure to the end on a machine others share.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
