"""Vectorised ListOps trees: grow a batch level by level, keep some, evaluate, write as tokens.

A batch of trees is a list of levels (depth 1 = roots). Each level holds, for its k nodes, the
tree it belongs to and its parent's index in the level above; the children of one parent are
contiguous and in order, which is what lets sums over siblings be prefix sums. Every loop below
runs over levels (at most max_depth), never over tokens or trees.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling

N_OPS = 4  # MIN, MAX, MED, SM, as token ids FIRST_OP .. FIRST_OP + 3
FIRST_OP, END = 10, 14


@dataclass
class Level:
    """The nodes at one depth of a batch of trees."""

    tree: Tensor  # (k,) which tree each node belongs to
    parent: Tensor  # (k,) index of the parent in the level above (0 for roots)
    is_op: Tensor  # (k,) bool: an operator (else a digit)
    token: Tensor | None = None  # (k,) first token: the operator or the digit
    value: Tensor | None = None  # (k,) the subtree's value
    size: Tensor | None = None  # (k,) the subtree's tokens
    offset: Tensor | None = None  # (k,) position after the parent's start: 1 + elder siblings


@dataclass(frozen=True)
class Shape:
    """LRA's tree law: below max_depth a node is an operator with op_prob, with 2..max_args."""

    max_depth: int
    max_args: int
    op_prob: float


def grow(shape: Shape, m: int, min_len: int, high: int, g: torch.Generator) -> tuple[list, Tensor]:
    """m trees' node kinds, and each tree's token count (m,), or high + 1 once it cannot fit.

    A finished tree's running lower bound is exact (its size), so the caller applies the
    length window at once. Dropping a tree that must exceed `high` early changes nothing in
    what is accepted, nor does skipping a root digit when min_len > 1 (it would be rejected).
    """
    tree, parent = torch.arange(m), torch.zeros(m, dtype=torch.long)
    least = torch.ones(m, dtype=torch.float64)  # tokens each tree has at the very least
    alive = torch.ones(m, dtype=torch.bool)
    spread = shape.max_args - 1  # argument counts 2 .. max_args
    levels = []
    for depth in range(1, shape.max_depth + 1):
        k = len(tree)
        # One uniform decides both: an operator when u < op_prob; u / op_prob is then uniform
        # again and picks the argument count.
        u = torch.rand(k, generator=g)
        if depth == 1 and min_len > 1:
            u = u * shape.op_prob  # every root is an operator
        is_op = u < shape.op_prob
        if depth == shape.max_depth:
            is_op.zero_()
        n_args = (2 + (u * (spread / shape.op_prob)).long().clamp_(max=spread - 1)) * is_op
        levels.append(Level(tree, parent, is_op))
        # A node counted as one token becomes an operator (+1 for its `]`) with n_args
        # arguments of at least one token each.
        least += torch.bincount(tree, weights=is_op + n_args, minlength=m)
        alive &= least <= high
        parent = torch.repeat_interleave(torch.arange(k), n_args * alive[tree])  # (k',)
        tree = tree[parent]
        if len(tree) == 0:
            break
    return levels, torch.where(alive, least, high + 1)


def select(levels: list[Level], keep: Tensor) -> list[Level]:
    """Only the nodes of the kept trees (keep: (trees,) bool), trees and parents renumbered."""
    new_tree = keep.long().cumsum(0) - 1
    out: list[Level] = []
    renumber: Tensor | None = None  # new index of each node of the level above
    for level in levels:
        mine = keep[level.tree]  # (k,)
        if not mine.any():
            break  # the kept trees are all shallower: no deeper level is needed
        parent = level.parent[mine]
        if renumber is not None:
            parent = renumber[parent]
        out.append(Level(new_tree[level.tree[mine]], parent, level.is_op[mine]))
        renumber = mine.long().cumsum(0) - 1
    return out


def evaluate(levels: list[Level], g: torch.Generator) -> None:
    """Bottom-up: each node's first token, value and size, and each child's offset."""
    below: Level | None = None
    for level in reversed(levels):
        k = len(level.tree)
        draw = sampling.randint(0, 10 * N_OPS, (k,), g)  # the operator and the digit at once
        op, digit = draw // 10, draw % 10
        level.token = torch.where(level.is_op, FIRST_OP + op, digit)
        if below is None:
            level.value, level.size = digit, torch.ones(k, dtype=torch.long)
        else:
            op_value, arg_tokens = _reduce_children(op, below, k)
            level.value = torch.where(level.is_op, op_value, digit)
            level.size = torch.where(level.is_op, 2 + arg_tokens, 1)
        below = level


def _reduce_children(op: Tensor, below: Level, k: int) -> tuple[Tensor, Tensor]:
    """(k,) each parent's operator on its children's values, and its children's tokens.

    Also sets each child's offset. Children are sorted by (parent, value) once: the first of
    a parent's run is the min, the last the max, the middle one(s) the median, and prefix sums
    give the sum; prefix sums of sizes give the tokens before each child.
    """
    assert below.value is not None and below.size is not None
    count = torch.bincount(below.parent, minlength=k)  # (k,)
    start = count.cumsum(0) - count
    last = len(below.tree) - 1
    runs = torch.stack([start, start + count - 1, start + (count - 1) // 2, start + count // 2])
    runs = runs.clamp_(0, last)  # (4, k); a leaf (no children) reads garbage, masked later
    ordered = below.value[torch.argsort(below.parent * 16 + below.value)]
    low, high, mid_low, mid_high = ordered[runs]
    prefix = ordered.cumsum(0)
    total = prefix[runs[1]] - prefix[runs[0]] + low
    table = torch.stack([low, high, (mid_low + mid_high) // 2, total % 10])  # (4, k)
    sizes = below.size.cumsum(0)
    before = sizes - below.size  # tokens of the level before each child
    below.offset = 1 + before - before[start[below.parent]]
    return table.gather(0, op[None])[0], sizes[runs[1]] - sizes[runs[0]] + below.size[runs[0]]


def write(levels: list[Level], width: int, fill: int) -> Tensor:
    """(trees, width) token rows: each tree in prefix order, right-aligned after `fill`."""
    root = levels[0]
    assert root.size is not None
    rows = torch.full((len(root.tree), width), fill, dtype=torch.long)
    flat = rows.view(-1)
    position = width - root.size  # (trees,) where each root starts
    for depth, level in enumerate(levels):
        if depth:
            assert level.offset is not None
            position = position[level.parent] + level.offset
        at = level.tree * width + position  # flat index of each node's first token
        flat[at] = level.token
        flat[(at + level.size - 1)[level.is_op]] = END
    return rows


def apply_ops(op: Tensor, parent: Tensor, value: Tensor, k: int) -> Tensor:
    """(k,) operator op[p] on the values whose parent is p; `parent` must be non-decreasing.

    The fast path on its own, for tests against a plain reference.
    """
    level = Level(tree=parent, parent=parent, is_op=torch.ones_like(parent, dtype=torch.bool))
    level.value, level.size = value, torch.ones_like(value)
    return _reduce_children(op, level, k)[0]
