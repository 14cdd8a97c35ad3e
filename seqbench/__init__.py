"""Shared core of seqbench: the registry and error types used by every other package.

`architectures` and `tasks` must not import each other or `harness`; the little they share
lives here, and this package imports nothing of theirs.
"""

__version__ = "0.1.0"
