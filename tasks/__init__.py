"""Synthetic task generators. Importing this package registers every in-tree task."""

from tasks.base import IGNORE_INDEX, Batch, Task, make_task
from tasks.registry import TASKS

__all__ = ["IGNORE_INDEX", "TASKS", "Batch", "Task", "make_task"]
