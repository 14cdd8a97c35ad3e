"""Results of profile jobs that produced no measurement, and one-line error messages."""

from __future__ import annotations

from typing import Any

from seqbench.harness.profile.points import point_id


def one_line(exc: BaseException) -> str:
    """ "Type: first line of the message", short enough for a record's reason."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0]}"[:500] if lines else type(exc).__name__


def failure(spec: dict[str, Any], status: str, reason: str) -> dict[str, Any]:
    return {"run_id": point_id(spec), "status": status, "reason": reason, "metrics": {},
            "timings": {}}  # fmt: skip


def skipped(spec: dict[str, Any], cause_status: str) -> dict[str, Any]:
    """A longer point of a series whose shorter point failed: not run, it would fail too."""
    reason = f"skipped: a shorter point of this series ended {cause_status}"
    return failure(spec, "failed", reason)
