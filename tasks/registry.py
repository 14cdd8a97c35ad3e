"""The task registry: decorator registration, lazy entries and `seqbench.tasks` plugins."""

from __future__ import annotations

from seqbench.registry import Registry

TASKS: Registry = Registry("task", "seqbench.tasks")
