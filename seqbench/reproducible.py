"""Results that do not depend on the number of threads: MKL's strict CNR mode, asked for at import.

A float sum depends on its order, and a BLAS that splits a matrix product's inner dimension
between threads sums in one order on 2 threads and in another on 1. Measured with torch 2.13
(MKL) on a 2-core CPU: a (64 x 4096) @ (4096 x 64) float32 product differed in its last bits
between 1 and 2 threads, so the `mha-moe` runs of the smoke suite recorded other losses under
`--launcher serial` (2 threads) than under `--launcher ray --workers 2` (1 thread per task).
MKL's strict conditional numerical reproducibility (MKL_CBWR=AUTO,STRICT) makes its products
bitwise equal whatever the number of threads, for about 4% of a training step here
(docs/harness.md, "Threads").

MKL reads the variable at its first call, so `seqbench` sets it when it is imported (before
any product: importing torch makes none), unless the environment sets it already:
MKL_CBWR=AUTO gives MKL's fastest, thread-dependent code back. A BLAS other than MKL (ARM
builds of torch) ignores it. Nothing here imports torch.
"""

from __future__ import annotations

import os

THREAD_INDEPENDENT_BLAS = {"MKL_CBWR": "AUTO,STRICT"}


def ask_for_thread_independent_blas() -> None:
    """Set MKL's strict reproducibility mode for this process and its children, unless set."""
    for name, value in THREAD_INDEPENDENT_BLAS.items():
        os.environ.setdefault(name, value)
