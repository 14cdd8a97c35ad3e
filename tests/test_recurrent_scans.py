"""The fast scans against their sequential references: outputs, final states, every gradient.

float64 runs hold the algebra exact (1e-10); float32 runs hold the precision the benchmark
reports (1e-4 at these sizes). Lengths that are not multiples of the chunk, a chunk longer
than the sequence and a single step are included, because padding and the last partial chunk
are where chunked code goes wrong.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from seqbench.architectures.scans.linear_scan import (
    linear_scan_chunked,
    linear_scan_ref,
    scan_inplace,
)
from seqbench.architectures.scans.selective import selective_scan, selective_scan_ref
from seqbench.architectures.scans.ssd import segsum, ssd_chunked, ssd_ref

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def vjp(fn, inputs: list[Tensor], state_weight: float = 0.0):
    """Output, final state and the gradients of <y, w> (+ state term) for fixed random w."""
    y, state = fn(*inputs)
    w = torch.randn(y.shape, generator=_gen(1), dtype=y.dtype)
    loss = (y * w).sum()
    if state_weight:
        loss = loss + state_weight * state.abs().sum()
    return y, state, torch.autograd.grad(loss, inputs)


def assert_close(a: Tensor, b: Tensor, tol: float, what: str) -> None:
    err = float((a - b).detach().abs().max())
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol}"


def selective_inputs(b: int, length: int, d: int, n: int, dtype: torch.dtype) -> list[Tensor]:
    g = _gen(0)
    u = torch.randn(b, length, d, generator=g, dtype=dtype)
    delta = F.softplus(torch.randn(b, length, d, generator=g, dtype=dtype) - 2)
    A = -torch.exp(torch.randn(d, n, generator=g, dtype=dtype))
    B = torch.randn(b, length, n, generator=g, dtype=dtype)
    C = torch.randn(b, length, n, generator=g, dtype=dtype)
    return [t.requires_grad_(True) for t in (u, delta, A, B, C)]


@pytest.mark.parametrize(("length", "chunk"), [(1, 4), (7, 3), (16, 16), (37, 8), (20, 64)])
def test_selective_scan_equals_reference_float64(length: int, chunk: int) -> None:
    inputs = selective_inputs(2, length, 5, 4, F64)
    y, h, grads = vjp(lambda *a: selective_scan(*a, chunk=chunk), inputs)
    y_ref, h_ref, grads_ref = vjp(selective_scan_ref, inputs)
    assert_close(y, y_ref, 1e-10, "output")
    assert_close(h, h_ref, 1e-10, "final state")
    for name, g, g_ref in zip(["u", "delta", "A", "B", "C"], grads, grads_ref, strict=True):
        assert_close(g, g_ref, 1e-10, f"gradient of {name}")


def test_selective_scan_float32_within_benchmark_tolerance() -> None:
    inputs = selective_inputs(2, 96, 16, 8, torch.float32)
    y, _, grads = vjp(selective_scan, inputs)
    y_ref, _, grads_ref = vjp(selective_scan_ref, inputs)
    assert_close(y, y_ref, 1e-4, "output")
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref, 1e-4 * max(1.0, float(g_ref.abs().max())), "gradient")


def test_selective_scan_leaves_inputs_alone_and_state_undifferentiable() -> None:
    inputs = selective_inputs(1, 9, 3, 2, torch.float32)
    before = [t.detach().clone() for t in inputs]
    y, h = selective_scan(*inputs, chunk=4)
    y.sum().backward()
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, inputs, strict=True))
    assert not h.requires_grad  # decoding and prefill use it; training uses y
    assert h.shape == (1, 3, 2)


def ssd_inputs(b: int, length: int, heads: int, groups: int, dtype: torch.dtype) -> list[Tensor]:
    g = _gen(0)
    x = torch.randn(b, length, heads, 3, generator=g, dtype=dtype)
    dt = F.softplus(torch.randn(b, length, heads, generator=g, dtype=dtype))
    A = -4 * torch.rand(heads, generator=g, dtype=dtype)
    B = torch.randn(b, length, groups, 5, generator=g, dtype=dtype)
    C = torch.randn(b, length, groups, 5, generator=g, dtype=dtype)
    return [t.requires_grad_(True) for t in (x, dt, A, B, C)]


@pytest.mark.parametrize(
    ("length", "heads", "groups", "chunk"),
    [(1, 2, 1, 8), (37, 4, 2, 8), (32, 6, 3, 16), (9, 2, 2, 1)],
)
def test_ssd_chunked_equals_reference_float64(
    length: int, heads: int, groups: int, chunk: int
) -> None:
    inputs = ssd_inputs(2, length, heads, groups, F64)
    y, S, grads = vjp(lambda *a: ssd_chunked(*a, chunk=chunk), inputs, state_weight=0.5)
    y_ref, S_ref, grads_ref = vjp(ssd_ref, inputs, state_weight=0.5)
    assert_close(y, y_ref, 1e-10, "output")
    assert_close(S, S_ref, 1e-10, "final state")
    for name, g, g_ref in zip(["x", "dt", "A", "B", "C"], grads, grads_ref, strict=True):
        assert_close(g, g_ref, 1e-9, f"gradient of {name}")


def test_segsum_sums_the_steps_between_and_masks_the_future() -> None:
    a = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=F64)
    s = segsum(a)
    assert float(s[2, 0]) == pytest.approx(-1.0 + 2.0)  # a_1 + a_2
    assert float(s[3, 1]) == pytest.approx(2.0 + 0.25)
    assert torch.all(s.diagonal() == 0)
    assert torch.all(torch.isneginf(s.triu(1)[s.triu(1) != 0]))


def lru_inputs(b: int, length: int, n: int) -> list[Tensor]:
    g = _gen(0)
    nu = torch.log(-torch.log(torch.rand(n, generator=g, dtype=F64) * 0.5 + 0.45))
    theta = torch.log(6.28 * torch.rand(n, generator=g, dtype=F64))
    v_re = torch.randn(b, length, n, generator=g, dtype=F64)
    v_im = torch.randn(b, length, n, generator=g, dtype=F64)
    return [t.requires_grad_(True) for t in (nu, theta, v_re, v_im)]


def _lru(fn):
    """Adapt a complex scan to real inputs/outputs so gradients are checked through log λ."""

    def run(nu: Tensor, theta: Tensor, v_re: Tensor, v_im: Tensor) -> tuple[Tensor, Tensor]:
        xs, last = fn(torch.complex(-torch.exp(nu), torch.exp(theta)), torch.complex(v_re, v_im))
        return torch.cat([xs.real, xs.imag], dim=-1), torch.cat([last.real, last.imag], -1)

    return run


@pytest.mark.parametrize(("length", "chunk"), [(1, 8), (37, 8), (64, 16), (33, 1), (10, 64)])
def test_linear_scan_chunked_equals_reference_float64(length: int, chunk: int) -> None:
    inputs = lru_inputs(2, length, 6)
    fast = _lru(lambda lam, v: linear_scan_chunked(lam, v, chunk=chunk))
    y, last, grads = vjp(fast, inputs, state_weight=0.5)
    y_ref, last_ref, grads_ref = vjp(_lru(linear_scan_ref), inputs, state_weight=0.5)
    assert_close(y, y_ref, 1e-10, "states")
    assert_close(last, last_ref, 1e-10, "final state")
    for name, g, g_ref in zip(
        ("nu_log", "theta_log", "v.re", "v.im"), grads, grads_ref, strict=True
    ):
        assert_close(g, g_ref, 1e-9, f"gradient of {name}")


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_inplace_matches_the_plain_recurrence_for_every_split(reverse: bool) -> None:
    """The two-level scan (and its reverse, used by the backward) for lengths around chunks."""
    gen = _gen(4)
    for length in (1, 2, 5, 16, 17, 33, 100, 257):
        for chunk in (2, 3, 8):
            lam = 0.5 * torch.randn(3, generator=gen, dtype=torch.complex128)
            x = torch.randn(length, 2, 3, generator=gen, dtype=torch.complex128)
            expected = list(x.clone().unbind(0))
            order = range(length - 2, -1, -1) if reverse else range(1, length)
            for t in order:
                expected[t] = expected[t] + lam * expected[t + 1 if reverse else t - 1]
            scan_inplace(lam, x, chunk, reverse=reverse)
            assert_close(x, torch.stack(expected), 1e-10, f"L {length}, chunk {chunk}")


# -- signed transitions (Grazzi et al. 2025): α = 2 exp(Δ A) − 1 in (−1, 1] -----------------------
@pytest.mark.parametrize(("length", "heads", "groups", "chunk"), [(37, 4, 2, 8), (9, 2, 1, 4)])
def test_signed_ssd_chunked_equals_reference_float64(
    length: int, heads: int, groups: int, chunk: int
) -> None:
    inputs = ssd_inputs(2, length, heads, groups, F64)
    dt, A = inputs[1:3]
    alpha = (2 * torch.exp(dt * A) - 1).detach()
    assert bool((alpha < 0).any()) and bool((alpha > 0).any())  # both signs are exercised
    signed = {"signed": True}
    y, S, grads = vjp(lambda *a: ssd_chunked(*a, chunk=chunk, **signed), inputs, 0.5)
    y_ref, S_ref, grads_ref = vjp(lambda *a: ssd_ref(*a, **signed), inputs, 0.5)
    assert_close(y, y_ref, 1e-10, "output")
    assert_close(S, S_ref, 1e-10, "final state")
    for name, g, g_ref in zip(["x", "dt", "A", "B", "C"], grads, grads_ref, strict=True):
        assert_close(g, g_ref, 1e-10, f"gradient of {name}")
    # the knob is not ignored: the unsigned scan of the same inputs is far from this one.
    assert float((ssd_chunked(*inputs, chunk=chunk)[0] - y).detach().abs().max()) > 1e-2


def test_signed_ssd_flips_the_state_sign_every_step() -> None:
    """Δ A = −50 gives α = 2 e^−50 − 1 ≈ −1: one input at t = 0 is read back with sign (−1)^t,
    in the reference and across chunk boundaries of the chunked form; unsigned it vanishes."""
    L = 11
    x = torch.zeros(1, L, 1, 1, dtype=F64)
    x[0, 0] = 1.0
    dt = torch.ones(1, L, 1, dtype=F64)
    A = torch.tensor([-50.0], dtype=F64)
    B = C = torch.ones(1, L, 1, 1, dtype=F64)
    expected = torch.tensor([(-1.0) ** t for t in range(L)], dtype=F64)
    for y, _ in (ssd_ref(x, dt, A, B, C, signed=True), ssd_chunked(x, dt, A, B, C, 4, signed=True)):
        assert_close(y[0, :, 0, 0], expected, 1e-12, "alternating read-out")
    assert float(ssd_chunked(x, dt, A, B, C, 4)[0][0, 1:].abs().max()) < 1e-20


@pytest.mark.parametrize(("length", "chunk"), [(37, 8), (7, 3)])
def test_signed_selective_scan_equals_reference_float64(length: int, chunk: int) -> None:
    """Mamba-1's scan with α = 2 exp(Δ A) − 1 per channel and state: the hand-written backward
    must use dα/d(ΔA) = α + 1, not α, or every gradient but C's is off."""
    inputs = selective_inputs(2, length, 5, 4, F64)
    delta, A = inputs[1], inputs[2]
    alpha = (2 * torch.exp(delta[..., None] * A) - 1).detach()  # (B, L, D, N)
    assert bool((alpha < 0).any()) and bool((alpha > 0).any())  # both signs are exercised
    y, h, grads = vjp(lambda *a: selective_scan(*a, chunk=chunk, signed=True), inputs)
    y_ref, h_ref, grads_ref = vjp(lambda *a: selective_scan_ref(*a, signed=True), inputs)
    assert_close(y, y_ref, 1e-10, "output")
    assert_close(h, h_ref, 1e-10, "final state")
    for name, g, g_ref in zip(["u", "delta", "A", "B", "C"], grads, grads_ref, strict=True):
        assert_close(g, g_ref, 1e-10, f"gradient of {name}")
    assert float((selective_scan(*inputs, chunk=chunk)[0] - y).detach().abs().max()) > 1e-2


def test_signed_selective_scan_flips_the_state_sign_every_step() -> None:
    L = 11
    u = torch.zeros(1, L, 1, dtype=F64)
    u[0, 0] = 1.0
    delta = torch.ones(1, L, 1, dtype=F64)
    A = torch.tensor([[-50.0]], dtype=F64)  # α = 2 e^−50 − 1 ≈ −1
    B = C = torch.ones(1, L, 1, dtype=F64)
    expected = torch.tensor([(-1.0) ** t for t in range(L)], dtype=F64)
    ref, fast = (
        selective_scan_ref(u, delta, A, B, C, signed=True),
        selective_scan(u, delta, A, B, C, 4, signed=True),
    )
    for y, _ in (ref, fast):
        assert_close(y[0, :, 0], expected, 1e-12, "alternating read-out")
