"""The vectorised helpers against plain references: exact where determined, in law where random."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqbench.tasks import sampling
from seqbench.tasks.layout import next_token_targets, pack
from seqbench.tasks.listops import reference_op
from seqbench.tasks.listops_trees import apply_ops


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("k", "population"), [(3, 5), (2, 7), (3, 50), (16, 4095)])
def test_distinct_rows_are_uniform_ordered_subsets(k: int, population: int) -> None:
    """Both paths (ranking for small populations, Floyd's otherwise) must be uniform."""
    rows = sampling.distinct(20_000, k, population, gen(1))
    assert rows.shape == (20_000, k) and rows.min() >= 0 and rows.max() < population
    assert (rows.sort(dim=1).values.diff(dim=1) > 0).all(), "values in a row are distinct"
    expected = 1 / population
    for column in range(k):  # every value equally likely at every position (order is random)
        share = torch.bincount(rows[:, column], minlength=population).float() / len(rows)
        assert (share - expected).abs().max() < 4 * (expected / len(rows)) ** 0.5 + 1e-3


def test_distinct_ordered_pairs_are_uniform() -> None:
    rows = sampling.distinct(60_000, 2, 4, gen(2))
    counts = torch.bincount(rows[:, 0] * 4 + rows[:, 1], minlength=16).float() / len(rows)
    pairs = [a * 4 + b for a, b in itertools.permutations(range(4), 2)]
    assert (counts[pairs] - 1 / 12).abs().max() < 0.006


def test_weighted_distinct_is_successive_weighted_draws() -> None:
    """P(second = j) = sum_i P(first = i) * w_j / (1 - w_i), as numpy's choice(replace=False)."""
    w = torch.tensor([0.6, 0.3, 0.1])
    picks = sampling.weighted_distinct(w.log().expand(60_000, 3), 2, gen(3))
    first = torch.bincount(picks[:, 0], minlength=3).float() / len(picks)
    second = torch.bincount(picks[:, 1], minlength=3).float() / len(picks)
    expected_second = torch.tensor(
        [sum(w[i] * w[j] / (1 - w[i]) for i in range(3) if i != j) for j in range(3)]
    )
    assert torch.allclose(first, w, atol=0.008)
    assert torch.allclose(second, expected_second, atol=0.008)


def test_choose_where_is_uniform_over_the_mask() -> None:
    mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    picks = sampling.choose_where(mask.repeat(20_000, 1), gen(4)).view(20_000, 2)
    assert (picks[:, 1] == -1).all()
    share = torch.bincount(picks[:, 0], minlength=4).float() / 20_000
    assert share[1] == 0 and (share[[0, 2, 3]] - 1 / 3).abs().max() < 0.015


def test_first_occurrence_and_count_match_loops() -> None:
    codes = torch.randint(0, 6, (50, 30), generator=gen(5))
    first, count = sampling.first_occurrence(codes), sampling.occurrence_count(codes)
    for b, row in enumerate(codes.tolist()):
        assert first[b].tolist() == [row.index(c) for c in row]
        assert count[b].tolist() == [row.count(c) for c in row]


def test_pack_matches_concatenation() -> None:
    g = gen(6)
    pieces = torch.randint(0, 9, (40, 4, 5), generator=g)
    lengths = torch.randint(0, 6, (40, 4), generator=g)
    offset = torch.randint(0, 4, (40,), generator=g)
    out, start = pack(pieces, lengths, 24, fill=-1, offset=offset)
    for b in range(40):
        row = [-1] * offset[b].item()
        for p in range(4):
            assert start[b, p].item() == len(row)
            row += pieces[b, p, : lengths[b, p]].tolist()
        assert out[b].tolist() == row + [-1] * (24 - len(row))


def test_next_token_targets() -> None:
    inputs = torch.tensor([[5, 6, 7, 8]])
    flags = torch.tensor([[False, True, True, True]])
    assert next_token_targets(inputs, flags).tolist() == [[-100, 7, 8, -100]]


def test_listops_vectorised_operators_match_the_reference() -> None:
    g = gen(7)
    parents = 300
    count = torch.randint(1, 11, (parents,), generator=g)
    parent = torch.repeat_interleave(torch.arange(parents), count)
    value = torch.randint(0, 10, (len(parent),), generator=g)
    op = torch.randint(0, 4, (parents,), generator=g)
    fast = apply_ops(op, parent, value, parents).tolist()
    for p in range(parents):
        args = value[parent == p].tolist()
        assert fast[p] == reference_op(op[p].item(), args), (op[p].item(), args)
