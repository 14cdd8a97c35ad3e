"""Needle in a haystack over a synthetic vocabulary (the NIAH family of RULER, Hsieh et al. 2024).

The haystack is random filler tokens. Needles `@ key = value` hide in it; at the end come the
queries `? key =` followed by the answer, the needle's value (teacher-forced, every answer
token scored). Keys, values and filler use disjoint token ranges and the markers are their own
tokens, so a needle is always recognisable. RULER's variants are knob settings (`variants`):

- single:     one needle, asked once
- multikey:   `num_keys` needles with distinct keys, one asked; the others are distractors
- multivalue: one key in `num_values` needles; the answer is every value, in haystack order
- multiquery: `num_keys` needles, `num_queries` of them asked one after another

`depth` places the first asked needle at that fraction of the haystack (0 = start, 1 = end;
negative = uniformly random, the default); other needles land uniformly at random. The
haystack is whatever the needles and queries leave of `seq_len`, so `at_length` grows the
haystack and keeps every needle knob.

Worked example (vocab_size 15, seq_len 15, key_len 1, value_len 2, depth 0.5; keys 0..3,
values 4..7, filler 8..11, `@`=12, `=`=13, `?`=14; the haystack is the 5 filler tokens):

    inputs   9  11 @  2  =  5  7  10 9  8  ?  2  =  5  7
    targets  -  -  -  -  -  -  -  -  -  -  -  -  5  7  -      (- = unscored)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.layout import expand_index, next_token_targets
from seqbench.tasks.registry import TASKS


@TASKS.register("niah")
@dataclass
class NeedleInHaystack(Task):
    name = "niah"
    description = "needle in a haystack: recall the value of a key hidden in filler tokens"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("recall", "retrieval")
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "single": {"num_keys": 1, "num_values": 1, "num_queries": 1},
        "multikey": {"num_keys": 4, "num_values": 1, "num_queries": 1},
        "multivalue": {"num_keys": 1, "num_values": 4, "num_queries": 1},
        "multiquery": {"num_keys": 4, "num_values": 1, "num_queries": 4},
    }

    vocab_size: int = 64
    seq_len: int = 128
    num_keys: int = 1
    num_values: int = 1
    num_queries: int = 1
    key_len: int = 2
    value_len: int = 2
    depth: float = -1.0

    # -- vocabulary: keys | values | filler | @ = ? ------------------------------------------
    @property
    def band(self) -> int:
        """Tokens in each of the key, value and filler ranges."""
        return (self.vocab_size - 3) // 3

    @property
    def needle_mark(self) -> int:
        return self.vocab_size - 3

    @property
    def equals(self) -> int:
        return self.vocab_size - 2

    @property
    def query_mark(self) -> int:
        return self.vocab_size - 1

    def token_names(self) -> dict[int, str]:
        return {self.needle_mark: "@", self.equals: "=", self.query_mark: "?"}

    # -- sizes -------------------------------------------------------------------------------
    @property
    def needle_len(self) -> int:
        return self.key_len + self.value_len + 2

    @property
    def query_len(self) -> int:
        return self.key_len + self.num_values * self.value_len + 2

    @property
    def haystack_len(self) -> int:
        needles = self.num_keys * self.num_values * self.needle_len
        return self.seq_len - needles - self.num_queries * self.query_len

    def validate(self) -> None:
        super().validate()
        for knob in ("num_keys", "num_values", "num_queries", "key_len", "value_len"):
            self.check(getattr(self, knob) >= 1, f"{knob} must be >= 1")
        self.check(
            self.num_queries <= self.num_keys,
            f"num_queries {self.num_queries} exceeds num_keys {self.num_keys}",
        )
        self.check(self.band >= 2, f"vocab_size must be >= 9, got {self.vocab_size}")
        self.check(
            self.key_len * math.log2(self.band) < 62 and self.band**self.key_len >= self.num_keys,
            f"{self.band} key tokens cannot make {self.num_keys} distinct keys of "
            f"{self.key_len} tokens (raise vocab_size or key_len)",
        )
        self.check(
            self.haystack_len >= 0,
            f"seq_len {self.seq_len} cannot hold the needles and queries "
            f"(need >= {self.seq_len - self.haystack_len})",
        )
        self.check(
            self.depth <= 1 and math.isfinite(self.depth),
            f"depth must be in [0, 1] (or negative for random), got {self.depth}",
        )

    # -- generation --------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> Batch:
        g, kc, vc = generator, self.num_keys, self.num_values
        codes = sampling.distinct(n, kc, self.band**self.key_len, g)  # (n, Kc) distinct keys
        digits = self.band ** torch.arange(self.key_len)
        keys = codes[:, :, None] // digits % self.band  # (n, Kc, key_len) in [0, band)
        values = self.band + sampling.randint(0, self.band, (n, kc, vc, self.value_len), g)
        needles = self._needles(keys, values)  # (n, Kc * Vc, needle_len)

        # Where the needles go: a gap (filler tokens before it) per needle, in haystack order.
        hay, m = self.haystack_len, kc * vc
        gaps = sampling.randint(0, hay + 1, (n, m), g)  # (n, M)
        if self.depth >= 0:
            gaps[:, 0] = round(self.depth * hay)  # needle 0 = first value of the first key
        gaps, order = gaps.sort(dim=1, stable=True)
        start = gaps + torch.arange(m) * self.needle_len  # (n, M) needle starts, sorted
        body_len = hay + m * self.needle_len
        body = 2 * self.band + sampling.randint(0, self.band, (n, body_len), g)  # filler
        place = start[:, :, None] + torch.arange(self.needle_len)  # (n, M, needle_len)
        body.scatter_(
            1, place.reshape(n, -1), needles.gather(1, expand_index(order, needles)).flatten(1)
        )

        # Queries: keys 0 .. num_queries-1, each answered by its values in haystack order.
        rank = order.argsort(dim=1).view(n, kc, vc)  # (n, Kc, Vc) haystack rank of each needle
        in_order = values.gather(2, expand_index(rank.argsort(dim=2), values))  # (n, Kc, Vc, vlen)
        queries, score_next = self._queries(keys, in_order)
        inputs = torch.cat([body, queries], dim=1)  # (n, L)
        score_next = torch.cat([torch.zeros_like(body, dtype=torch.bool), score_next], dim=1)
        return Batch(inputs, next_token_targets(inputs, score_next))

    def _needles(self, keys: Tensor, values: Tensor) -> Tensor:
        """`@ key = value` for every (key, value): (n, Kc * Vc, needle_len), key-major."""
        n, kc, vc, _ = values.shape
        mark = torch.full((n, kc, vc, 1), self.needle_mark)
        eq = torch.full((n, kc, vc, 1), self.equals)
        key = keys[:, :, None, :].expand(n, kc, vc, self.key_len)
        return torch.cat([mark, key, eq, values], dim=3).view(n, kc * vc, self.needle_len)

    def _queries(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """`? key = v1 v2 ...` for the asked keys, and which positions predict the next token."""
        n, q = keys.shape[0], self.num_queries
        mark = torch.full((n, q, 1), self.query_mark)
        eq = torch.full((n, q, 1), self.equals)
        answer = values[:, :q].flatten(2)  # (n, Q, Vc * vlen)
        tokens = torch.cat([mark, keys[:, :q], eq, answer], dim=2)  # (n, Q, query_len)
        flags = torch.zeros_like(tokens, dtype=torch.bool)
        flags[:, :, self.key_len + 1 : -1] = True  # `=` and every answer token but the last
        return tokens.flatten(1), flags.flatten(1)

    # -- reference ---------------------------------------------------------------------------
    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        kl, vl = self.key_len, self.value_len
        for b, row in enumerate(inputs.tolist()):
            found: dict[tuple[int, ...], list[int]] = {}
            t = 0
            while t < len(row):
                if row[t] == self.needle_mark:
                    key = tuple(row[t + 1 : t + 1 + kl])
                    found.setdefault(key, []).extend(row[t + kl + 2 : t + kl + 2 + vl])
                    t += self.needle_len
                elif row[t] == self.query_mark:
                    ask = t + kl + 1  # the `=` that predicts the first answer token
                    for i, tok in enumerate(found.get(tuple(row[t + 1 : t + 1 + kl]), [])):
                        out[b, ask + i] = tok
                    t += self.query_len
                else:
                    t += 1
        return out
