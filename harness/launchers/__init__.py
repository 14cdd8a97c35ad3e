"""Launchers: how a list of jobs is executed (in this process, a local pool, Slurm, Ray).

One seam: a launcher takes `Job`s (training runs and profile points alike) and yields
`(job, record)` as jobs finish, in any order; the sweep (`seqbench.harness.sweep`, and
`seqbench.harness.profile.sweep` for points) writes the records and shows progress. A failing
job, or a worker that dies, still yields a record (status and reason from
`seqbench.harness.common.outcome`), so a sweep never stops on one job. Other packages can add
launchers under the `seqbench.launchers` entry-point group, or by `pkg.mod:Class`: a
`Launcher` subclass built as `Class(workers=N)`.
"""

from __future__ import annotations

from seqbench.errors import UserError
from seqbench.harness.launchers.base import Job, Launcher, execute_job, failed_record
from seqbench.harness.launchers.local import LocalLauncher
from seqbench.harness.launchers.serial import SerialLauncher
from seqbench.registry import Registry

LAUNCHERS: Registry = Registry("launcher", "seqbench.launchers")
LAUNCHERS.add("serial", SerialLauncher)
LAUNCHERS.add("local", LocalLauncher)
# Lazy: `import seqbench.harness` never loads them, and they import submitit or ray (optional)
# only when built.
LAUNCHERS.add_lazy("slurm", "seqbench.harness.launchers.slurm:SlurmLauncher")
LAUNCHERS.add_lazy("ray", "seqbench.harness.launchers.ray:RayLauncher")


def get_launcher(name: str, workers: int | None = None, address: str | None = None) -> Launcher:
    """Build the launcher `name`; `address` (a Ray cluster) is passed to launchers that take
    it (the ray launcher), which read RAY_ADDRESS when it is None."""
    cls = LAUNCHERS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Launcher)):
        raise UserError(f"{name!r} is not a Launcher class")
    if getattr(cls, "takes_address", False):
        return cls(workers=workers, address=address)  # type: ignore[call-arg]
    return cls(workers=workers)


__all__ = [
    "LAUNCHERS",
    "Job",
    "Launcher",
    "LocalLauncher",
    "SerialLauncher",
    "execute_job",
    "failed_record",
]
