"""The launcher seam: `Launcher.run(jobs, on_start)` yields `(job, record)` as jobs finish.

A job is one training run (kind "run", executed by `seqbench.harness.runner.execute`) or one
profile point (kind "profile", `seqbench.harness.profile.worker.run_point`); `execute_job`
dispatches, so every launcher runs both, and `seqbench run` and `seqbench profile` share the
launchers, the progress display and the outcome rules (`seqbench.harness.common.outcome`).
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from seqbench.harness.records import make_record

KINDS = ("run", "profile")


@dataclass(frozen=True)
class Job:
    """One resolved job: its id, its spec as plain data and a short label for progress.

    `budget_s`: wall-clock limit; a job over it is killed and recorded failed by launchers
    that run it in a process of its own (local, ray). `max_memory_bytes`: a profile point's
    address-space cap. `fresh_process`: run it in a worker process that has run nothing
    before (the profiler's RSS method needs the process's peak to be this job's alone).
    """

    run_id: str
    spec: dict[str, Any]
    label: str
    kind: str = "run"
    budget_s: float | None = None
    max_memory_bytes: int | None = None
    fresh_process: bool = False

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Job:
        return cls(**json.loads(data))


OnStart = Callable[[Job], None]


class Launcher(ABC):
    """Executes jobs; must yield exactly one record per job, whatever happens to the job."""

    name = ""
    # Where the jobs execute when that is not this machine ("cpu" or "cuda"; a cluster
    # launcher's nodes): a spec's device "auto" resolves to it, and "cuda" is checked against
    # it rather than against this machine's torch. None: jobs execute here.
    device: str | None = None

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers
        # torch threads per job (`--threads`): None the launcher's default (docs/harness.md,
        # "Threads"), 0 torch's own default (split between a local pool's workers).
        self.threads: int | None = None

    @abstractmethod
    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        """Yield (job, record) per job as each finishes; call on_start(job) as each begins."""


def execute_job(job: Job) -> dict[str, Any]:
    """Run one job in this process and return its record. Never raises for the job's own
    errors, even one before it starts (a spec that does not parse): they become the record's
    status and reason (`seqbench.harness.common.outcome.exception_outcome`)."""
    from seqbench.harness.common.outcome import exception_outcome

    try:
        if job.kind == "profile":
            from seqbench.harness.profile.worker import run_point

            return run_point(job.spec, job.budget_s, job.max_memory_bytes)
        from seqbench.harness.runner import execute

        return execute(job.spec)
    except Exception as exc:
        status, reason = exception_outcome(exc)
        return failed_record(job, reason, status)


def failed_record(job: Job, reason: str, status: str = "failed") -> dict[str, Any]:
    """The record of a job that never produced its own (its worker died, it ran over its
    budget, or it was refused)."""
    return make_record(
        kind=job.kind,
        run_id=job.run_id,
        spec=job.spec,
        status=status,
        reason=reason,
        device=job.spec.get("device"),
    )
