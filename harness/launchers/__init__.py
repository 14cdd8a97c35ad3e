"""Launchers: how a list of runs is executed (in this process, a local pool, a Slurm cluster).

One seam: a launcher takes `Job`s and yields `(job, record)` as runs finish, in any order; the
sweep (seqbench.harness.sweep) writes the records and shows progress. A failing run, or a
worker that
dies, still yields a record (status failed), so a sweep never stops on one run. Other packages
can add launchers (a Ray one) under the `seqbench.launchers` entry-point group, or by
`pkg.mod:Class`: a `Launcher` subclass built as `Class(workers=N)`.
"""

from __future__ import annotations

from seqbench.errors import UserError
from seqbench.harness.launchers.base import Job, Launcher, failed_record
from seqbench.harness.launchers.local import LocalLauncher
from seqbench.harness.launchers.serial import SerialLauncher
from seqbench.registry import Registry

LAUNCHERS: Registry = Registry("launcher", "seqbench.launchers")
LAUNCHERS.add("serial", SerialLauncher)
LAUNCHERS.add("local", LocalLauncher)
# Lazy: `import harness` never loads it, and it imports submitit (optional) only when built.
LAUNCHERS.add_lazy("slurm", "seqbench.harness.launchers.slurm:SlurmLauncher")


def get_launcher(name: str, workers: int | None = None) -> Launcher:
    cls = LAUNCHERS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Launcher)):
        raise UserError(f"{name!r} is not a Launcher class")
    return cls(workers=workers)


__all__ = ["LAUNCHERS", "Job", "Launcher", "LocalLauncher", "SerialLauncher", "failed_record"]
