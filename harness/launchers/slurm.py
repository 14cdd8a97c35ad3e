"""Runs as a Slurm job array through submitit, `--workers N` of them at once (default: all).

Why submitit: it pickles a call of `_run_job` on each job (a run or a profile point), writes
the sbatch script, submits what a sweep launches at once as one array (one sbatch call, not
hundreds: the sweep, or its calibrated runs or one lr stage after the references) and
brings back each record or the job's error. The same code runs on submitit's `local` executor (one
subprocess per job on this machine) and its in-process `debug` executor, which is how this
launcher is tested where there is no Slurm. submitit is optional: it is imported when the
launcher is built, so `import harness` never needs it and a missing install is one line
before any work.

Settings come from SEQBENCH_SLURM_* environment variables (see `settings`), read and checked
when the launcher is built. Jobs are polled, and yielded as each finishes; a job that raises,
times out, is cancelled or loses its node is recorded failed with a one-line reason. Closing
the sweep (Ctrl-C, an error downstream) cancels every job not yet finished, so nothing is
left queued or training on the cluster.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqbench.errors import UserError
from seqbench.harness.common.outcome import one_line
from seqbench.harness.launchers.base import Job, Launcher, OnStart, failed_record

CLUSTERS = ("slurm", "local", "debug")
# Seconds between looks at the jobs. Cheap: a finished job is seen by its result file, and
# submitit itself rate-limits its sacct calls. debug runs a job when it is collected.
POLL_S = {"slurm": 1.0, "local": 0.2, "debug": 0.0}
# What submitit's job raises when Slurm warns it of its time limit (USR2) and the function is
# not checkpointable: the run is over, recorded as a TIMEOUT. It is raised inside the running
# function, so it usually comes back as the reason of the run's own failed record.
SUBMITIT_TIMED_OUT = "Job not requeued because: timed-out"


@dataclass(frozen=True)
class Settings:
    """The SEQBENCH_SLURM_* variables, checked; None means the cluster's own default."""

    cluster: str | None = None  # None: submitit picks (slurm when srun is on PATH, else local)
    partition: str | None = None
    time_min: int = 60  # submitit's own default (5 min) would kill most runs
    cpus: int | None = None
    gpus: int = 0
    mem_gb: float | None = None
    folder: Path = Path(".submitit")


def settings(env: dict[str, str] | None = None) -> Settings:
    """Read SEQBENCH_SLURM_* from `env` (default os.environ); a bad value is one UserError line."""
    env = dict(os.environ if env is None else env)

    def get(name: str) -> str | None:
        value = env.get(f"SEQBENCH_SLURM_{name}", "").strip()
        return value or None

    def number(name: str, kind: type, low: float, strict: bool = False) -> Any:
        text = get(name)
        if text is None:
            return None
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < low or (strict and value == low):
            what = "a whole number" if kind is int else "a number"
            raise UserError(
                f"SEQBENCH_SLURM_{name} must be {what} {'>' if strict else '>='} {low:g}, "
                f"got {text!r}"
            )
        return value

    cluster = get("CLUSTER")
    if cluster is not None and cluster not in CLUSTERS:
        raise UserError(
            f"SEQBENCH_SLURM_CLUSTER must be one of {', '.join(CLUSTERS)}, got {cluster!r}"
        )
    return Settings(
        cluster=cluster,
        partition=get("PARTITION"),
        time_min=number("TIME", int, 1) or Settings.time_min,
        cpus=number("CPUS", int, 1),
        gpus=number("GPUS", int, 0) or 0,
        mem_gb=number("MEM_GB", float, 0, strict=True),
        folder=Path(get("FOLDER") or Settings.folder).expanduser().absolute(),
    )


