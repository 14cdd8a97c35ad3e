"""The C RMSNorm kernel against the PyTorch expression in float64, and when it runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqbench.architectures.norm import RMSNorm, rms_norm_torch
from seqbench.architectures.scans import native, norm_native
from seqbench.harness.profile.flops import flop_counter

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler: kernels not built")

SHAPES = [
    (2, 37, 64),  # rows not a multiple of the kernel's 64-row unit
    (3, 50, 208),  # Mamba-2's inner norm at d_model 64 (13 blocks of 16 lanes)
    (2, 9, 200),  # a width that is not a multiple of 16: a scalar tail
    (4, 13),  # a decoding step: one row per sequence, width smaller than one vector
    (1, 1, 64),  # one row
    (2, 300, 48),  # several units
]


def _case(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 3
    weight = torch.rand(shape[-1], generator=g, dtype=torch.float64) + 0.5
    grad = torch.randn(*shape, generator=g, dtype=torch.float64)
    return x, weight, grad


def _native(x, weight, grad, eps=1e-5):
    x, weight = (t.detach().float().requires_grad_() for t in (x, weight))
    out = norm_native.rms_norm_native(x, weight, eps)
    return (out, *torch.autograd.grad(out, (x, weight), grad.float()))


@pytest.mark.parametrize("shape", SHAPES)
def test_kernel_equals_the_float64_expression(shape) -> None:
    x, weight, grad = _case(shape)
    x.requires_grad_(), weight.requires_grad_()
    ref = rms_norm_torch(x, weight, 1e-5)
    ref_grads = torch.autograd.grad(ref, (x, weight), grad)
    for got, want in zip(_native(x, weight, grad), (ref, *ref_grads), strict=True):
        # float32 rounding: the weight gradient sums up to 600 rows of O(1) products
        torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


def _gated_native(y, z, weight, grad, eps=1e-5):
    y, z, weight = (t.detach().float().requires_grad_() for t in (y, z, weight))
    out = norm_native.gated_rms_norm_native(y, z, weight, eps)
    return (out, *torch.autograd.grad(out, (y, z, weight), grad.float()))


@pytest.mark.parametrize("shape", SHAPES)
def test_gated_kernel_equals_the_float64_expression(shape) -> None:
    y, weight, grad = _case(shape)
    z = _case(shape, seed=5)[0]
    for t in (y, z, weight):
        t.requires_grad_()
    ref = rms_norm_torch(y * F.silu(z), weight, 1e-5)
    ref_grads = torch.autograd.grad(ref, (y, z, weight), grad)
    for got, want in zip(_gated_native(y, z, weight, grad), (ref, *ref_grads), strict=True):
        torch.testing.assert_close(got.double(), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gated", [False, True])
def test_inputs_untouched_and_threads_change_no_bit(gated: bool) -> None:
    x, weight, grad = _case((4, 300, 64), seed=1)
    inputs = [x.float(), _case((4, 300, 64), seed=2)[0].float()] if gated else [x.float()]
    kept = [t.clone() for t in inputs]
    run = _gated_native if gated else _native
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 3):
            torch.set_num_threads(threads)
            results.append(run(*inputs, weight, grad))
    finally:
        torch.set_num_threads(before)
    for t, k in zip(inputs, kept, strict=True):
        assert torch.equal(t, k)
    for one, three in zip(*results, strict=True):
        assert torch.equal(one, three)


def _grad_fn_name(norm: RMSNorm, x: torch.Tensor) -> str:
    return type(norm(x.requires_grad_()).grad_fn).__name__


def test_the_module_runs_the_kernel_for_float32_on_the_cpu_and_pytorch_otherwise(
    monkeypatch,
) -> None:
    norm = RMSNorm(64)
    x = torch.randn(2, 5, 64)
    assert _grad_fn_name(norm, x.clone()) == "NativeRMSNormFnBackward"
    assert _grad_fn_name(norm.double(), x.double()) != "NativeRMSNormFnBackward"
    norm.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _grad_fn_name(norm, x.clone()) != "NativeRMSNormFnBackward"
    with flop_counter():  # a dispatch mode sees aten ops: the PyTorch expression runs
        assert _grad_fn_name(norm, x.clone()) != "NativeRMSNormFnBackward"
    z = torch.randn(2, 5, 64)
    assert type(norm.gated(x.clone().requires_grad_(), z).grad_fn).__name__ == (
        "NativeGatedRMSNormFnBackward"
    )
    monkeypatch.setattr(native, "library", lambda: None)  # as without a C compiler
    assert _grad_fn_name(norm, x.clone()) != "NativeRMSNormFnBackward"
    assert "Native" not in type(norm.gated(x.clone().requires_grad_(), z).grad_fn).__name__


@pytest.mark.parametrize("gated", [False, True])
def test_the_module_equals_the_expression_in_float32(gated: bool) -> None:
    norm = RMSNorm(96)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(3, 70, 96, requires_grad=True)
    z = torch.randn(3, 70, 96)
    grad = torch.randn_like(x)
    got = norm.gated(x, z) if gated else norm(x)
    got_grads = torch.autograd.grad(got, (x, norm.weight), grad)
    want = rms_norm_torch(x * F.silu(z) if gated else x, norm.weight, norm.eps)
    want_grads = torch.autograd.grad(want, (x, norm.weight), grad)
    torch.testing.assert_close(got, want, atol=2e-6, rtol=2e-6)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("impl", ["auto", "torch", "reference"])
def test_mamba2_fuses_its_output_norm_only_on_the_fused_path(impl: str) -> None:
    from seqbench.architectures.mamba2 import Mamba2

    block = Mamba2(64, d_state=8, impl=impl)
    seen: list[str] = []  # what made out_proj's input
    block.out_proj.register_forward_hook(lambda m, i, o: seen.append(type(i[0].grad_fn).__name__))
    block(torch.randn(2, 9, 64))
    assert (seen[0] == "NativeGatedRMSNormFnBackward") == (impl == "auto")
