"""String copying (Jelassi et al. 2024, "Repeat After Me"): read a string, then repeat it.

Layout: `$ s | s .` then padding, where s is a uniformly random string over the alphabet
(tokens 0 .. V-5). Every token of the second copy and the final `.` are scored, teacher-forced:
the target at `|` is s[0], at the i-th copied token it is s[i+1], at the last one it is `.`.
All scored positions right is exactly the paper's exact-match metric (greedy decoding would
produce the same string).

Worked example (vocab_size 7, seq_len 12, lengths 3..3; `$`=3, `|`=4, `.`=5, `*`=6):

    inputs   $  1  0  2  |  1  0  2  .  *  *  *
    targets  -  -  -  -  1  0  2  .  -  -  -  -      (- = unscored)

The paper draws string lengths at random (e.g. 8..50 in training) and tests on longer ones:
set `--min-len`/`--max-len`. The default fills the sequence, (seq_len - 3) // 2 letters, over
26 letters as in the paper; `at_length` lengthens the string with the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch
from seqbench.tasks.layout import column, grid, next_token_targets, pack
from seqbench.tasks.registry import TASKS
from seqbench.tasks.strings import StringTask


@TASKS.register("copy")
@dataclass
class Copy(StringTask):
    name = "copy"
    description = "copying (Jelassi et al.): repeat a random string after a separator"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("copying",)

    def longest_fitting(self) -> int:
        return (self.seq_len - 3) // 2

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        lengths = self.draw_lengths(n, generator)  # (n,)
        width = self.length_range()[1]
        text = sampling.randint(0, self.alphabet, (n, width), generator)  # (n, W)
        one = torch.ones(n, dtype=torch.long)
        pieces = grid([column(self.bos, n), text, column(self.sep, n), text, column(self.eos, n)])
        sizes = torch.stack([one, lengths, one, lengths, one], dim=1)  # (n, 5)
        no, yes = torch.zeros_like(text), torch.ones_like(text)
        flags = grid([column(0, n), no, column(1, n), yes, column(0, n)])
        inputs, _ = pack(pieces, sizes, self.seq_len, self.pad)
        score_next, _ = pack(flags, sizes, self.seq_len, 0)
        return Batch(inputs, next_token_targets(inputs, score_next.bool()))

    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        for b, row in enumerate(inputs.tolist()):
            sep = row.index(self.sep)
            answer = [*row[1:sep], self.eos]
            for i, tok in enumerate(answer):
                out[b, sep + i] = tok
        return out