class SlurmLauncher(Launcher):
    name = "slurm"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers)
        try:
            import submitit
        except ImportError:
            raise UserError(
                "the slurm launcher needs submitit: pip install 'seqbench[slurm]'"
            ) from None
        self.settings = settings()
        self._submitit = submitit
        self.cluster = self.settings.cluster or submitit.AutoExecutor.which()
        if self.cluster == "slurm" and not (shutil.which("sbatch") and shutil.which("srun")):
            raise UserError("SEQBENCH_SLURM_CLUSTER=slurm but sbatch or srun is not on PATH")
        # A job sees GPUs only when it asks for them (Slurm's allocation; the local executor
        # sets CUDA_VISIBLE_DEVICES), so "auto" resolves to that, not to this machine's torch.
        self.device = None if self.cluster == "debug" else ("cuda" if self.settings.gpus else "cpu")
        self.poll_s = POLL_S[self.cluster]

    def run(self, jobs: Sequence[Job], on_start: OnStart) -> Iterator[tuple[Job, dict[str, Any]]]:
        if not jobs:
            return
        executor = self._executor(len(jobs))
        threads = self._threads()
        pending = deque(jobs)
        flight: list[tuple[Job, Any]] = []  # (job, submitit job), submitted and not collected
        started: set[str] = set()
        try:
            while pending or flight:
                batch = [pending.popleft() for _ in range(self._room(len(flight), len(pending)))]
                if batch:
                    try:
                        sjobs = executor.map_array(_run_job, batch, [threads] * len(batch))
                    except Exception as exc:  # sbatch refused: every job of the batch fails
                        for job in batch:
                            on_start(job)
                            yield job, failed_record(job, f"submission failed: {_last_line(exc)}")
                        continue
                    flight += zip(batch, sjobs, strict=True)
                finished, waiting = [], []
                for job, sjob in flight:
                    done = self.cluster == "debug" or sjob.done()  # debug: runs in _collect
                    if job.run_id not in started and (done or self._running(sjob)):
                        started.add(job.run_id)
                        on_start(job)
                    (finished if done else waiting).append((job, sjob))
                flight = waiting
                for job, sjob in finished:
                    yield job, self._collect(job, sjob)
                if not finished:
                    time.sleep(self.poll_s)
        finally:
            self._cancel([sjob for _, sjob in flight])

    # -- submission ---------------------------------------------------------------------------
    def _executor(self, n_jobs: int) -> Any:
        s = self.settings
        executor = self._submitit.AutoExecutor(folder=s.folder / "%j", cluster=self.cluster)
        params: dict[str, Any] = {"name": "seqbench", "timeout_min": s.time_min}
        optional = {"cpus_per_task": s.cpus, "gpus_per_node": s.gpus or None, "mem_gb": s.mem_gb}
        params |= {k: v for k, v in optional.items() if v is not None}
        if s.partition:
            params["slurm_partition"] = s.partition
        params["slurm_signal_delay_s"] = signal_delay_s(s.time_min)
        params["slurm_array_parallelism"] = self.workers or n_jobs
        executor.update_parameters(**params)
        return executor

    def _room(self, in_flight: int, pending: int) -> int:
        """How many jobs to submit now. Slurm takes the whole launch as one array and throttles
        it itself; the local executor starts every job it is given at once, so it is fed
        `--workers` (default: one per CPU) at a time; debug runs one at a time in-process."""
        if self.cluster == "slurm":
            return pending
        limit = 1 if self.cluster == "debug" else self._local_limit()
        return max(0, min(limit - in_flight, pending))

    def _local_limit(self) -> int:
        return self.workers or os.cpu_count() or 1

    def _threads(self) -> int | None:
        """torch threads per job: --threads; else the CPUs asked for; on the local executor
        this machine's threads shared between concurrent jobs; in-process (debug) unchanged;
        None: the CPUs Slurm gave the job."""
        if self.threads:
            return self.threads
        if self.cluster == "debug":
            return torch.get_num_threads()
        if self.settings.cpus:
            return self.settings.cpus
        if self.cluster == "local":
            return max(1, torch.get_num_threads() // self._local_limit())
        return None

    # -- results ------------------------------------------------------------------------------
    def _running(self, sjob: Any) -> bool:
        """Whether a submitted job has started: local and debug jobs start when submitted; a
        Slurm job when sacct says so (submitit's cached view, refreshed as it sees fit)."""
        return self.cluster != "slurm" or sjob.state == "RUNNING"

    def _collect(self, job: Job, sjob: Any) -> dict[str, Any]:
        """The finished job's record, or a failed record saying why there is none."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        if self.cluster == "local" and not sjob.paths.result_pickle.exists():
            return failed_record(job, _no_result(sjob))  # the process died; no need to wait
        try:
            error = sjob.exception()  # for debug: runs the job here (result() would open pdb)
            if error is None:
                record = sjob.result()
                if SUBMITIT_TIMED_OUT in str(record.get("reason")):  # raised inside the run
                    record["reason"] = self._timed_out(sjob)
                return record
        except Exception as exc:  # e.g. the result file never appeared after a node failure
            error = exc
        if isinstance(error, FailedJobError):
            line = _trace_line(str(error))
            if SUBMITIT_TIMED_OUT in line:  # the job stopped itself at Slurm's warning
                return failed_record(job, self._timed_out(sjob))
            return failed_record(job, line)
        if isinstance(error, UncompletedJobError):
            if str(sjob.state).upper().startswith("TIMEOUT"):  # killed at the limit
                return failed_record(job, self._timed_out(sjob))
            return failed_record(job, _no_result(sjob))
        return failed_record(job, one_line(error))

    def _timed_out(self, sjob: Any) -> str:
        return (
            f"job {sjob.job_id} reached its time limit of {self.settings.time_min} min "
            f"(TIMEOUT; SEQBENCH_SLURM_TIME); log: {sjob.paths.stderr}"
        )

    def _cancel(self, sjobs: list[Any]) -> None:
        """Cancel unfinished jobs: one scancel for the array(s) on Slurm (finished tasks are
        unaffected), else each job (the local executor interrupts its subprocess)."""
        if not sjobs:
            return
        if self.cluster == "slurm":
            arrays = sorted({str(sjob.job_id).split("_")[0] for sjob in sjobs})
            with contextlib.suppress(OSError):
                subprocess.run(["scancel", *arrays], check=False, capture_output=True)
            return
        for sjob in sjobs:
            with contextlib.suppress(Exception):
                sjob.cancel(check=False)


def signal_delay_s(time_min: int) -> int:
    """Seconds before the time limit at which Slurm warns a job (USR2), ending it through
    submitit. submitit's 90 s would end a job of a short limit before it starts; a tenth of
    the limit, at most 90 s, leaves a run most of its time (Slurm may warn up to 30 s early)."""
    return min(90, 6 * time_min)


def _run_job(job: Job, threads: int | None) -> dict[str, Any]:
    """The function each job runs (pickled by reference: the nodes import this package): the
    job in a worker process of its own, so that a worker's death is recorded by the same
    rules as on the local launcher (`seqbench.harness.launchers.local.run_isolated`)."""
    if threads is None:
        affinity = getattr(os, "sched_getaffinity", None)
        threads = len(affinity(0)) if affinity else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    from seqbench.harness.launchers.local import run_isolated

    return run_isolated(job, threads)


def _no_result(sjob: Any) -> str:
    state = str(sjob.state)
    known = "" if state.upper() in ("FINISHED", "UNKNOWN") else f" ({state})"
    return f"job {sjob.job_id} ended without a result{known}; log: {sjob.paths.stderr}"


def _trace_line(message: str) -> str:
    """ "Type: message" from submitit's FailedJobError text, which wraps the job's traceback
    between dashed lines: the first line after the last indented (frame) line."""
    parts = message.split("\n" + "-" * 22 + "\n")
    trace = parts[1] if len(parts) >= 3 else message
    lines = [ln for ln in trace.splitlines() if ln.strip()]
    frames = [i for i, ln in enumerate(lines) if ln.startswith(" ")]
    if frames and frames[-1] + 1 < len(lines):
        return lines[frames[-1] + 1].strip()[:500]
    return (lines[-1].strip() if lines else "FailedJobError")[:500]


def _last_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:500]
