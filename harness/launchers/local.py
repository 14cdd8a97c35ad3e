"""A pool of worker processes on this machine, `--workers N`, torch threads shared out among them.

Why not concurrent.futures: one worker dying (SIGKILL, os._exit, the OOM killer) breaks a
ProcessPoolExecutor for every pending job. Here each worker is a process with its own pipe
(`worker.py`); the parent waits on pipes, process sentinels and job deadlines together. A
worker that dies is recorded through the one rule for dead workers
(`seqbench.harness.common.outcome.exit_outcome`: SIGKILL is oom, else failed, with the
worker's last log line), a job over its `budget_s` is killed and recorded failed, a
replacement worker is started and the sweep carries on. A job marked `fresh_process` gets a
worker that ran nothing before and is not reused. Workers end with the sweep, so killing it
leaves nothing training in the background.

`run_isolated(job)` runs one job this way; the Ray and Slurm launchers use it inside their
tasks, so a dead worker means the same status and reason whatever the launcher.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext
from typing import Any

import torch

from seqbench.harness.common.outcome import exit_outcome
from seqbench.harness.common.threads import default_threads, usable_cores
from seqbench.harness.launchers.base import Job, Launcher, OnStart, failed_record

PRELOAD = ["seqbench.harness.launchers.worker"]
PROFILE_PRELOAD = ["seqbench.harness.profile.worker"]  # + torch._dynamo (seconds to import)


def worker_context(profile: bool = False) -> BaseContext:
    """The forkserver context. What it preloads is fixed when the server first starts (once
    per process); a sweep with profile points asks for the profiler too."""
    ctx = multiprocessing.get_context("forkserver")
    from multiprocessing import forkserver

    if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:  # not started yet
        ctx.set_forkserver_preload(PRELOAD + (PROFILE_PRELOAD if profile else []))
    return ctx


class _Worker:
    """One worker process, its pipe, its log file and the job it runs (if any)."""

    def __init__(self, ctx: BaseContext, threads: int | None) -> None:
        from seqbench.harness.launchers.worker import worker_main

        self.conn, child_conn = ctx.Pipe()
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115  (closed in stop())
            mode="r", prefix="seqbench-worker-", suffix=".log"
        )
        self.process = ctx.Process(
            target=worker_main, args=(child_conn, threads, self.log.name), daemon=True
        )
        self.process.start()
        child_conn.close()
        self.job: Job | None = None
        self.deadline: float | None = None

    def assign(self, job: Job) -> None:
        self.job = job
        self.deadline = None if job.budget_s is None else time.monotonic() + job.budget_s
        with contextlib.suppress(OSError):  # a death now is seen by wait()
            self.conn.send_bytes(job.to_json())

    def collect(self) -> tuple[Job, dict[str, Any]] | None:
        """The finished job's record, or the dead worker's outcome; None if still running."""
        job = self.job
        assert job is not None
        try:
            if self.conn.poll():
                record = json.loads(self.conn.recv_bytes())
                self.job = None
                return job, record
        except (EOFError, OSError):
            pass
        if self.process.is_alive():
            return None  # woken up spuriously; keep waiting
        self.process.join()
        status, reason = exit_outcome(self.process.exitcode, self.last_log_line())
        self.job = None
        return job, failed_record(job, reason, status)

    def over_budget(self) -> tuple[Job, dict[str, Any]]:
        job = self.job
        assert job is not None
        self.stop()
        self.job = None
        return job, failed_record(job, f"over its time budget of {job.budget_s:g} s; killed")

    def last_log_line(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            lines = [ln.strip() for ln in self.log.read().splitlines() if ln.strip()]
            return lines[-1] if lines else ""
        return ""

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send_bytes(b"")
        self.process.join(timeout=0 if self.job else 5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.log.close()


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers or usable_cores())

    def worker_threads(self) -> int:
        """torch threads per worker: --threads, else the default for this many workers on
        this machine now (`seqbench.harness.common.threads`); torch's own split evenly when
        that is what was asked for (0, or OMP_NUM_THREADS set)."""
        threads = default_threads(self.threads, self.workers)
        return threads or max(1, torch.get_num_threads() // self.workers)

    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        pending = deque(jobs)
        if not pending:
            return
        threads = self.worker_threads()
        ctx = worker_context(profile=any(j.kind == "profile" for j in jobs))
        pool: list[_Worker | None] = [None] * min(self.workers, len(pending))
        try:
            while pending or any(w and w.job for w in pool):
                for i, worker in enumerate(pool):
                    if (worker is None or worker.job is None) and pending:
                        if worker is None or not worker.alive():
                            if worker is not None:
                                worker.stop()
                            pool[i] = worker = _Worker(ctx, threads)
                        job = pending.popleft()
                        on_start(job)
                        worker.assign(job)
                busy = [w for w in pool if w and w.job]
                deadlines = [w.deadline for w in busy if w.deadline is not None]
                timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
                for i, worker in enumerate(pool):
                    if worker is None or worker.job is None:
                        continue
                    job = worker.job
                    if worker.conn in ready or worker.process.sentinel in ready:
                        done = worker.collect()
                    elif worker.deadline is not None and time.monotonic() >= worker.deadline:
                        done = worker.over_budget()
                    else:
                        continue
                    if done is None:
                        continue
                    yield done
                    if job.fresh_process or not worker.alive():
                        worker.stop()
                        pool[i] = None
        finally:
            for worker in pool:
                if worker is not None:
                    worker.stop()


def run_isolated(job: Job, threads: int | None = None) -> dict[str, Any]:
    """Run one job in a worker process of its own and return its record (or the dead
    worker's, or the over-budget one): what a cluster task runs, so that its outcome is
    decided by the same rules as the local pool's. `threads`: torch threads of the worker."""
    launcher = LocalLauncher(workers=1)
    launcher.threads = threads or torch.get_num_threads()  # the task's, never a new choice
    ((_, record),) = list(launcher.run([job], lambda job: None))
    return record
