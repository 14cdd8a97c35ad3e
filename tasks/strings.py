"""Shared base of the string tasks of Jelassi et al. 2024 (`copy`, `lookup`).

Both write strings over an alphabet of V-4 letters framed by four special tokens, as in the
paper's `$ string | ... .` format: BOS `$`, separator `|`, end `.` and padding `*` after the
end. String lengths are drawn per example in [min_len, max_len]; 0 means "as long as fits" for
max_len and "equal to max_len" for min_len, so the default strings fill the sequence and
`at_length` lengthens them with it (an explicit length stays as given).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import Task


@dataclass
class StringTask(Task):
    """Alphabet, special tokens and per-example string lengths (not a registered task)."""

    vocab_size: int = 30
    seq_len: int = 64
    min_len: int = 0
    max_len: int = 0

    SPECIALS = 4

    @property
    def alphabet(self) -> int:
        return self.vocab_size - self.SPECIALS

    @property
    def bos(self) -> int:
        return self.vocab_size - 4

    @property
    def sep(self) -> int:
        return self.vocab_size - 3

    @property
    def eos(self) -> int:
        return self.vocab_size - 2

    @property
    def pad(self) -> int:
        return self.vocab_size - 1

    def token_names(self) -> dict[int, str]:
        return {self.bos: "$", self.sep: "|", self.eos: ".", self.pad: "*"}

    # -- lengths ----------------------------------------------------------------------------
    def longest_fitting(self) -> int:
        """The longest string the layout fits in seq_len."""
        raise NotImplementedError

    def shortest_allowed(self) -> int:
        """The shortest string the task can use (1 for copying)."""
        return 1

    def length_range(self) -> tuple[int, int]:
        high = self.max_len or self.longest_fitting()
        return (self.min_len or high), high

    def draw_lengths(self, n: int, generator: torch.Generator) -> Tensor:
        low, high = self.length_range()
        return sampling.randint(low, high + 1, (n,), generator)  # (n,)

    def validate(self) -> None:
        super().validate()
        self.check(
            self.alphabet >= 2,
            f"vocab_size must be >= {self.SPECIALS + 2} (2 letters + {self.SPECIALS} special "
            f"tokens), got {self.vocab_size}",
        )
        self.check(self.min_len >= 0 and self.max_len >= 0, "min_len and max_len must be >= 0")
        low, high = self.length_range()
        fits, shortest = self.longest_fitting(), self.shortest_allowed()
        self.check(
            high <= fits,
            f"strings of length {high} do not fit in seq_len {self.seq_len} (at most {fits} here)",
        )
        self.check(
            shortest <= low <= high,
            f"need {shortest} <= min_len <= max_len, got string lengths {low}..{high} "
            f"(seq_len {self.seq_len})",
        )
