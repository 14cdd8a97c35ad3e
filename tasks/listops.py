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

Generation is vectorised over the batch, one step per tree level (at most max_depth): grow the
levels top-down, evaluate bottom-up with scatter reductions, then place every token by its
subtree size. LRA's depth 10 and 10 arguments are the defaults; the default min_len is a
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
from tasks import sampling
from tasks.base import IGNORE_INDEX, Batch, Task
from tasks.registry import TASKS

OPS = ("[MIN", "[MAX", "[MED", "[SM")
FIRST_OP, END, PAD, EQUALS = 10, 14, 15, 16
MAX_ROUNDS = 64  # redraw rounds before giving up on a too-narrow length window


@dataclass
class Level:
    """One depth of a batch of trees: node owner (example), parent index and shape."""

    example: Tensor  # (k,) which candidate tree each node belongs to
    parent: Tensor  # (k,) index of the parent in the level above (unused for roots)
    is_op: Tensor  # (k,) bool
    value: Tensor | None = None  # (k,) after evaluation
    size: Tensor | None = None  # (k,) tokens in the subtree
    op: Tensor | None = None  # (k,) operator id 0..3


@TASKS.register("listops")
@dataclass
class ListOps(Task):
    name = "listops"
    description = "ListOps (LRA): evaluate nested MIN/MAX/MED/SUM-mod-10 expressions"

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

    # -- generation ------------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> Batch:
        low, high = self.length_window
        inputs = torch.full((n, self.seq_len), PAD, dtype=torch.long)
        targets = torch.full((n, self.seq_len), IGNORE_INDEX, dtype=torch.long)
        inputs[:, -1] = EQUALS
        done = 0
        for _ in range(MAX_ROUNDS):
            # Enough candidates for one round in most calls: 1.3x the expected need plus slack.
            m = min(math.ceil((1.3 * (n - done) + 8) / self.acceptance), 1 << 16)
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
        pilot = 512
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
        levels, alive = self._grow(m, low, high, g)
        levels = _trees(levels, alive)  # drop the trees that outgrew the window first
        self._evaluate(levels, g)
        size = levels[0].size
        levels = _trees(levels, (size >= low) & (size <= high))
        return self._write(levels, high), levels[0].value

    def _grow(
        self, m: int, min_len: int, high: int, g: torch.Generator
    ) -> tuple[list[Level], Tensor]:
        """Top-down: node kinds level by level; a tree that must exceed `high` tokens dies.

        Rejecting early changes nothing in what is accepted: a tree that cannot fit is dropped
        either way, and a root digit (one token) is drawn only when min_len allows it.
        """
        example, parent = torch.arange(m), torch.zeros(m, dtype=torch.long)
        known = torch.zeros(m, dtype=torch.float64)  # tokens of the nodes drawn so far
        alive = torch.ones(m, dtype=torch.bool)
        levels = []
        for depth in range(1, self.max_depth + 1):
            k = len(example)
            is_op = torch.rand(k, generator=g) < self.op_prob
            if depth == self.max_depth:
                is_op.zero_()
            elif depth == 1 and min_len > 1:
                is_op.fill_(True)  # a lone digit would be rejected: skip drawing it
            n_args = torch.where(is_op, sampling.randint(2, self.max_args + 1, (k,), g), 0)
            levels.append(Level(example, parent, is_op))
            own = 1.0 + is_op.float()  # a digit, or an operator and its `]`
            least = known + torch.bincount(example, weights=own + n_args, minlength=m)
            known += torch.bincount(example, weights=own, minlength=m)
            alive &= least <= high  # every pending argument adds at least one token
            child_parent = torch.repeat_interleave(torch.arange(k), n_args * alive[example])
            example, parent = example[child_parent], child_parent
            if len(example) == 0:
                break
        return levels, alive

    def _evaluate(self, levels: list[Level], g: torch.Generator) -> None:
        """Bottom-up: every node's value, subtree size and operator."""
        below: Level | None = None
        for level in reversed(levels):
            k = len(level.example)
            level.op = sampling.randint(0, len(OPS), (k,), g)
            digit = sampling.randint(0, 10, (k,), g)
            if below is None:
                op_value, op_size = digit, torch.ones(k, dtype=torch.long)
            else:
                op_value = _apply_ops(level.op, below.parent, below.value, k)
                args_size = torch.zeros(k, dtype=torch.long)
                op_size = 2 + args_size.scatter_add_(0, below.parent, below.size)
            level.value = torch.where(level.is_op, op_value, digit)
            level.size = torch.where(level.is_op, op_size, 1)
            below = level

    def _write(self, levels: list[Level], high: int) -> Tensor:
        """Top-down: each node's position from its parent's and its elder siblings' sizes."""
        trees = len(levels[0].example)
        rows = torch.full((trees, high), PAD, dtype=torch.long)
        flat = rows.view(-1)
        position = high - levels[0].size  # (trees,) right-aligned start of each root
        for depth, level in enumerate(levels):
            at = level.example * high + position  # flat index of the node's first token
            flat.scatter_(0, at, torch.where(level.is_op, FIRST_OP + level.op, level.value))
            ops = level.is_op
            flat.scatter_(0, (at + level.size - 1)[ops], torch.full_like(at[ops], END))
            if depth + 1 < len(levels):
                child = levels[depth + 1]
                position = position[child.parent] + 1 + _elder_sibling_tokens(child)
        return rows

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
                    stack[-1].append(_reference_op(op - FIRST_OP, args))
                elif tok == EQUALS and len(stack) == 1 and len(stack[0]) == 1:
                    out[b, t] = stack[0][0]
        return out


