"""Synthetic task generators. Importing this package registers every in-tree task."""

from seqbench.tasks.base import IGNORE_INDEX, Batch, Task, make_task
from seqbench.tasks.registry import TASKS

# Registration by import; one module per task (shared cores live in recall, running_sum,
# strings, layout and sampling).
from seqbench.tasks import (  # noqa: F401  isort: skip
    copy,
    flipflop,
    fuzzy_recall,
    induction,
    listops,
    lookup,
    memorization,
    modular,
    mqar,
    niah,
    noisy_recall,
    parity,
    selective_copy,
)

__all__ = ["IGNORE_INDEX", "TASKS", "Batch", "Task", "make_task"]
