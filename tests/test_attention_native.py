"""The C attention kernel against the float64 explicit-softmax reference, and its dispatch."""

from __future__ import annotations

import pytest
import torch

from seqbench.architectures.attention import Attention, attention_reference
from seqbench.architectures.scans import attention_native, native
from seqbench.harness.profile.flops import flop_counter, flops_by_op

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler: kernels not built")

CASES = [  # (B, H, Hkv, L, hd, window)
    (2, 4, 4, 37, 8, None),  # MHA, L not a multiple of the 16 lanes
    (2, 4, 2, 50, 8, None),  # GQA
    (1, 8, 1, 64, 8, None),  # MQA
    (2, 2, 2, 20, 6, None),  # a head smaller than the kernel's 8, zero-padded
    (2, 4, 4, 100, 2, 40),  # sliding window
    (1, 8, 1, 64, 8, 5),  # window with MQA
    (1, 2, 2, 40, 8, 1),  # a window of one: each query sees itself
    (1, 2, 2, 40, 8, 100),  # a window longer than the sequence
    (1, 2, 2, 1, 8, None),  # one token
]


def _inputs(B, H, Hkv, L, hd, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, L, hd, generator=g, dtype=torch.float64)
    k = torch.randn(B, Hkv, L, hd, generator=g, dtype=torch.float64)
    v = torch.randn(B, Hkv, L, hd, generator=g, dtype=torch.float64)
    return q, k, v


@pytest.mark.parametrize("B,H,Hkv,L,hd,window", CASES)
def test_kernel_equals_the_float64_reference(B, H, Hkv, L, hd, window) -> None:
    q, k, v = (t.requires_grad_() for t in _inputs(B, H, Hkv, L, hd))
    ref = attention_reference(q, k, v, window=window)
    grad = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad)
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
    out = attention_native.attention_native(q32, k32, v32, window)
    grads = torch.autograd.grad(out, (q32, k32, v32), grad.float())
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got.double(), want, atol=2e-5, rtol=2e-5)


def test_threads_split_the_work_without_changing_a_bit() -> None:
    q, k, v = (t.float() for t in _inputs(3, 4, 2, 45, 8, seed=1))
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
            out = attention_native.attention_native(qq, kk, vv, None)
            out.square().sum().backward()
            results.append([out, qq.grad, kk.grad, vv.grad])
    finally:
        torch.set_num_threads(before)
    for one, many in zip(*results, strict=True):
        assert torch.equal(one, many)


def _mixer(**kwargs) -> Attention:
    torch.manual_seed(0)
    return Attention(64, n_heads=8, **kwargs)


@pytest.mark.parametrize("window", [None, 7])
def test_the_mixer_runs_the_kernel_and_equals_torch_sdpa(window) -> None:
    x = torch.randn(2, 33, 64)
    fast, torch_path = _mixer(window=window), _mixer(window=window, impl="torch")
    y_fast, y_torch = fast(x), torch_path(x)
    assert fast.kernel_path == native.PATH_NATIVE
    assert torch_path.kernel_path == "torch-sdpa"
    torch.testing.assert_close(y_fast, y_torch, atol=1e-5, rtol=1e-5)
    y_fast.sum().backward()
    y_torch.sum().backward()
    for a, b in zip(fast.parameters(), torch_path.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-4, rtol=1e-4)


def test_other_dtypes_heads_and_no_compiler_use_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(1, 16, 64)
    wide = Attention(64, n_heads=4)  # heads of 16: larger than the kernel's 8
    wide(x)
    assert wide.kernel_path == "torch-sdpa"
    double = _mixer().double()
    double(x.double())
    assert double.kernel_path == "torch-sdpa"
    with flop_counter() as counter:  # a dispatch mode: the counter must see the attention
        _mixer()(x).sum().backward()
    assert any("scaled_dot_product" in op for op in flops_by_op(counter))
    monkeypatch.setattr(native, "library", lambda: None)  # as without a C compiler
    mixer = _mixer()
    mixer(x)
    assert mixer.kernel_path == "torch-sdpa"


def test_a_forked_child_splits_work_over_threads_of_its_own() -> None:
    """The thread pool is made in the parent; a forked child must not wait on its threads."""
    import multiprocessing

    q, k, v = (t.float() for t in _inputs(2, 4, 4, 40, 8, seed=2))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = attention_native.attention_native(q, k, v, None)  # creates the parent's pool
        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_attend_in_child, (q, k, v)).get(timeout=60)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(got, expected)


def _attend_in_child(q, k, v):
    torch.set_num_threads(2)
    return attention_native.attention_native(q, k, v, None)
