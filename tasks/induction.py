"""Induction heads (Olsson et al. 2022; the H3/Hyena synthetic): finish a pattern seen once.

Random text over tokens 0 .. V-2 contains the trigger token (V-1) exactly once, at a random
position, followed by a random target token. The last position is the trigger again and the
model must predict the token that followed the first trigger. The trigger appears nowhere
else, so the answer is unambiguous.

Worked example (vocab_size 6, seq_len 10; `^` = trigger 5):

    inputs   3  0  ^  4  1  1  2  0  3  ^
    targets  -  -  -  -  -  -  -  -  -  4

Defaults follow H3's synthetic (vocabulary 20, length 30) at vocab 16, length 32: one scored
token per sequence is a sparse signal, and a tiny attention model needs several hundred CPU
steps to form an induction head even there. `at_length` keeps the vocabulary; the first
trigger lands anywhere in the longer text, which is how the task is trained at one length and
evaluated at up to 16x that length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.registry import TASKS


@TASKS.register("induction")
@dataclass
class Induction(Task):
    name = "induction"
    description = "induction head: after the trigger reappears, predict what followed it before"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("recall", "extrapolation")

    vocab_size: int = 16
    seq_len: int = 32

    @property
    def trigger(self) -> int:
        return self.vocab_size - 1

    def validate(self) -> None:
        super().validate()
        self.check(self.vocab_size >= 3, f"vocab_size must be >= 3, got {self.vocab_size}")
        self.check(self.seq_len >= 3, f"seq_len must be >= 3, got {self.seq_len}")

    def token_names(self) -> dict[int, str]:
        return {self.trigger: "^"}

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        length = self.seq_len
        inputs = sampling.randint(0, self.trigger, (n, length), generator)  # (n, L) no trigger
        where = sampling.randint(0, length - 2, (n, 1), generator)  # (n, 1) first trigger
        inputs.scatter_(1, where, self.trigger)
        inputs[:, -1] = self.trigger
        targets = torch.full_like(inputs, IGNORE_INDEX)
        targets[:, -1] = inputs.gather(1, where + 1)[:, 0]
        return Batch(inputs, targets)

    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        for b, row in enumerate(inputs.tolist()):
            first = row.index(self.trigger)
            for t in range(first + 1, len(row)):
                if row[t] == self.trigger:
                    out[b, t] = row[first + 1]
        return out
