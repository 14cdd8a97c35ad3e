"""Running parity: the target at each position is the XOR of all bits so far.

Parity is the simplest task a fixed-size state solves exactly and that attention finds hard to
learn and to extrapolate (Hahn 2020; Anil et al. 2022). With `score=last` only the parity of
the whole sequence is scored.

Worked example (seq_len 8):

    inputs   1  0  1  1  0  0  1  0
    targets  1  1  0  1  1  1  0  0      (score=all)
    targets  -  -  -  -  -  -  -  0      (score=last; - = unscored)
"""

from __future__ import annotations

from dataclasses import dataclass

from seqbench.tasks.registry import TASKS
from seqbench.tasks.running_sum import RunningSumTask


@TASKS.register("parity")
@dataclass
class Parity(RunningSumTask):
    name = "parity"
    description = "running parity of a bit string (XOR of the bits so far)"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("state-tracking",)

    vocab_size: int = 2
    seq_len: int = 64

    def order(self) -> int:
        return 2
