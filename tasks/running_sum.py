"""Shared core of the state-tracking tasks `parity` and `modular`: running sums mod m.

Inputs are residues 0 .. m-1; the target at position t is (x_0 + ... + x_t) mod m, scored at
every position (`score=all`) or only at the last (`score=last`, the harder classic form where
the model gets one bit of feedback per sequence). No token is ever special, so length
extrapolation changes nothing but the length: `at_length` keeps every other knob.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task

SCORES = ("all", "last")


@dataclass
class RunningSumTask(Task):
    """Running sum of the inputs modulo `self.order()` (not a registered task)."""

    score: str = "all"

    def order(self) -> int:
        """m, the modulus of the running sum."""
        raise NotImplementedError

    def chance(self) -> float:
        return 1.0 / self.order()  # every residue is equally likely at every position

    def validate(self) -> None:
        super().validate()
        self.check(self.score in SCORES, f"score must be all or last, got {self.score!r}")
        self.check(self.order() >= 2, f"the modulus must be >= 2, got {self.order()}")
        self.check(
            self.vocab_size >= self.order(),
            f"vocab_size {self.vocab_size} is below the modulus {self.order()}: "
            "residues and answers must be tokens",
        )

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        inputs = sampling.randint(0, self.order(), (n, self.seq_len), generator)  # (n, L)
        targets = inputs.cumsum(dim=1).remainder_(self.order())  # (n, L)
        if self.score == "last":
            targets[:, :-1] = IGNORE_INDEX
        return Batch(inputs, targets)

    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        for b, row in enumerate(inputs.tolist()):
            total = 0
            for t, tok in enumerate(row):
                total = (total + tok) % self.order()
                out[b, t] = total
        return out
