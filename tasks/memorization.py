"""Memorization (MAD-lab, Poli et al. 2024): recall values of a fixed key-value map.

One key-to-value map is fixed for the task (drawn from `map_seed`, not from the data seed), so
it cannot be read from the context: the model must store it in its weights. A sequence is
`key insert` pairs; the target at each insert token is that key's value. MAD's layout: the
insert token is V-1, keys are the lower half of the other tokens and values the upper half,
each key paired with one value by a seeded random bijection. Optional noise pairs (two tokens
from a separate noise vocabulary, probability `frac_noise`) are unscored.

Worked example (vocab_size 9; keys 0..3, values 4..7, `+` = insert 8; suppose map_seed
gives the map 0->6, 1->4, 2->7, 3->5):

    inputs   2  +  0  +  2  +  3  +
    targets  -  7  -  6  -  7  -  5      (- = unscored)

MAD's default is vocab 256 (127 facts to store), length 32, and the test is the same map at
the same length; `at_length` keeps the map and vocabulary.

`shared_tokens`: keys and values are the same tokens (the map is a seeded permutation of all
plain tokens, V − 1 facts). With MAD's disjoint halves a key's input embedding is used for
nothing else, so it can hold the key's value outright and any model memorises any map in its
embedding table (measured: d_model 32 memorises 2047 facts in 400 steps, dense and MoE
alike). With shared tokens and tied embeddings (`--set tie_embeddings=true`) a token's one
embedding is also its output, so the map has to be computed by the layers — where an MoE's
extra parameters can hold more of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.noise import check_noise_knobs, noise_slots, noise_tokens
from seqbench.tasks.registry import TASKS


@TASKS.register("memorization")
@dataclass
class Memorization(Task):
    name = "memorization"
    description = "memorization (MAD): recall values of a fixed key-value map stored in weights"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("memorization",)

    vocab_size: int = 256
    seq_len: int = 32
    noise_vocab_size: int = 0
    frac_noise: float = 0.0
    map_seed: int = 12345
    shared_tokens: bool = False

    @property
    def insert(self) -> int:
        return self.vocab_size - 1

    @property
    def plain_vocab(self) -> int:
        return self.vocab_size - 1 - self.noise_vocab_size

    @property
    def key_vocab(self) -> int:
        return self.plain_vocab if self.shared_tokens else self.plain_vocab // 2

    @cached_property
    def table(self) -> Tensor:
        """(key_vocab,) the fixed map: table[key] = value, a seeded bijection onto values."""
        g = torch.Generator().manual_seed(self.map_seed)
        first = 0 if self.shared_tokens else self.key_vocab  # the values' first token
        values = first + torch.randperm(self.plain_vocab - first, generator=g)
        return values[: self.key_vocab]

    def token_names(self) -> dict[int, str]:
        return {self.insert: "+"}

    def validate(self) -> None:
        super().validate()
        check_noise_knobs(self, self.noise_vocab_size, self.frac_noise)
        self.check(
            self.key_vocab >= 1,
            f"vocab_size {self.vocab_size} leaves no key tokens "
            f"(need >= {self.noise_vocab_size + 3})",
        )
        self.check(
            self.seq_len >= 2 and self.seq_len % 2 == 0,
            f"seq_len must be even and >= 2 (key/insert pairs), got {self.seq_len}",
        )

    def generate(self, n: int, generator: torch.Generator) -> Batch:
        g, pairs = generator, self.seq_len // 2
        keys = sampling.randint(0, self.key_vocab, (n, pairs), g)  # (n, P)
        noise = noise_slots(n, pairs, self.frac_noise, pairs, g)  # (n, P)
        filler = noise_tokens(self.plain_vocab, self.noise_vocab_size, (n, pairs, 2), g)
        facts = torch.stack([keys, torch.full_like(keys, self.insert)], dim=2)  # (n, P, 2)
        inputs = torch.where(noise[:, :, None], filler, facts).view(n, self.seq_len)
        answers = torch.where(noise, IGNORE_INDEX, self.table[keys])  # (n, P)
        targets = torch.stack([torch.full_like(answers, IGNORE_INDEX), answers], dim=2)
        return Batch(inputs, targets.view(n, self.seq_len))

    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        table = self.table.tolist()
        for b, row in enumerate(inputs.tolist()):
            for t in range(1, len(row)):
                if row[t] == self.insert and row[t - 1] < self.key_vocab:
                    out[b, t] = table[row[t - 1]]
        return out
