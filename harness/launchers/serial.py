"""Run jobs one after another in this process (the default of `seqbench run`: simplest, lowest
overhead).

A job that raises is recorded by the job itself; a job that kills the process (os._exit, the
OOM killer) ends the sweep, and the next invocation resumes after the recorded jobs. A job's
`budget_s` is not enforced here (nothing can stop it from outside). Use the `local` launcher
to isolate jobs in worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from seqbench.harness.launchers.base import Job, Launcher, OnStart, execute_job


class SerialLauncher(Launcher):
    name = "serial"

    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        for job in jobs:
            on_start(job)
            yield job, execute_job(job)
