"""Counting on the meta device without a Python loop over time steps or chunks.

`seqbench profile` counts a training step's FLOPs and saved bytes on meta tensors: shapes
only, no arithmetic, yet every op still costs its Python dispatch (tens of microseconds under
the FLOP counter and the saved-tensor hooks). A scan that loops over chunks of 8 steps then
costs time proportional to the length: Mamba's count at 65k tokens took 85 s, so its longer
counted points were skipped.

On meta tensors the loops of the scans (`selective.py`, `chunked_linear.py`,
`mamba3_scan.py`) therefore issue the *same* ops batched over every chunk at once instead of
one chunk per iteration. Nothing else changes: torch's FLOP counter counts a batched matmul as
the sum of its batches, and autograd saves the same storages, so the counts are those of the
loop. The loop stays the reference: `loops_on_meta()` turns the batching off, and
tests/test_profile_counted.py holds every preset's count equal to the loop's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from torch import Tensor

_LOOPS_ON_META: ContextVar[bool] = ContextVar("seqbench_loops_on_meta", default=False)


def batched_on_meta(t: Tensor) -> bool:
    """True when `t` is a meta tensor and a scan should issue its loop's ops batched."""
    return t.is_meta and not _LOOPS_ON_META.get()


@contextlib.contextmanager
def loops_on_meta() -> Iterator[None]:
    """Run the scans' loops on meta tensors too: the reference count (slow at long lengths)."""
    token = _LOOPS_ON_META.set(True)
    try:
        yield
    finally:
        _LOOPS_ON_META.reset(token)
