"""Mamba-1's C output tail (y + u D) SiLU(z) against its PyTorch expression, and its use."""

from __future__ import annotations

import pytest
import torch

from seqbench.architectures.mamba import Mamba
from seqbench.architectures.scans import gate_native, native

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler: kernels not built")


def _inputs(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y, u, z = (torch.randn(*shape, generator=g, dtype=dtype) * 2 for _ in range(3))
    D = torch.randn(shape[-1], generator=g, dtype=dtype)
    grad = torch.randn(*shape, generator=g, dtype=dtype)
    return [y, u, z, D], grad


def _grads(fn, inputs, grad):
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    return (out, *torch.autograd.grad(out, leaves, grad))


@pytest.mark.parametrize("shape", [(2, 37, 200), (3, 70, 64), (1, 1, 16), (4, 5)])
def test_kernel_equals_the_float64_expression(shape) -> None:
    inputs, grad = _inputs(shape)
    want = _grads(gate_native.skip_gate_torch, inputs, grad)
    got = _grads(gate_native.NativeSkipGateFn.apply, [t.float() for t in inputs], grad.float())
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.double(), w, atol=2e-5, rtol=2e-5)


def test_strided_views_are_read_in_place_and_threads_change_no_bit() -> None:
    """y, u and z arrive as slices of wider tensors (the padded scan output, the in-projection)."""
    inputs, grad = _inputs((2, 150, 200), seed=1, dtype=torch.float32)
    wide = [torch.randn(2, 150, 416) for _ in range(3)]
    views = [w[..., 8:208] for w in wide]
    for view, t in zip(views, inputs[:3], strict=True):
        view.copy_(t)
    kept = [w.clone() for w in wide]
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 3):
            torch.set_num_threads(threads)
            results.append(_grads(gate_native.NativeSkipGateFn.apply, [*views, inputs[3]], grad))
    finally:
        torch.set_num_threads(before)
    contiguous = _grads(gate_native.NativeSkipGateFn.apply, inputs, grad)
    for one, three, dense in zip(*results, contiguous, strict=True):
        assert torch.equal(one, three)
        assert torch.equal(one, dense)
    for w, k in zip(wide, kept, strict=True):
        assert torch.equal(w, k)


def test_the_mamba_block_runs_the_kernel_only_on_its_fused_path() -> None:
    torch.manual_seed(0)
    fused, plain = Mamba(64, d_state=8), Mamba(64, d_state=8, impl="torch")
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 33, 64)
    seen: list[str] = []  # what made out_proj's input
    for block in (fused, plain):
        handle = block.out_proj.register_forward_hook(
            lambda m, i, o: seen.append(type(i[0].grad_fn).__name__)
        )
        out = block(x)
        handle.remove()
        out.sum().backward()
    assert seen == ["NativeSkipGateFnBackward", "MulBackward0"]
    for (name, p), q in zip(fused.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-4, msg=name)