def _reference_op(op: int, args: list[int]) -> int:
    ordered = sorted(args)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2
    return (min(args), max(args), median, sum(args) % 10)[op]


def _apply_ops(op: Tensor, parent: Tensor, value: Tensor, k: int) -> Tensor:
    """(k,) each node's operator applied to its children (child i belongs to parent[i])."""
    low = torch.full((k,), 9, dtype=torch.long).scatter_reduce_(0, parent, value, "amin")
    high = torch.zeros(k, dtype=torch.long).scatter_reduce_(0, parent, value, "amax")
    total = torch.zeros(k, dtype=torch.long).scatter_add_(0, parent, value) % 10
    # Median: sort children by (parent, value); the middle one(s) of each parent's run.
    ordered = value[torch.argsort(parent * 16 + value)]
    count = torch.bincount(parent, minlength=k)  # (k,)
    start = count.cumsum(0) - count
    last = max(len(value) - 1, 0)
    lo = (start + (count - 1).clamp(min=0) // 2).clamp(max=last)
    hi = (start + count // 2).clamp(max=last)
    median = (ordered[lo] + ordered[hi]) // 2 if len(value) else torch.zeros(k, dtype=torch.long)
    return torch.stack([low, high, median, total]).gather(0, op[None])[0]


def _trees(levels: list[Level], keep: Tensor) -> list[Level]:
    """Only the nodes of the kept trees (keep: (trees,) bool), with trees and parents renumbered."""
    new_tree = keep.long().cumsum(0) - 1
    out: list[Level] = []
    above: Tensor | None = None  # which nodes of the level above were kept
    for level in levels:
        mine = keep[level.example]  # (k,)
        parent = level.parent[mine]
        if above is not None:
            parent = (above.long().cumsum(0) - 1)[parent]
        rest = (None if x is None else x[mine] for x in (level.value, level.size, level.op))
        out.append(Level(new_tree[level.example[mine]], parent, level.is_op[mine], *rest))
        above = mine
    return out


def _elder_sibling_tokens(level: Level) -> Tensor:
    """(k,) tokens of the siblings before each node (children of one parent are contiguous)."""
    before = level.size.cumsum(0) - level.size  # (k,) exclusive prefix over the whole level
    count = torch.bincount(level.parent)
    first_child = count.cumsum(0) - count  # (parents,)
    return before - before[first_child[level.parent]]
