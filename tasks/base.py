"""The task contract: a dataclass of knobs that draws (inputs, targets) batches from a seed.

A task is a `Task` subclass registered with `@TASKS.register("name")`. Its knobs are dataclass
fields with defaults. `sample(n, seed)` returns a `Batch` of int64 tensors (n, seq_len):
`targets` holds -100 wherever no loss or metric applies. Generation runs on the CPU with a
seeded `torch.Generator`, so the same seed gives the same data on any machine; callers move
batches to their device. `at_length(L)` gives the task at another length for extrapolation.

What the harness uses: `make_task(name, **knobs)`, `vocab_size` (every token id, input or
target, is below it), `seq_len`, `at_length(L)`, `split_batch(n, seed, split, *index)`,
`knobs()`, and the class attributes `name` and `description`.

What a task also provides, for tests, the CLI and documentation (not needed by the harness):
- `oracle(inputs)`: the answer the inputs determine at each position, computed example by
  example in plain Python. It is the obviously-correct reference beside the vectorised
  `generate`: tests require it to equal `targets` on every scored position.
- `token_names()`: display names of special tokens (markers, padding) for `seqbench sample`.
- `variants`: named knob overrides the literature evaluates on (e.g. flip-flop's dense and
  sparse test distributions); `task.variant(name)` builds one.
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
    # The generator's version: part of every run's identity, so a fixed or changed generator
    # never reuses records made with the old one. Each task declares it (≥ 1) and bumps it
    # whenever `generate` or its defaults change.
    version: ClassVar[int] = 0
    # What the task measures ("recall", "copying", "state-tracking", "retrieval", ...); records
    # carry them and the report selects tasks by tag, never by a list of names.
    tags: ClassVar[tuple[str, ...]] = ()
    # Named knob overrides from the literature, e.g. {"dense": {"p_ignore": 0.1}}.
    variants: ClassVar[dict[str, dict[str, Any]]] = {}

    vocab_size: int = 64
    seq_len: int = 64

    def __post_init__(self) -> None:
        self.validate()

    # -- to implement --------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> Batch:
        """n examples at self.seq_len, drawn only from `generator` (vectorised torch code)."""
        raise NotImplementedError

    def oracle(self, inputs: Tensor) -> Tensor:
        """(B, L) answers the inputs determine (IGNORE_INDEX elsewhere), by plain Python loops."""
        raise NotImplementedError

    def validate(self) -> None:
        """Raise UserError (one line) for knobs that cannot make a valid example.

        Subclasses call `super().validate()` first, then `self.check(...)` their own rules.
        """
        for knob in ("vocab_size", "seq_len"):
            value = getattr(self, knob)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise UserError(f"{self.name}: {knob} must be a positive integer, got {value!r}")

    def at_length(self, seq_len: int) -> Task:
        """This task at another sequence length (override to rescale other knobs)."""
        return dataclasses.replace(self, seq_len=seq_len)

    def chance(self) -> float | None:
        """Token accuracy of a uniform guess among the possible answers, where the task defines
        one (state tracking: 1/m), else None. Findings rescale by it: (acc − chance)/(1 − chance)
        is 0 at chance and 1 when solved, the "scaled accuracy" of Grazzi et al. 2025."""
        return None

    def token_names(self) -> dict[int, str]:
        """Display names of special token ids (for `seqbench sample`); plain ids need none."""
        return {}

    # -- shared ---------------------------------------------------------------------------------
    def check(self, condition: bool, message: str) -> None:
        """One-line UserError naming the task when a knob rule fails."""
        if not condition:
            raise UserError(f"{self.name}: {message}")

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

    def variant(self, name: str) -> Task:
        """This task with one of its named `variants` applied."""
        return dataclasses.replace(self, **variant_knobs(type(self), name))


def variant_knobs(cls: type[Task], name: str) -> dict[str, Any]:
    """The knob overrides of a named variant; one-line error for an unknown name."""
    if name not in cls.variants:
        hint = did_you_mean(name, list(cls.variants))
        known = ", ".join(cls.variants) or "none"
        raise UserError(f"{cls.name} has no variant {name!r}{hint} (variants: {known})")
    return dict(cls.variants[name])


def knob_names(cls: type[Task]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def make_task(name: str, **knobs: Any) -> Task:
    """Build a registered (or `pkg.mod:Class`) task from knobs; unknown knobs fail in one line."""
    from seqbench.tasks.registry import TASKS

    cls = TASKS.get(name)
    allowed = knob_names(cls)
    for key in knobs:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            known = ", ".join(allowed)
            raise UserError(f"task {name!r} has no knob {key!r}{hint} (knobs: {known})")
    return cls(**knobs)
