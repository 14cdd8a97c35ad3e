"""Selective copying (Mamba, Gu & Dao 2023; MAD-lab's layout, Poli et al. 2024).

`num_tokens` data tokens sit at random positions (kept in order) among blank tokens; a copy
marker follows, then `num_tokens` blanks during which the model must output the data tokens in
order. Unlike plain copying the spacing varies, so a time-invariant convolution cannot solve
it: the model must select tokens by content. Data tokens are 0 .. V-3, blank is V-2, the
marker V-1.

Worked example (vocab_size 6, seq_len 11, num_tokens 3; `_` = blank 4, `>` = marker 5):

    inputs   _  2  _  _  0  _  2  >  _  _  _
    targets  -  -  -  -  -  -  -  -  2  0  2

Mamba uses vocab 16, 16 tokens and length 4096; MAD-lab length 256. The default (vocab 16,
8 tokens, length 64) trains on a CPU. `at_length` keeps the vocabulary and the number of data
tokens: a longer sequence spreads them over a longer stretch of blanks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.registry import TASKS


@TASKS.register("selective_copy")
@dataclass
class SelectiveCopy(Task):
    name = "selective_copy"
    description = "selective copying (Mamba): output the scattered data tokens in order"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("copying", "selective")

    vocab_size: int = 16
    seq_len: int = 64
    num_tokens: int = 8

    @property
    def blank(self) -> int:
        return self.vocab_size - 2

    @property
    def marker(self) -> int:
        return self.vocab_size - 1

    def validate(self) -> None:
        super().validate()
        self.check(self.vocab_size >= 3, f"vocab_size must be >= 3, got {self.vocab_size}")
        self.check(self.num_tokens >= 1, f"num_tokens must be >= 1, got {self.num_tokens}")
        self.check(
            self.seq_len >= 2 * self.num_tokens + 1,
            f"seq_len {self.seq_len} cannot hold {self.num_tokens} tokens, a marker and the "
            f"copy (need seq_len >= {2 * self.num_tokens + 1})",
        )

    def token_names(self) -> dict[int, str]:
        return {self.blank: "_", self.marker: ">"}

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        k = self.num_tokens
        context = self.seq_len - k - 1  # where the data tokens hide
        data = sampling.randint(0, self.vocab_size - 2, (n, k), generator)  # (n, K)
        where = sampling.distinct(n, k, context, generator).sort(dim=1).values  # (n, K)
        inputs = torch.full((n, self.seq_len), self.blank, dtype=torch.long)
        inputs.scatter_(1, where, data)
        inputs[:, context] = self.marker
        targets = torch.full_like(inputs, IGNORE_INDEX)
        targets[:, context + 1 :] = data
        return Batch(inputs, targets)

    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        for b, row in enumerate(inputs.tolist()):
            mark = row.index(self.marker)
            data = [tok for tok in row[:mark] if tok != self.blank]
            for i, tok in enumerate(data):
                if mark + 1 + i < len(row):
                    out[b, mark + 1 + i] = tok
        return out
