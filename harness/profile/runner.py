"""Parent side of the workers: fork them, enforce the per-point budget, classify deaths.

Workers come from a multiprocessing forkserver that preloads torch and the profiler once;
every worker is a new process (its own address space and RSS peak) forked from that clean
server, which has never run a kernel, so no thread pool or CUDA context is inherited.

A job that does not answer within its budget is killed and recorded "failed" (over budget); a
worker that dies without answering is "oom" when it was killed by SIGKILL (the kernel's OOM
killer) and "failed" otherwise, with the last line of its log. Either way the remaining
points of that series are recorded as skipped and the other series go on in a new worker.
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

from harness.profile.outcome import failure, skipped
from harness.profile.points import point_id, series_key


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
    ctx.set_forkserver_preload(["harness.profile.worker"])
    return ctx


def run_jobs(jobs: list[Job], *, fresh_each: bool) -> Iterator[tuple[Job, dict[str, Any]]]:
    """A result for every job. `fresh_each`: one new worker per job (the RSS method needs it).

    Jobs of a series should come shortest first: after a point fails, the longer points of
    its series are answered "skipped" without running.
    """
    pending = list(jobs)
    failed_series: dict[str, str] = {}
    while pending:
        answered: set[str] = set()
        for job, result in _run_worker(pending[:1] if fresh_each else pending):
            answered.add(job.run_id)
            if result["status"] != "ok":
                failed_series.setdefault(series_key(job.spec), result["status"])
            yield job, result
        rest = []
        for job in pending:
            if job.run_id in answered:
                continue
            cause = failed_series.get(series_key(job.spec))
            if cause is None:
                rest.append(job)
            else:
                yield job, skipped(job.spec, cause)
        pending = rest


def _run_worker(batch: list[Job]) -> Iterator[tuple[Job, dict[str, Any]]]:
    """Results of one worker over `batch`, up to and including the first job it cannot answer."""
    from harness.profile.worker import child_main

    ctx = worker_context()
    receiver, sender = ctx.Pipe(duplex=False)
    with tempfile.NamedTemporaryFile(mode="r", prefix="seqbench-worker-", suffix=".log") as log:
        proc = ctx.Process(
            target=child_main, args=([j.to_json() for j in batch], sender, log.name), daemon=True
        )
        proc.start()
        sender.close()
        try:
            for job in batch:
                if not receiver.poll(job.budget_s):
                    proc.kill()
                    reason = f"over the per-point time budget of {job.budget_s:g} s"
                    yield job, failure(job.spec, "failed", reason)
                    return
                try:
                    result = receiver.recv()
                except EOFError:
                    yield job, failure(job.spec, *_death_cause(proc, log.read()))
                    return
                yield job, result
        finally:
            if proc.is_alive():
                proc.kill()
            proc.join()
            receiver.close()


def _death_cause(proc: Any, log_text: str) -> tuple[str, str]:
    proc.join()
    tail = [ln.strip() for ln in log_text.splitlines() if ln.strip()]
    last = f": {tail[-1][:300]}" if tail else ""
    if proc.exitcode == -signal.SIGKILL:
        return "oom", f"worker killed by SIGKILL (the out-of-memory killer?){last}"
    if "allocate memory" in last:
        return "oom", f"worker aborted with code {proc.exitcode}{last}"
    return "failed", f"worker exited with code {proc.exitcode}{last}"
