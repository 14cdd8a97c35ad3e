"""Counting on the meta device: the batched scans and the op shortcuts count exactly what the
loops count, and a count issues no more ops at 64k tokens than at 1k (benchmarks/bench_counted.py
times it)."""

from __future__ import annotations

import contextlib

import pytest

import seqbench.harness.profile.meta as meta
from seqbench.architectures import PRESETS, build_config
from seqbench.architectures.scans.counting import loops_on_meta
from seqbench.harness.profile.meta import count_on_meta
from seqbench.harness.profile.points import PointOptions, make_spec

TINY = {"d_model": 32}


def length_for(arch: str) -> int:
    """Several chunks of every scan (8, 32 and 64 steps) and a partial last chunk of each; for
    Mamba-3, more than one of its checkpointed groups of 512 steps."""
    return 601 if "mamba3" in build_config(arch, vocab_size=64).layer_pattern else 97


COUNTS = (
    "flops_per_step",
    "flops_forward",
    "flops_by_op",
    "saved_activations",
    "state_bytes",
    "state_bytes_per_layer",
    "parameters",
)


def assert_same_counts(fast: dict, reference: dict) -> None:
    assert fast["flops_per_step"] > 0 and fast["saved_activations"] > 0
    for key in COUNTS:
        assert fast[key] == reference[key], key


@pytest.mark.parametrize("arch", sorted(PRESETS.names()))
def test_batched_scans_count_what_their_loops_count(arch: str) -> None:
    spec = make_spec("counted", arch, TINY, length_for(arch), PointOptions())
    fast = count_on_meta(spec)
    with loops_on_meta():
        assert_same_counts(fast, count_on_meta(spec))


@pytest.mark.parametrize("arch", sorted(PRESETS.names()))
def test_the_meta_shortcuts_change_no_count(arch: str, monkeypatch) -> None:
    spec = make_spec("counted", arch, TINY, length_for(arch), PointOptions())
    fast = count_on_meta(spec)
    monkeypatch.setattr(meta, "MetaShortcuts", contextlib.nullcontext)
    assert_same_counts(fast, count_on_meta(spec))


@pytest.mark.parametrize("arch", sorted(PRESETS.names()))
def test_a_count_issues_no_more_ops_at_64k_tokens_than_at_1k(arch: str, monkeypatch) -> None:
    """No loop over time steps or chunks on meta. The LRU's two-level scan recurses once per
    factor of its chunk (64) in length: logarithmic, hence the 2x allowance."""
    ops = [0]

    class Counting(meta.MetaShortcuts):  # the innermost mode: it sees every op
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ops[0] += 1
            return super().__torch_dispatch__(func, types, args, kwargs)

    monkeypatch.setattr(meta, "MetaShortcuts", Counting)
    per_length = {}
    for length in (1024, 65536):
        ops[0] = 0
        count_on_meta(make_spec("counted", arch, TINY, length, PointOptions()))
        per_length[length] = ops[0]
    assert 0 < per_length[65536] <= 2 * per_length[1024]
