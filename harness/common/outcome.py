"""How a job's end becomes a record status and a one-line reason, for every launcher.

Two functions decide it, and every place that records an outcome calls them:
- `exception_outcome(exc)`: a job that raised (in this process, a worker, a Slurm job, a Ray
  task) is "oom" when the error is an allocation failure, else "failed"; the reason is the
  exception's type and first line;
- `exit_outcome(exitcode, log_tail)`: a worker process that ended without answering.
  SIGKILL is "oom": on Linux that is what the kernel's out-of-memory killer sends, and a
  worker is killed by nothing else of ours (a job over its time budget is recorded as such
  before its worker is killed). A worker whose last log line says it could not allocate
  memory is "oom" too. Anything else is "failed". The reason names the signal or exit code
  and ends with the worker's last log line, which usually says why.
"""

from __future__ import annotations

import signal

OOM_TEXT = ("can't allocate memory", "cannot allocate memory", "out of memory", "std::bad_alloc")


def one_line(exc: BaseException) -> str:
    """ "Type: first line of the message", short enough for a record's reason."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}"[:500] if lines else type(exc).__name__


def is_oom_error(exc: BaseException) -> bool:
    """Allocation failures from torch (CPU and CUDA) and Python."""
    if isinstance(exc, MemoryError):
        return True
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda's (and Ray's), without importing
        return True
    return isinstance(exc, RuntimeError) and any(t in str(exc).lower() for t in OOM_TEXT)


def exception_outcome(exc: BaseException) -> tuple[str, str]:
    """(status, reason) of a job that raised `exc`."""
    return ("oom" if is_oom_error(exc) else "failed"), one_line(exc)


def exit_outcome(exitcode: int | None, log_tail: str = "") -> tuple[str, str]:
    """(status, reason) of a worker process that died with `exitcode` (negative: killed by
    that signal) before answering; `log_tail`: the last line it wrote, if any."""
    last = f": {log_tail.strip()[:300]}" if log_tail.strip() else ""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if name == "SIGKILL":
            return "oom", f"worker killed by SIGKILL (the out-of-memory killer?){last}"
        return "failed", f"worker killed by {name}{last}"
    oom = any(t in log_tail.lower() for t in OOM_TEXT)
    return ("oom" if oom else "failed"), f"worker exited with code {exitcode}{last}"
