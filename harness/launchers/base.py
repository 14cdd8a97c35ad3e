"""The launcher seam: `Launcher.run(jobs, on_start)` yields `(job, record)` as runs finish."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from seqbench.harness.records import make_record


@dataclass(frozen=True)
class Job:
    """One resolved run: its id, its spec as plain data and a short label for progress."""

    run_id: str
    spec: dict[str, Any]
    label: str


OnStart = Callable[[Job], None]


class Launcher(ABC):
    """Executes jobs; must yield exactly one record per job, whatever happens to the job."""

    name = ""
    # Where the runs execute when that is not this machine ("cpu" or "cuda"; a cluster
    # launcher's nodes): a spec's device "auto" resolves to it, and "cuda" is checked against
    # it rather than against this machine's torch. None: runs execute here.
    device: str | None = None

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers

    @abstractmethod
    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        """Yield (job, record) per job as each finishes; call on_start(job) as each begins."""


def failed_record(job: Job, reason: str) -> dict[str, Any]:
    """The record of a job that never produced its own (its worker died, or it was refused)."""
    return make_record(
        kind="run",
        run_id=job.run_id,
        spec=job.spec,
        status="failed",
        reason=reason,
        device=job.spec.get("device"),
    )
