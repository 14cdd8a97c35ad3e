"""The task registry: decorator registration, lazy entries and `seqbench.tasks` plugins."""

from __future__ import annotations

import dataclasses
from typing import Any

from seqbench.registry import Registry


def is_task_class(obj: Any) -> bool:
    """A Task dataclass, as `pkg.mod:Class` must name (a function or a module is refused in
    one line, not met later by `dataclasses.fields`)."""
    from seqbench.tasks.base import Task

    return isinstance(obj, type) and issubclass(obj, Task) and dataclasses.is_dataclass(obj)


TASKS: Registry = Registry("task", "seqbench.tasks", accepts=is_task_class)
