"""Running sum modulo m: the target at each position is the sum of the residues so far, mod m.

It generalises parity (m = 2) to a cyclic group of order m, the simplest state-tracking
problem beyond one bit. Inputs are tokens 0 .. m-1 and so are the answers; vocab_size must be
at least m (extra ids are unused).

Worked example (modulus 5, seq_len 6):

    inputs   3  4  1  0  2  4
    targets  3  2  3  3  0  4      (score=all)
"""

from __future__ import annotations

from dataclasses import dataclass

from seqbench.tasks.registry import TASKS
from seqbench.tasks.running_sum import RunningSumTask


@TASKS.register("modular")
@dataclass
class Modular(RunningSumTask):
    name = "modular"
    description = "running sum of residues modulo m (cyclic-group state tracking)"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("state-tracking",)

    vocab_size: int = 5
    seq_len: int = 64
    modulus: int = 5

    def order(self) -> int:
        return self.modulus
