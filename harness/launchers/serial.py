"""Run jobs one after another in this process (the default: simplest, lowest overhead).

A run that raises is recorded by `execute`; a run that kills the process (os._exit, the OOM
killer) ends the sweep, and the next invocation resumes after the recorded runs. Use the
`local` launcher to isolate such runs in worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from seqbench.harness.launchers.base import Job, Launcher, OnStart
from seqbench.harness.runner import execute


class SerialLauncher(Launcher):
    name = "serial"

    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        for job in jobs:
            on_start(job)
            yield job, execute(job.spec)
