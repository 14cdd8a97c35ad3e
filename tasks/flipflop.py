"""Flip-flop language modelling (Liu et al. 2023, "Exposing Attention Glitches").

A sequence of instruction/bit pairs: `w b` writes bit b, `r b` reads and b must equal the last
written bit, `i b` is an ignored random bit. Instructions are drawn independently with
P(i) = p_ignore and P(w) = P(r) = (1 - p_ignore) / 2; the first is always `w` and the last
always `r`, so every sequence has a read with a defined answer. Only read bits are
deterministic, so only they are scored: the target at an `r` is the bit that follows it.

The paper trains on FFL(0.8) and tests on two shifted distributions, available as `variants`:
dense (p_ignore 0.1, many writes and reads) and sparse (p_ignore 0.98, reads far from their
write), which is where attention "glitches". Tokens: bits 0 and 1, then w=2, r=3, i=4.

Worked example (seq_len 12):

    inputs   w  1  i  0  r  1  w  0  i  1  r  0
    targets  -  -  -  -  1  -  -  -  -  -  0  -      (- = unscored)

The paper uses length 512; the default 64 trains on a CPU. `seq_len` must be even;
`at_length` keeps p_ignore (rounding an odd length down would change the task, so it refuses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.registry import TASKS

WRITE, READ, IGNORE = 2, 3, 4


@TASKS.register("flipflop")
@dataclass
class FlipFlop(Task):
    name = "flipflop"
    description = "flip-flop language (Liu et al.): a read returns the last written bit"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("state-tracking", "memory")
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "dense": {"p_ignore": 0.1},
        "sparse": {"p_ignore": 0.98},
    }

    vocab_size: int = 5
    seq_len: int = 64
    p_ignore: float = 0.8

    def validate(self) -> None:
        super().validate()
        self.check(self.vocab_size >= 5, f"vocab_size must be >= 5, got {self.vocab_size}")
        self.check(
            self.seq_len >= 4 and self.seq_len % 2 == 0,
            f"seq_len must be even and >= 4 (instruction/bit pairs), got {self.seq_len}",
        )
        self.check(
            0 <= self.p_ignore < 1 and math.isfinite(self.p_ignore),
            f"p_ignore must be in [0, 1), got {self.p_ignore}",
        )

    def token_names(self) -> dict[int, str]:
        return {WRITE: "w", READ: "r", IGNORE: "i"}

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        steps = self.seq_len // 2
        u = torch.rand(n, steps, generator=generator)  # (n, T)
        p_write = self.p_ignore + (1 - self.p_ignore) / 2
        instr = torch.where(
            u < self.p_ignore, IGNORE, torch.where(u < p_write, WRITE, READ)
        )  # (n, T)
        instr[:, 0], instr[:, -1] = WRITE, READ
        bits = torch.randint(0, 2, (n, steps), generator=generator)  # (n, T)
        step = torch.arange(steps).expand(n, steps)
        last_write = torch.where(instr == WRITE, step, -1).cummax(dim=1).values  # (n, T) >= 0
        is_read = instr == READ
        bits = torch.where(is_read, bits.gather(1, last_write), bits)
        inputs = torch.stack([instr, bits], dim=2).reshape(n, self.seq_len)
        answers = torch.where(is_read, bits, IGNORE_INDEX)  # (n, T)
        targets = torch.stack([answers, torch.full_like(answers, IGNORE_INDEX)], dim=2)
        return Batch(inputs, targets.reshape(n, self.seq_len))

    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        for b, row in enumerate(inputs.tolist()):
            memory = None
            for t in range(0, len(row) - 1, 2):
                if row[t] == WRITE:
                    memory = row[t + 1]
                elif row[t] == READ and memory is not None:
                    out[b, t] = memory
        return out
