"""Vectorised random draws shared by the tasks: distinct sets, weighted choices, first repeats.

Every function draws only from the `torch.Generator` it is given, so a task's batch is a pure
function of its seed. None loops over tokens; the loops that remain run over a small number of
picks (Floyd's algorithm) and are vectorised across the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor


def randint(low: int, high: int, shape: tuple[int, ...], g: torch.Generator) -> Tensor:
    """Uniform int64 in [low, high)."""
    return torch.randint(low, high, shape, generator=g)


def gumbel(shape: tuple[int, ...], g: torch.Generator) -> Tensor:
    """Standard Gumbel noise: argmax(log p + gumbel) is a draw from p (the Gumbel-max trick)."""
    u = torch.rand(shape, generator=g).clamp_(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def distinct(n: int, k: int, population: int, g: torch.Generator) -> Tensor:
    """(n, k) rows of k distinct ints from range(population), a uniformly random ordered subset.

    Why two paths: ranking random keys costs n * population, which is wasteful when a few
    picks come from a large vocabulary (Zoology's 16 keys of 4096); Floyd's algorithm costs
    n * k^2 whatever the population. Both give every ordered k-subset the same probability.
    """
    if k > population:
        raise ValueError(f"cannot draw {k} distinct values from {population}")
    if k == 0:
        return torch.zeros(n, 0, dtype=torch.long)
    if k * k >= population:
        return torch.rand(n, population, generator=g).argsort(dim=1)[:, :k]
    return _floyd(n, k, population, g)


def _floyd(n: int, k: int, population: int, g: torch.Generator) -> Tensor:
    """Floyd's sampling of a uniform k-subset, vectorised over n rows, then shuffled."""
    picked = torch.empty(n, k, dtype=torch.long)
    for i, j in enumerate(range(population - k, population)):
        t = torch.randint(0, j + 1, (n,), generator=g)  # (n,)
        seen = (picked[:, :i] == t[:, None]).any(dim=1)  # (n,)
        picked[:, i] = torch.where(seen, torch.full_like(t, j), t)
    order = torch.rand(n, k, generator=g).argsort(dim=1)
    return picked.gather(1, order)


def weighted_distinct(log_weights: Tensor, k: int, g: torch.Generator) -> Tensor:
    """(n, k) successive draws without replacement, P(i) proportional to exp(log_weights[i]).

    Gumbel-top-k: the k largest of log w + Gumbel noise, in decreasing order, are distributed
    exactly as k successive weighted draws without replacement (numpy's choice(replace=False,
    p=...)). `log_weights` is (n, m) or (m,), broadcast to n rows.
    """
    scores = log_weights + gumbel(tuple(log_weights.shape), g)
    return scores.topk(k, dim=-1).indices


def choose_where(mask: Tensor, g: torch.Generator) -> Tensor:
    """(n,) one index per row, uniform among the True entries of mask (n, m); -1 if none."""
    scores = gumbel(tuple(mask.shape), g).masked_fill(~mask, float("-inf"))
    index = scores.argmax(dim=1)
    return torch.where(mask.any(dim=1), index, torch.full_like(index, -1))


def first_occurrence(codes: Tensor) -> Tensor:
    """(n, m) for each entry, the index of the first entry of its row with the same code.

    Sort-based, O(m log m) per row: a stable sort groups equal codes with their original
    order kept, so the head of each group is the earliest occurrence.
    """
    n, m = codes.shape
    sorted_codes, order = codes.sort(dim=1, stable=True)  # (n, m)
    head = torch.ones(n, m, dtype=torch.bool)
    head[:, 1:] = sorted_codes[:, 1:] != sorted_codes[:, :-1]
    slot = torch.arange(m).expand(n, m)
    group_start = torch.where(head, slot, torch.zeros_like(slot)).cummax(dim=1).values
    first_sorted = order.gather(1, group_start)  # (n, m) earliest index, in sorted order
    return torch.empty_like(order).scatter_(1, order, first_sorted)


def occurrence_count(codes: Tensor) -> Tensor:
    """(n, m) how many entries of the row share each entry's code."""
    n, m = codes.shape
    sorted_codes, order = codes.sort(dim=1)  # (n, m)
    head = torch.ones(n, m, dtype=torch.bool)
    head[:, 1:] = sorted_codes[:, 1:] != sorted_codes[:, :-1]
    group = head.long().cumsum(dim=1) - 1  # (n, m) group id in sorted order
    sizes = torch.zeros(n, m, dtype=torch.long).scatter_add_(1, group, torch.ones_like(group))
    return torch.empty_like(order).scatter_(1, order, sizes.gather(1, group))
