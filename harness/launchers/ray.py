"""Runs as Ray tasks, one per job, on an existing cluster (`--address` or RAY_ADDRESS) or on a
local Ray instance started for the sweep and stopped after it.

Why one task per job: Ray schedules each on a node with the CPUs (and GPUs) it asks for, and
the driver collects records with `ray.wait` as tasks finish, so records are written as they
come. Each task runs its job in a worker process of its own (`local.run_isolated`), the same
way the local launcher does: a job that raises, a worker killed by the OOM killer or a job
over its time budget gets the same status and one-line reason on every launcher
(`seqbench.harness.common.outcome`). What only Ray can say (its memory monitor killed the
task, the node died, the task could not be scheduled) becomes a record through the same
exception rule. Tasks are never retried: a failure is recorded, as everywhere.

Closing the sweep (Ctrl-C, an error downstream) cancels every task not yet finished
(`ray.cancel(force=True)`), so nothing keeps training on the cluster. ray is optional: it is
imported when the launcher is built, so `import seqbench.harness` never needs it and a
missing install is one line before any work.

Settings: SEQBENCH_RAY_CPUS (CPUs per task, default 1, and its torch threads unless --threads
says) and SEQBENCH_RAY_GPUS (GPUs per task; default 0, and with GPUs a spec's device "auto" is
cuda).
The nodes must import the same seqbench as the driver (an installed package, or this source
checkout when the cluster runs on this machine: its path is passed to the tasks).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from seqbench.errors import UserError
from seqbench.harness.common.outcome import exception_outcome
from seqbench.harness.launchers.base import Job, Launcher, OnStart, failed_record

POLL_S = 1.0  # how long one ray.wait blocks, so that Ctrl-C is seen promptly


def _setting(name: str, default: int, low: int) -> int:
    text = os.environ.get(f"SEQBENCH_RAY_{name}", "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise UserError(f"SEQBENCH_RAY_{name} must be a whole number >= {low}, got {text!r}")
    return value


class RayLauncher(Launcher):
    name = "ray"
    takes_address = True  # get_launcher passes --address

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        super().__init__(workers)
        try:
            import ray
        except ImportError:
            raise UserError("the ray launcher needs ray: pip install 'seqbench[ray]'") from None
        self._ray = ray
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.cpus = _setting("CPUS", 1, 1)
        self.gpus = _setting("GPUS", 0, 0)
        # Tasks see GPUs only when they ask for them, so "auto" resolves to that.
        self.device = "cuda" if self.gpus else "cpu"

    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        if not jobs:
            return
        ray = self._ray
        connected_here = not ray.is_initialized()
        if connected_here:
            self._connect()
        remote = ray.remote(_run_task).options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_retries=0,  # a job that killed its worker would be run again, and again
            retry_exceptions=False,
            scheduling_strategy="SPREAD",
        )
        pending = deque(jobs)
        flight: dict[Any, Job] = {}  # object ref -> job, submitted and not collected
        limit = self.workers or len(jobs)
        try:
            while pending or flight:
                while pending and len(flight) < limit:
                    job = pending.popleft()
                    flight[remote.remote(job.to_json(), self.threads or self.cpus)] = job
                    on_start(job)  # Ray queues it on the cluster; progress lists it as running
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=POLL_S)
                for ref in ready:
                    job = flight.pop(ref)
                    yield job, self._collect(job, ref)
        finally:
            for ref in flight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            if connected_here:
                ray.shutdown()  # stops the local instance; only disconnects from a cluster

    def _connect(self) -> None:
        """Join the cluster at `address`, or start a local instance for this sweep."""
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
            "runtime_env": runtime_env(),
        }
        if self.address is None:
            kwargs.update(address="local", num_cpus=max(self.cpus, self.workers or 0) or None)
        else:
            check_reachable(self.address)
            kwargs["address"] = self.address
        try:
            self._ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "a local instance"
            raise UserError(f"could not start or reach the Ray cluster ({where}): {exc}") from None

    def _collect(self, job: Job, ref: Any) -> dict[str, Any]:
        """The task's record, or a failed/oom record from the error Ray raised instead."""
        try:
            return self._ray.get(ref)
        except Exception as exc:
            cause = getattr(exc, "cause", None) or exc  # RayTaskError wraps the task's error
            status, reason = exception_outcome(cause)
            return failed_record(job, reason, status)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """One line at once when nothing listens at HOST:PORT (ray.init would retry for minutes).
    Other forms ("auto", "ray://…") are left to Ray."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address or not host:
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
            "`ray start --head`, or leave out --address and RAY_ADDRESS to run a local instance"
        ) from None


def _run_task(job_json: bytes, threads: int) -> dict[str, Any]:
    """The body of each Ray task: the job in a worker process of its own; the record names
    the Ray node that ran it."""
    import ray

    from seqbench.harness.launchers.local import run_isolated

    record = run_isolated(Job.from_json(job_json), threads)
    record.setdefault("environment", {})["ray_node"] = ray.get_runtime_context().get_node_id()
    return record


def runtime_env() -> dict[str, Any]:
    """Tasks import this seqbench: when it runs from a source checkout (not an installed
    package), its root goes on the tasks' PYTHONPATH (effective for nodes on this machine or
    sharing its file system; elsewhere the nodes' installed seqbench is used)."""
    import seqbench

    root = Path(seqbench.__file__).resolve().parent.parent
    if not ((root / "pyproject.toml").is_file() and (root / "harness").is_dir()):
        return {}
    paths = [str(root), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


__all__ = ["RayLauncher"]
