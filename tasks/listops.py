"""ListOps (Nangia & Bowman 2018; Long Range Arena, Tay et al. 2021): evaluate a nested expression.

Expressions are trees of MIN, MAX, MED (median, rounded down) and SM (sum modulo 10) over the
digits 0-9, written in prefix form: `[MAX 4 3 [MIN 2 3 ] 1 0 ]`. Trees grow as in LRA's
generator: a node above `max_depth` is an operator with probability `op_prob` (LRA: 0.25) with
2..max_args arguments, otherwise a digit; trees whose token count falls outside
[min_len, seq_len - 1] are rejected and redrawn, as LRA keeps lengths in (500, 2000). The
expression is right-aligned after padding and followed by `=`, where the answer digit (token
id = its value) is the only scored target: a 10-way classification read at the end.

Tokens: digits 0-9, `[MIN`=10, `[MAX`=11, `[MED`=12, `[SM`=13, `]`=14, padding `*`=15, `=`=16.

Worked example (seq_len 12, min_len 1):

    inputs   *  *  [MAX  4  3  [MIN  2  3  ]  1  ]  =
    targets  -  -  -     -  -  -     -  -  -  -  -  4      (- = unscored)

Generation is vectorised over the batch, one step per tree level (at most max_depth; see
tasks/listops_trees.py): grow the levels top-down, evaluate bottom-up, then place every token
by its subtree size. LRA's depth 10 and 10 arguments are the defaults; the default min_len is a
quarter of seq_len (LRA: 500 of 2000). `at_length` keeps depth, arguments and op_prob (and an
explicit min_len), so longer sequences hold larger trees from the same distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from seqbench.errors import UserError
from seqbench.tasks import listops_trees as trees
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.listops_trees import END, FIRST_OP
from seqbench.tasks.registry import TASKS

OPS = ("[MIN", "[MAX", "[MED", "[SM")
PAD, EQUALS = 15, 16
MAX_ROUNDS = 64  # redraw rounds before giving up on a too-narrow length window


@TASKS.register("listops")
@dataclass
class ListOps(Task):
    name = "listops"
    description = "ListOps (LRA): evaluate nested MIN/MAX/MED/SUM-mod-10 expressions"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("hierarchical",)

    vocab_size: int = 17
    seq_len: int = 128
    max_depth: int = 10
    max_args: int = 10
    min_len: int = 0
    op_prob: float = 0.25

    @property
    def length_window(self) -> tuple[int, int]:
        high = self.seq_len - 1
        return (self.min_len or max(1, self.seq_len // 4)), high

    def token_names(self) -> dict[int, str]:
        names = {FIRST_OP + i: op for i, op in enumerate(OPS)}
        return {**names, END: "]", PAD: "*", EQUALS: "="}

    def validate(self) -> None:
        super().validate()
        self.check(self.vocab_size >= 17, f"vocab_size must be >= 17, got {self.vocab_size}")
        self.check(self.max_depth >= 1, f"max_depth must be >= 1, got {self.max_depth}")
        self.check(self.max_args >= 2, f"max_args must be >= 2, got {self.max_args}")
        self.check(
            0 < self.op_prob <= 1 and math.isfinite(self.op_prob),
            f"op_prob must be in (0, 1], got {self.op_prob}",
        )
        self.check(self.min_len >= 0, f"min_len must be >= 0, got {self.min_len}")
        low, high = self.length_window
        largest = 1
        for _ in range(self.max_depth - 1):
            largest = 2 + self.max_args * largest
        self.check(
            low <= high and low <= largest,
            f"no expression of {low}..{high} tokens exists with max_depth {self.max_depth} "
            f"and max_args {self.max_args} (seq_len {self.seq_len})",
        )
        self.acceptance  # noqa: B018  a window trees (almost) never reach fails here, not mid-run

    # -- generation ------------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> Batch:
        low, high = self.length_window
        inputs = torch.full((n, self.seq_len), PAD, dtype=torch.long)
        targets = torch.full((n, self.seq_len), IGNORE_INDEX, dtype=torch.long)
        inputs[:, -1] = EQUALS
        done = 0
        for _ in range(MAX_ROUNDS):
            # Enough candidates for one round in most calls: 1.25x the expected need plus slack.
            m = min(math.ceil((1.25 * (n - done) + 4) / self.acceptance), 1 << 16)
            rows, values = self._draw(m, low, high, generator)
            take = min(len(rows), n - done)
            inputs[done : done + take, :-1] = rows[:take]
            targets[done : done + take, -1] = values[:take]
            done += take
            if done == n:
                return Batch(inputs, targets)
        raise self._too_rare()

    @cached_property
    def acceptance(self) -> float:
        """Share of candidate trees in the length window, from a fixed-seed pilot draw.

        Fixed seed: the candidate count per round must depend only on the knobs, never on
        earlier calls, or one seed could give different data.
        """
        low, high = self.length_window
        pilot = 2048
        rows, _ = self._draw(pilot, low, high, torch.Generator().manual_seed(0))
        if len(rows) == 0:
            raise self._too_rare()
        return len(rows) / pilot

    def _too_rare(self) -> UserError:
        low, high = self.length_window
        return UserError(
            f"{self.name}: expressions of {low}..{high} tokens are too rare with max_depth "
            f"{self.max_depth}, max_args {self.max_args}, op_prob {self.op_prob}; "
            "lower min_len or raise op_prob"
        )

    def _draw(self, m: int, low: int, high: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """m candidate trees; the accepted ones as right-aligned rows (a, L-1) and answers (a,)."""
        shape = trees.Shape(self.max_depth, self.max_args, self.op_prob)
        levels, size = trees.grow(shape, m, low, high, g)
        levels = trees.select(levels, (size >= low) & (size <= high))  # before any more work
        if not levels:
            return torch.zeros(0, high, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        trees.evaluate(levels, g)
        return trees.write(levels, high, PAD), levels[0].value

    # -- reference ---------------------------------------------------------------------------
    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        for b, row in enumerate(inputs.tolist()):
            stack: list[list[int]] = [[]]
            for t, tok in enumerate(row):
                if tok < 10:
                    stack[-1].append(tok)
                elif FIRST_OP <= tok < FIRST_OP + len(OPS):
                    stack.append([tok])
                elif tok == END:
                    op, *args = stack.pop()
                    stack[-1].append(reference_op(op - FIRST_OP, args))
                elif tok == EQUALS and len(stack) == 1 and len(stack[0]) == 1:
                    out[b, t] = stack[0][0]
        return out


def reference_op(op: int, args: list[int]) -> int:
    ordered = sorted(args)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2
    return (min(args), max(args), median, sum(args) % 10)[op]
