"""Sweep progress: done/total, the job(s) in flight and an ETA, for runs and profile points.

On a terminal, a live status line is redrawn in place under the finished-run lines. When the
output is a file or a pipe, only one plain line per finished run is written, so logs stay
clean (no carriage returns, no escape codes).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from seqbench.harness.launchers import Job


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def outcome(record: dict[str, Any]) -> str:
    """A short summary of a record's result for its progress line."""
    if record["status"] != "ok":
        return record.get("reason") or ""
    if record.get("kind") == "profile":
        return ""  # the summary tables show the measurements
    metrics = record.get("metrics") or {}
    val = (metrics.get("val") or {}).get("accuracy")
    test = (metrics.get("test") or {}).get(str(record["spec"]["seq_len"])) or {}
    parts = [f"steps {metrics.get('steps_run')}"]
    if val is not None:
        parts.append(f"val {val:.3f}")
    if test.get("accuracy") is not None:
        parts.append(f"test {test['accuracy']:.3f}")
    return "  ".join(parts)


class Progress:
    def __init__(self, total: int, skipped: int = 0, stream: TextIO | None = None) -> None:
        self.total = total  # runs to execute (skipped ones not included)
        self.skipped = skipped
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.done = 0
        self.running: dict[str, str] = {}
        self.start = time.perf_counter()

    def eta(self) -> str:
        if not self.done:
            return "?"
        elapsed = time.perf_counter() - self.start
        return duration(elapsed / self.done * (self.total - self.done))

    def skip(self, n: int) -> None:
        """n runs counted in `total` turned out to be recorded already."""
        self.total -= n
        self.skipped += n

    def started(self, job: Job) -> None:
        self.running[job.run_id] = job.label
        self._status()

    def finished(self, job: Job, record: dict[str, Any]) -> None:
        self.running.pop(job.run_id, None)
        self.done += 1
        timings = record.get("timings") or {}
        wall = timings.get("wall_s", timings.get("point_s"))
        took = f"{wall:.1f}s" if wall is not None else "-"
        width = len(str(self.total))
        line = (
            f"[{self.done:>{width}}/{self.total}] {record['status']:<8} {job.label}  "
            f"{outcome(record)}  ({took}, ETA {self.eta()})"
        )
        self._clear()
        print(line, file=self.stream, flush=True)
        self._status()

    def close(self) -> None:
        self._clear()

    def _status(self) -> None:
        if not self.live or not self.running:
            return
        names = ", ".join(self.running.values())
        text = f"[{self.done}/{self.total}] running {names}  ETA {self.eta()}"
        self.stream.write("\r\x1b[K" + text[:200])
        self.stream.flush()

    def _clear(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
