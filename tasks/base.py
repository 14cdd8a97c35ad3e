"""The task contract: a dataclass of knobs that draws (inputs, targets) batches from a seed.

A task is a `Task` subclass registered with `@TASKS.register("name")`. Its knobs are dataclass
fields with defaults. `sample(n, seed)` returns a `Batch` of int64 tensors (n, seq_len):
`targets` holds -100 wherever no loss or metric applies. Generation runs on the CPU with a
seeded `torch.Generator`, so the same seed gives the same data on any machine; callers move
batches to their device. `at_length(L)` gives the task at another length for extrapolation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from seqbench.errors import UserError
from seqbench.registry import did_you_mean
from seqbench.seeds import derive_seed

IGNORE_INDEX = -100
SPLITS = ("train", "val", "test")


@dataclass
class Batch:
    inputs: Tensor  # (B, L) int64 token ids
    targets: Tensor  # (B, L) int64, IGNORE_INDEX where unscored

    @property
    def scored(self) -> Tensor:
        return self.targets != IGNORE_INDEX  # (B, L) bool

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.inputs.to(device), self.targets.to(device))


@dataclass
class Task:
    """Base class of every task. Subclasses add knobs as fields and implement `generate`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    vocab_size: int = 64
    seq_len: int = 64

    def __post_init__(self) -> None:
        self.validate()

    # -- to implement --------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> Batch:
        """n examples at self.seq_len, drawn only from `generator` (vectorised torch code)."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise UserError (one line) for knobs that cannot make a valid example."""
        for knob in ("vocab_size", "seq_len"):
            value = getattr(self, knob)
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"{self.name}: {knob} must be a positive integer, got {value!r}")

    def at_length(self, seq_len: int) -> Task:
        """This task at another sequence length (override to rescale other knobs)."""
        return dataclasses.replace(self, seq_len=seq_len)

    # -- shared ---------------------------------------------------------------------------------
    def sample(self, n: int, seed: int) -> Batch:
        """n examples from an explicit seed."""
        generator = torch.Generator().manual_seed(seed)
        return self.generate(n, generator)

    def split_batch(self, n: int, seed: int, split: str, *index: object) -> Batch:
        """A batch of a named split: train/val/test streams never share a seed."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return self.sample(n, derive_seed(seed, self.name, split, self.seq_len, *index))

    def knobs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def make_task(name: str, **knobs: Any) -> Task:
    """Build a registered (or `pkg.mod:Class`) task from knobs; unknown knobs fail in one line."""
    from tasks.registry import TASKS

    cls = TASKS.get(name)
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in knobs:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            known = ", ".join(allowed)
            raise UserError(f"task {name!r} has no knob {key!r}{hint} (knobs: {known})")
    return cls(**knobs)
