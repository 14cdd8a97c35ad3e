"""Vectorised sequence layout: concatenate variable-length pieces per row, then score.

Many tasks are "a string, a separator, a query, an answer" with lengths that vary per
example. Writing each as a grid of pieces (n, P, W) with lengths (n, P) and packing them with
one scatter keeps generation free of per-example Python.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqbench.tasks.base import IGNORE_INDEX


def pack(
    pieces: Tensor, lengths: Tensor, total: int, fill: int, offset: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Write row b's pieces[b, p, :lengths[b, p]] one after another into an (n, total) row.

    pieces (n, P, W), lengths (n, P). The first piece starts at `offset` (n,) (default 0);
    positions no piece covers hold `fill`. Returns the packed (n, total) tensor and the start
    position of every piece (n, P). Lengths must fit: offset + sum(lengths) <= total.
    """
    n, _, w = pieces.shape
    start = lengths.cumsum(dim=1) - lengths  # (n, P) exclusive prefix sum
    if offset is not None:
        start = start + offset[:, None]
    dest = start[:, :, None] + torch.arange(w)  # (n, P, W)
    valid = torch.arange(w) < lengths[:, :, None]  # (n, P, W)
    dest = torch.where(valid, dest, torch.full_like(dest, total))  # spill column for padding
    out = torch.full((n, total + 1), fill, dtype=pieces.dtype)
    out.scatter_(1, dest.reshape(n, -1), pieces.reshape(n, -1))
    return out[:, :total], start


def next_token_targets(inputs: Tensor, score_next: Tensor) -> Tensor:
    """Teacher-forced targets: where score_next[b, t], the target is inputs[b, t + 1]."""
    targets = torch.full_like(inputs, IGNORE_INDEX)
    targets[:, :-1] = torch.where(score_next[:, :-1], inputs[:, 1:], targets[:, :-1])
    return targets


def column(value: int, n: int, width: int = 1) -> Tensor:
    """An (n, width) piece filled with one token id."""
    return torch.full((n, width), value, dtype=torch.long)


def pad_width(piece: Tensor, width: int, fill: int = 0) -> Tensor:
    """Right-pad an (n, w) piece to (n, width) so pieces stack into one grid."""
    n, w = piece.shape
    if w == width:
        return piece
    return torch.cat([piece, torch.full((n, width - w), fill, dtype=piece.dtype)], dim=1)


def grid(pieces: list[Tensor]) -> Tensor:
    """Stack (n, w_i) pieces into an (n, P, max w) grid."""
    width = max(p.shape[1] for p in pieces)
    return torch.stack([pad_width(p, width) for p in pieces], dim=1)


def expand_index(index: Tensor, like: Tensor) -> Tensor:
    """Broadcast an index (n, m) over the trailing dimensions of `like` (n, S, ...) for gather."""
    extra = like.dim() - index.dim()
    return index.view(*index.shape, *([1] * extra)).expand(*index.shape, *like.shape[index.dim() :])
