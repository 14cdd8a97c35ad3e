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

import torch

from seqbench.harness.common.threads import default_threads
from seqbench.harness.launchers.base import Job, Launcher, OnStart, execute_job


class SerialLauncher(Launcher):
    name = "serial"

    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        if not jobs:
            return
        before = torch.get_num_threads()
        threads = default_threads(self.threads, 1)
        torch.set_num_threads(threads or before)
        try:
            for job in jobs:
                on_start(job)
                yield job, execute_job(job)
        finally:
            torch.set_num_threads(before)  # the caller's process keeps its own setting
