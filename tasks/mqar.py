"""Multi-query associative recall (MQAR), as defined by Zoology (Arora et al. 2023).

The sequence opens with `num_pairs` key-value pairs: keys are distinct tokens from the lower
half of the vocabulary (1 .. V/2-1), values distinct tokens from the upper half (V/2 .. V-1).
The rest of the sequence is a query region of two-token slots; every key is asked once, in the
slot `gap` drawn without replacement with P(gap = i) proportional to (i + 1) ** (alpha - 1),
so most queries come soon after the pairs and a few far away (alpha = 1 is uniform). The
target at a query is its key's value; nothing else is scored. Other query-region tokens are
random tokens from the whole vocabulary (`random_non_queries`, Zoology's default) or 0.

Worked example (vocab_size 12, seq_len 16, num_pairs 2, random_non_queries off):

    inputs   2  8  4  7 | 0  0  4  0  0  0  0  0  2  0  0  0
    targets  -  -  -  - | -  -  7  -  -  -  -  -  8  -  -  -

Defaults are sized for a CPU: Zoology's smallest setting (length 64, 4 pairs) with a 64-token
vocabulary; its figures use vocab 8192, lengths 64-512 and 4-64 pairs, all reachable with the
knobs (a larger vocabulary makes the task harder and a CPU step slower). `at_length` keeps the
vocabulary, the number of pairs and alpha, so a longer sequence means longer recall gaps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.registry import TASKS


@TASKS.register("mqar")
@dataclass
class MQAR(Task):
    name = "mqar"
    description = "multi-query associative recall (Zoology): recall each key's value when asked"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("recall",)

    vocab_size: int = 64
    seq_len: int = 64
    num_pairs: int = 4
    alpha: float = 0.01
    random_non_queries: bool = True

    def validate(self) -> None:
        super().validate()
        half = self.vocab_size // 2
        self.check(self.num_pairs >= 1, f"num_pairs must be >= 1, got {self.num_pairs}")
        self.check(
            self.alpha > 0 and math.isfinite(self.alpha), f"alpha must be > 0, got {self.alpha}"
        )
        self.check(
            half - 1 >= self.num_pairs,
            f"vocab_size {self.vocab_size} leaves {half - 1} key tokens for "
            f"{self.num_pairs} distinct keys (need vocab_size >= {2 * self.num_pairs + 2})",
        )
        self.check(
            self.seq_len >= 4 * self.num_pairs,
            f"seq_len {self.seq_len} cannot hold {self.num_pairs} pairs and their queries "
            f"(need seq_len >= 4 * num_pairs = {4 * self.num_pairs})",
        )

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        pairs, length, half = self.num_pairs, self.seq_len, self.vocab_size // 2
        keys = 1 + sampling.distinct(n, pairs, half - 1, generator)  # (n, N) in [1, V/2)
        values = half + sampling.distinct(n, pairs, self.vocab_size - half, generator)  # (n, N)
        space = (length - 2 * pairs) // 2  # query slots
        log_p = (self.alpha - 1.0) * torch.log(torch.arange(1, space + 1, dtype=torch.float))
        gaps = sampling.weighted_distinct(log_p.expand(n, space), pairs, generator)  # (n, N)
        query_pos = 2 * pairs + 2 * gaps  # (n, N)

        if self.random_non_queries:
            inputs = sampling.randint(0, self.vocab_size, (n, length), generator)
        else:
            inputs = torch.zeros(n, length, dtype=torch.long)
        inputs[:, 0 : 2 * pairs : 2] = keys
        inputs[:, 1 : 2 * pairs : 2] = values
        inputs.scatter_(1, query_pos, keys)
        targets = torch.full_like(inputs, IGNORE_INDEX).scatter_(1, query_pos, values)
        return Batch(inputs, targets)

    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        context = 2 * self.num_pairs
        for b, row in enumerate(inputs.tolist()):
            table = dict(zip(row[0:context:2], row[1:context:2], strict=True))
            for t in range(context, len(row)):
                if row[t] in table:
                    out[b, t] = table[row[t]]
        return out
