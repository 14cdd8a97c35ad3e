"""A pool of worker processes on this machine, `--workers N`, torch threads split between them.

Why not concurrent.futures: one worker dying (SIGKILL, os._exit, the OOM killer) breaks a
ProcessPoolExecutor for every pending job. Here each worker is a spawned process with its own
pipe; the parent waits on pipes and process sentinels together, records a dead worker's job
as failed, starts a replacement and carries on. Workers also die with the parent (Linux
PR_SET_PDEATHSIG), so killing a sweep leaves no orphan training in the background.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from seqbench.harness.launchers.base import Job, Launcher, OnStart, failed_record


@dataclass
class _Worker:
    process: Any  # multiprocessing Process (spawn context)
    conn: Connection
    job: Job | None = None


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers or max(1, (os.cpu_count() or 1)))
        self.threads = max(1, torch.get_num_threads() // self.workers)
        self._ctx = mp.get_context("spawn")

    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        pending = deque(jobs)
        pool = [self._start() for _ in range(min(self.workers, len(pending)))]
        try:
            while pending or any(w.job for w in pool):
                for i, worker in enumerate(pool):
                    if worker.job is None and pending:
                        if not worker.process.is_alive():  # died while idle
                            pool[i] = worker = self._start()
                        worker.job = pending.popleft()
                        on_start(worker.job)
                        with contextlib.suppress(OSError):  # a death now is seen by wait()
                            worker.conn.send_bytes(json.dumps(worker.job.spec).encode())
                busy = [w for w in pool if w.job is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for i, worker in enumerate(pool):
                    if worker.job is None:
                        continue
                    if worker.conn in ready or worker.process.sentinel in ready:
                        done = self._collect(worker)
                        if done is not None:
                            yield done
                        if not worker.process.is_alive():
                            pool[i] = self._start()
        finally:
            for worker in pool:
                self._stop(worker)

    def _collect(self, worker: _Worker) -> tuple[Job, dict[str, Any]] | None:
        """The finished job's record, or a failed record when the worker died mid-run."""
        job = worker.job
        assert job is not None
        try:
            if worker.conn.poll():
                record = json.loads(worker.conn.recv_bytes())
                worker.job = None
                return job, record
        except (EOFError, OSError):
            pass
        if worker.process.is_alive():
            return None  # woken up spuriously; keep waiting
        worker.process.join()
        worker.job = None
        return job, failed_record(
            job, f"worker process died ({exit_reason(worker.process.exitcode)})"
        )

    def _start(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(
            target=worker_main, args=(child_conn, self.threads), daemon=True
        )
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn)

    @staticmethod
    def _stop(worker: _Worker) -> None:
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send_bytes(b"")
        worker.process.join(timeout=5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = "; out of memory?" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


def worker_main(conn: Connection, threads: int) -> None:
    """Receive specs as JSON, send records as JSON; an empty message means stop."""
    _die_with_parent()
    torch.set_num_threads(threads)
    from seqbench.harness.runner import execute

    try:
        while True:
            message = conn.recv_bytes()
            if not message:
                return
            record = execute(json.loads(message))
            conn.send_bytes(json.dumps(record).encode())
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its parent dies (no-op elsewhere)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
