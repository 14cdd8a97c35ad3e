"""The memory methods: saved-tensor accounting, RSS window, and counted-vs-measured equality."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqbench.harness.common.outcome import is_oom_error
from seqbench.harness.profile.memory import RssWindow, SavedTensorBytes
from seqbench.harness.profile.meta import count_on_meta
from seqbench.harness.profile.points import PointOptions, build_model, make_spec, random_tokens
from seqbench.harness.profile.train_step import memory_step

TINY = {"d_model": 32, "n_layers": 2}


def test_saved_bytes_count_each_storage_once_and_leave_parameters_out() -> None:
    layer = nn.Linear(16, 16)
    saved = SavedTensorBytes.for_model(layer)
    x = torch.randn(8, 16, requires_grad=True)
    with saved.track():
        z = layer(x).exp()  # linear saves x (and its weight: left out); exp saves its output
        w = z.view(16, 8).sin()  # sin saves its input: a view of z's storage, counted once
    assert saved.total_bytes == x.nelement() * 4 + z.nelement() * 4
    assert saved.n_saved >= 4
    w.sum().backward()  # the hooks returned the tensors untouched
    assert x.grad is not None


def test_a_branch_dropped_in_the_forward_holds_no_saved_bytes() -> None:
    """Its nodes die with its output, before backward, and free what they saved; a key is
    then not taken for the same storage when a later one reuses its address."""
    saved = SavedTensorBytes()
    x = torch.randn(8, 16, requires_grad=True)
    with saved.track():
        kept = (x * 2).exp()  # exp saves its output
        for _ in range(3):  # sin saves its input, a new storage each time, soon freed
            dropped = (x * 3).sin()
            del dropped
    assert saved.n_saved == 4
    assert saved.total_bytes == kept.nelement() * 4


@pytest.mark.parametrize("impl", ["sdpa", "reference"])
def test_counted_on_meta_equals_measured_on_cpu(impl: str) -> None:
    """The on-paper count is the measurement, minus the allocation."""
    overrides = {**TINY, "attention.impl": impl}
    measured_spec = make_spec("train", "mha", overrides, 128, PointOptions())
    model = build_model(measured_spec, "cpu")
    tokens = random_tokens(measured_spec, 129, "cpu")
    measured = memory_step(model, tokens, torch.device("cpu"))
    counted = count_on_meta(make_spec("counted", "mha", overrides, 128, PointOptions()))
    assert counted["saved_activations"] == measured["saved_activations"] > 0


def test_fused_attention_saves_linear_memory_and_explicit_softmax_quadratic() -> None:
    saved = {}
    for impl in ("sdpa", "reference"):
        for L in (256, 512):
            spec = make_spec("counted", "mha", {**TINY, "attention.impl": impl}, L, PointOptions())
            saved[impl, L] = count_on_meta(spec)["saved_activations"]
    assert saved["sdpa", 512] == pytest.approx(2 * saved["sdpa", 256], rel=1e-4)  # + scalars
    assert saved["reference", 512] > 3 * saved["reference", 256]


def test_rss_window_sees_a_large_allocation_and_not_an_empty_block() -> None:
    with RssWindow().measure() as empty:
        pass
    with RssWindow().measure() as window:
        block = torch.ones(16 * 2**20)  # 64 MiB, every page written
        del block
    assert window.delta_bytes is not None and empty.delta_bytes is not None
    assert window.delta_bytes >= 60 * 2**20
    assert empty.delta_bytes < 8 * 2**20


def test_allocation_failures_are_recognised_as_oom() -> None:
    assert is_oom_error(MemoryError())
    assert is_oom_error(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_oom_error(RuntimeError("shape mismatch"))
    assert not is_oom_error(ValueError("can't allocate memory"))
