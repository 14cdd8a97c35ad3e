"""Parent side of the workers: fork them, feed them jobs, enforce budgets, classify deaths.

Workers come from a multiprocessing forkserver that preloads torch and the profiler once;
every worker is a new process (its own address space and RSS peak) forked from that clean
server, which has never run a kernel, so no thread pool or CUDA context is inherited.

Decisions stay here, job by job:
- a job that does not answer within its budget is killed and recorded "failed" (over budget);
  a worker that dies without answering is "oom" when SIGKILLed (the kernel's OOM killer) or
  when its log says it could not allocate, "failed" otherwise, with the last line of its log;
- after a point of a series fails, the longer points of that series are recorded "skipped";
- a point that would exceed its budget even if its time only grew linearly from the shorter
  point just measured is recorded "failed" as predicted, without running it.
"""

from __future__ import annotations

import multiprocessing
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing.context import BaseContext
from typing import Any

from seqbench.harness.profile.outcome import failure, skipped
from seqbench.harness.profile.points import LENGTH_FIELD, point_id, point_length, series_key

PREDICTION_MARGIN = 1.25  # skip only when the linear prediction is clearly over budget


@dataclass
class Job:
    spec: dict[str, Any]
    budget_s: float
    max_memory_bytes: int | None = None

    @property
    def run_id(self) -> str:
        return point_id(self.spec)

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "budget_s": self.budget_s,
            "max_memory_bytes": self.max_memory_bytes,
        }


@lru_cache(maxsize=1)
def worker_context() -> BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["seqbench.harness.profile.worker"])
    return ctx


class Worker:
    """One forked worker process and its pipe."""

    def __init__(self) -> None:
        from seqbench.harness.profile.worker import child_main

        ctx = worker_context()
        self.conn, child_conn = ctx.Pipe()
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115  (closed in stop())
            mode="r", prefix="seqbench-worker-", suffix=".log"
        )
        self.proc = ctx.Process(target=child_main, args=(child_conn, self.log.name), daemon=True)
        self.proc.start()
        child_conn.close()
        self.alive = True

    def run(self, job: Job) -> dict[str, Any]:
        """The job's result, or a failure when it runs over budget or the worker dies."""
        try:
            self.conn.send(job.to_json())
            if not self.conn.poll(job.budget_s):
                self.stop()
                return failure(job.spec, "failed", f"over the per-point time budget of "
                               f"{job.budget_s:g} s")  # fmt: skip
            return self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            return failure(job.spec, *self._death_cause())

    def stop(self) -> None:
        if self.alive:
            self.alive = False
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join()
            self.conn.close()
            self.log.close()

    def _death_cause(self) -> tuple[str, str]:
        self.proc.join()
        tail = [ln.strip() for ln in self.log.read().splitlines() if ln.strip()]
        self.stop()
        last = f": {tail[-1][:300]}" if tail else ""
        if self.proc.exitcode == -signal.SIGKILL:
            return "oom", f"worker killed by SIGKILL (the out-of-memory killer?){last}"
        if "allocate memory" in last:
            return "oom", f"worker aborted with code {self.proc.exitcode}{last}"
        return "failed", f"worker exited with code {self.proc.exitcode}{last}"


def predicted_over_budget(shorter: tuple[int, float] | None, job: Job) -> str | None:
    """A reason when linear growth from the shorter point already exceeds the budget."""
    if shorter is None:
        return None
    length, seconds = shorter
    predicted = seconds * point_length(job.spec) / length
    if predicted <= PREDICTION_MARGIN * job.budget_s:
        return None
    field = LENGTH_FIELD[job.spec["mode"]]
    return (
        f"predicted over the per-point time budget of {job.budget_s:g} s: {seconds:.1f} s at "
        f"{field}={length}, so at least {predicted:.0f} s at {point_length(job.spec)} "
        f"(linear growth); not run"
    )


def run_jobs(jobs: list[Job], *, fresh_each: bool) -> Iterator[tuple[Job, dict[str, Any]]]:
    """A result for every job, in order. `fresh_each`: a new worker per job (for RSS).

    Jobs of a series should come shortest first (see the module docstring).
    """
    worker: Worker | None = None
    failed_series: dict[str, str] = {}
    shorter: dict[str, tuple[int, float]] = {}
    try:
        for job in jobs:
            key = series_key(job.spec)
            if key in failed_series:
                yield job, skipped(job.spec, failed_series[key])
                continue
            reason = predicted_over_budget(shorter.get(key), job)
            if reason is not None:
                result = failure(job.spec, "failed", reason)
            else:
                worker = worker if worker is not None and worker.alive else Worker()
                result = worker.run(job)
                if fresh_each:
                    worker.stop()
            if result["status"] == "ok":
                shorter[key] = (point_length(job.spec), result["timings"]["point_s"])
            else:
                failed_series[key] = result["status"]
            yield job, result
    finally:
        if worker is not None:
            worker.stop()
