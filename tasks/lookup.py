"""n-gram lookup (Jelassi et al. 2024): find an n-gram in a string, output what follows it.

A random string s holds the query n-gram exactly once (so the answer is unambiguous), with at
least `answer_len` letters after it. The model must output those `answer_len` letters, then
the end token, teacher-forced like `copy`. The paper's two variants:

- `key_position=prefix`: `$ q | s | a .` -- the query comes first, so a model can watch for it
  while reading the string (fixed-state models can solve this one).
- `key_position=suffix`: `$ s | q a .` -- the query comes after the string, so the whole string
  must be kept (this is where fixed-state models fail).

Worked example (vocab_size 8, seq_len 14, suffix, ngram 2, answer_len 1, string length 6;
letters 0..3, `$`=4, `|`=5, `.`=6, `*`=7; "1 3" occurs once in s, followed by 0):

    inputs   $  2  1  3  0  2  2  |  1  3  0  .  *  *
    targets  -  -  -  -  -  -  -  -  -  0  .  -  -  -      (- = unscored)

Default: 26 letters, 3-grams, one answer letter, suffix key, strings that fill the sequence;
`at_length` lengthens the string with the sequence and keeps ngram and answer_len.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.errors import UserError
from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch
from seqbench.tasks.layout import column, grid, next_token_targets, pack
from seqbench.tasks.registry import TASKS
from seqbench.tasks.strings import StringTask

KEY_POSITIONS = ("prefix", "suffix")
MAX_REDRAWS = 100  # a string without a usable unique n-gram is redrawn, this many times at most


@TASKS.register("lookup")
@dataclass
class Lookup(StringTask):
    name = "lookup"
    description = "n-gram lookup (Jelassi et al.): output the letters after a query n-gram"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("recall", "copying")

    ngram: int = 3
    answer_len: int = 1
    key_position: str = "suffix"

    def framing(self) -> int:
        """Tokens besides the string: specials, the query and the answer."""
        specials = 4 if self.key_position == "prefix" else 3
        return specials + self.ngram + self.answer_len

    def longest_fitting(self) -> int:
        return self.seq_len - self.framing()

    def shortest_allowed(self) -> int:
        return self.ngram + self.answer_len

    def validate(self) -> None:
        self.check(
            self.key_position in KEY_POSITIONS,
            f"key_position must be one of {', '.join(KEY_POSITIONS)}, got {self.key_position!r}",
        )
        self.check(self.ngram >= 1, f"ngram must be >= 1, got {self.ngram}")
        self.check(self.answer_len >= 1, f"answer_len must be >= 1, got {self.answer_len}")
        super().validate()
        self.check(
            self.ngram * math.log2(self.alphabet) < 62,
            f"{self.ngram}-grams over {self.alphabet} letters are too many to index exactly "
            "(alphabet ** ngram must stay below 2**62)",
        )

    # -- generation -------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> Batch:
        text, lengths, start = self._strings_with_query(n, generator)
        k, width = self.answer_len, text.shape[1]
        span = start[:, None] + torch.arange(self.ngram + k)  # (n, ngram + k)
        query_answer = text.gather(1, span.clamp(max=width - 1))  # (n, ngram + k)
        query, answer = query_answer[:, : self.ngram], query_answer[:, self.ngram :]
        one = torch.ones(n, dtype=torch.long)
        no, yes = torch.zeros_like(text), torch.ones_like(text)
        last_only = torch.zeros_like(query)
        last_only[:, -1] = 1
        if self.key_position == "prefix":
            parts = [column(self.bos, n), query, column(self.sep, n), text, column(self.sep, n)]
            flags = [column(0, n), torch.zeros_like(query), column(0, n), no, column(1, n)]
            sizes = [one, self.ngram * one, one, lengths, one]
        else:
            parts = [column(self.bos, n), text, column(self.sep, n), query]
            flags = [column(0, n), no, column(0, n), last_only]
            sizes = [one, lengths, one, self.ngram * one]
        parts += [answer, column(self.eos, n)]
        flags += [yes[:, :k], column(0, n)]
        sizes = torch.stack([*sizes, k * one, one], dim=1)  # (n, P)
        inputs, _ = pack(grid(parts), sizes, self.seq_len, self.pad)
        score_next, _ = pack(grid(flags), sizes, self.seq_len, 0)
        return Batch(inputs, next_token_targets(inputs, score_next.bool()))

    def _strings_with_query(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Strings (n, W), their lengths (n,) and the start (n,) of a unique query n-gram.

        Rows where no n-gram is unique are redrawn (rare unless the alphabet is tiny).
        """
        width = self.length_range()[1]
        text = torch.zeros(n, width, dtype=torch.long)
        lengths = torch.zeros(n, dtype=torch.long)
        start = torch.full((n,), -1, dtype=torch.long)
        todo = torch.arange(n)
        for _ in range(MAX_REDRAWS):
            m = len(todo)
            lengths[todo] = self.draw_lengths(m, g)
            text[todo] = sampling.randint(0, self.alphabet, (m, width), g)
            start[todo] = self._pick_unique(text[todo], lengths[todo], g)
            todo = todo[start[todo] < 0]
            if len(todo) == 0:
                return text, lengths, start
        raise UserError(
            f"{self.name}: strings over {self.alphabet} letters rarely hold a unique "
            f"{self.ngram}-gram; raise vocab_size or ngram"
        )

    def _pick_unique(self, text: Tensor, lengths: Tensor, g: torch.Generator) -> Tensor:
        """(m,) start of a random n-gram that occurs once and has an answer after it; -1 if none."""
        width = text.shape[1]
        windows = width - self.ngram + 1
        place = self.alphabet ** torch.arange(self.ngram)  # (ngram,)
        codes = text.unfold(1, self.ngram, 1).mul(place).sum(-1)  # (m, windows)
        starts = torch.arange(windows)
        inside = starts + self.ngram <= lengths[:, None]  # (m, windows)
        codes = torch.where(inside, codes, -1 - starts)  # windows past the end never match
        once = sampling.occurrence_count(codes) == 1
        has_answer = starts + self.ngram + self.answer_len <= lengths[:, None]
        return sampling.choose_where(inside & once & has_answer, g)

    # -- reference --------------------------------------------------------------------------
    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        n, k = self.ngram, self.answer_len
        for b, row in enumerate(inputs.tolist()):
            first_sep = row.index(self.sep)
            if self.key_position == "prefix":
                query = row[1 : 1 + n]
                ask = row.index(self.sep, first_sep + 1)  # predicts answer[0]
                text = row[first_sep + 1 : ask]
            else:
                text = row[1:first_sep]
                query = row[first_sep + 1 : first_sep + 1 + n]
                ask = first_sep + n
            hits = [i for i in range(len(text) - n + 1) if text[i : i + n] == query]
            if len(hits) != 1:
                continue
            answer = [*text[hits[0] + n : hits[0] + n + k], self.eos]
            for i, tok in enumerate(answer):
                out[b, ask + i] = tok
        return out
