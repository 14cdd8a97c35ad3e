"""Progress of a sweep: one line per finished point, plus a live "running" line on a terminal.

Off a terminal (CI logs, pipes) only the finished-point lines are written, with no carriage
returns or escape codes, so a log reads cleanly.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from seqbench.harness.profile.points import LENGTH_FIELD

SHORT_LENGTH = {"seq_len": "L", "context": "ctx"}


def point_label(spec: dict[str, Any]) -> str:
    """E.g. "train mha/sdpa L=1024 B=1 d=128 ffn.n_experts=16"."""
    arch = spec["arch"] + (f"/{spec['impl']}" if spec.get("impl") else "")
    field = LENGTH_FIELD[spec["mode"]]
    extra = [
        f"{k}={v}" for k, v in spec["overrides"].items() if k not in ("d_model", "attention.impl")
    ]
    parts = [spec["mode"], arch, f"{SHORT_LENGTH[field]}={spec[field]}", f"B={spec['batch']}"]
    return " ".join([*parts, f"d={spec['d_model']}", *extra])


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.finished = 0
        self.ran = 0
        self.started = time.monotonic()

    def __call__(self, event: str, spec: dict[str, Any], record: dict[str, Any] | None) -> None:
        if event == "start":
            if self.tty:
                self._write(f"\r\x1b[K{self._counter()} running {point_label(spec)}")
            return
        self.finished += 1
        if event == "skip":
            self._line(f"{point_label(spec)}: already recorded ok")
            return
        self.ran += 1
        assert record is not None
        seconds = record["timings"].get("point_s")
        took = f" in {seconds:.1f} s" if isinstance(seconds, (int, float)) else ""
        reason = f" ({record['reason']})" if record["reason"] else ""
        self._line(f"{point_label(spec)}: {record['status']}{took}{reason}")

    def _counter(self) -> str:
        elapsed = time.monotonic() - self.started
        left = self.total - self.finished
        eta = f", ~{elapsed / self.ran * left:.0f} s left" if self.ran else ""
        return f"[{self.finished}/{self.total} {elapsed:.0f} s{eta}]"

    def _line(self, text: str) -> None:
        prefix = "\r\x1b[K" if self.tty else ""
        self._write(f"{prefix}{self._counter()} {text}\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
