"""The LRU's scan: a complex diagonal, time-invariant linear recurrence, and its reference.

    x_t = λ ⊙ x_{t-1} + v_t        (λ, x_t, v_t complex, one entry per state n)

The chunked (two-level) scan splits time into c chunks of T steps and
  1. runs the recurrence inside *all chunks at once* from a zero state: T steps, each one an
     in-place multiply-add over every chunk (c x B x N numbers instead of B x N);
  2. scans the chunk end states with λ^T (recursively, so the carry pass is chunked too),
     which turns them into the exact states at the chunk ends;
  3. adds the state entering each chunk, decayed by λ^(i+1), to its step i.
About T + L/T dependent operations replace L, and the arithmetic is the recurrence's own (no
T x T Toeplitz products, no λ^(-k) rescaling that would overflow for small |λ|).

Why a custom autograd function: the adjoint of a time-invariant linear recurrence is the same
recurrence run backwards in time with conj(λ) (PyTorch's complex convention), so the backward
is one more chunked scan plus one reduction for dL/dλ, instead of a graph of many nodes.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from seqbench.architectures.scans import native

DEFAULT_CHUNK = 64  # ~ sqrt(4096): balances the T in-chunk steps against the L/T carries


def linear_step(x: Tensor, lam: Tensor, v_t: Tensor) -> Tensor:
    """x (b, N), λ (N,), v_t (b, N), all complex -> next x."""
    return lam * x + v_t


def linear_scan_ref(log_lam: Tensor, v: Tensor, x0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Sequential reference. log λ (N,), v (b, L, N) complex -> states (b, L, N) and x_L."""
    lam = torch.exp(log_lam)
    x = v.new_zeros(v.shape[0], v.shape[2]) if x0 is None else x0
    xs = []
    for v_t in v.unbind(1):
        x = linear_step(x, lam, v_t)
        xs.append(x)
    return torch.stack(xs, dim=1), x


def linear_scan_chunked(
    log_lam: Tensor, v: Tensor, chunk: int = DEFAULT_CHUNK
) -> tuple[Tensor, Tensor]:
    """Chunked scan with the signature of `linear_scan_ref` (no x0)."""
    x = LinearScanFn.apply(torch.exp(log_lam), v, chunk)  # (b, L, N)
    return x, x[:, -1]


def scan_inplace(lam: Tensor, x: Tensor, chunk: int, reverse: bool = False) -> None:
    """Turn x (L, M, N), time-major, into its inclusive scan, in place:
    x_t = λ x_{t-1} + x_t, or with reverse=True x_t = λ x_{t+1} + x_t (the adjoint's order)."""
    length, T = x.shape[0], max(chunk, 2)  # chunks of 1 step would never shrink the carry scan
    whole = length - length % T
    if whole <= T:  # one chunk or less: the plain loop is the fastest there is
        rows = x.unbind(0)
        for prev, cur in itertools.pairwise(rows[::-1] if reverse else rows):
            cur.addcmul_(lam, prev)
        return
    if reverse:  # the partial chunk at the end comes first, down into the last whole row
        for t in range(length - 2, whole - 2, -1):
            x[t].addcmul_(lam, x[t + 1])
    chunks = x[:whole].unflatten(0, (whole // T, T))  # (c, T, M, N), a view
    order = range(T - 2, -1, -1) if reverse else range(1, T)
    step = 1 if reverse else -1
    for i in order:  # 1. every chunk at once, from a zero state
        chunks[:, i].addcmul_(lam, chunks[:, i + step])
    edge = 0 if reverse else T - 1  # 2. chunk edges -> their true values
    scan_inplace(lam**T, chunks[:, edge], chunk, reverse)
    powers = torch.arange(T - 1, 0, -1) if reverse else torch.arange(1, T)
    rise = lam ** powers.to(device=x.device, dtype=lam.dtype)[:, None]  # (T - 1, N)
    if reverse:  # 3. rows 1.. of chunk k get λ^(T-i) times the true start of chunk k+1
        chunks[:-1, 1:].addcmul_(rise[None, :, None, :], chunks[1:, 0, None])
    else:  # rows ..T-2 of chunk k get λ^(i+1) times the true end of chunk k-1
        chunks[1:, : T - 1].addcmul_(rise[None, :, None, :], chunks[:-1, T - 1, None])
        for t in range(whole, length):  # the partial chunk follows the true end state
            x[t].addcmul_(lam, x[t - 1])


class LinearScanFn(torch.autograd.Function):
    """x = scan(λ, v) for v (b, L, N); backward = the reverse-time scan with conj(λ), and
    dL/dλ = Σ_t g_t conj(x_{t-1}) (`vecdot` conjugates its first argument).

    The scans run in place on a time-major *view* of a (b, L, N) copy, so inputs, outputs and
    gradients keep the caller's layout and no transposed copies are made.
    """

    @staticmethod
    def forward(ctx, lam: Tensor, v: Tensor, chunk: int) -> Tensor:  # type: ignore[override]
        x = v.contiguous().clone()  # (b, L, N)
        scan_inplace(lam, x.transpose(0, 1), chunk)
        ctx.save_for_backward(lam, x)
        ctx.chunk = chunk
        return x

    @staticmethod
    def backward(ctx, grad_x: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        lam, x = ctx.saved_tensors
        g = grad_x.contiguous().clone()  # becomes dL/dv
        scan_inplace(lam.conj(), g.transpose(0, 1), ctx.chunk, reverse=True)
        grad_lam = torch.linalg.vecdot(x[:, :-1], g[:, 1:], dim=1).sum(0)  # (N,)
        return grad_lam, g, None


def linear_scan_native(log_lam: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """The C kernel (`native_kernels.c`) with the signature of `linear_scan_ref` (no x0).

    complex64 on the CPU only; callers check `native.usable` first and otherwise use
    `linear_scan_chunked` (the PyTorch path, also this kernel's oracle in the tests).
    """
    x = NativeLinearScanFn.apply(torch.exp(log_lam), v)  # (b, L, N)
    return x, x[:, -1]


class NativeLinearScanFn(torch.autograd.Function):
    """`LinearScanFn`'s math, one sequential pass over time each way, in C (memory-bound)."""

    @staticmethod
    def forward(ctx, lam: Tensor, v: Tensor) -> Tensor:  # type: ignore[override]
        v = v.contiguous()  # (b, L, N) complex64
        x = torch.empty_like(v)
        lam_re, lam_im = lam.real.contiguous(), lam.imag.contiguous()
        b, length, n = x.shape
        native.library().lru_fwd(*map(native.ptr, (v, x, lam_re, lam_im)), b, length, n)
        ctx.save_for_backward(lam_re, lam_im, x)
        return x

    @staticmethod
    def backward(ctx, grad_x: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        lam_re, lam_im, x = ctx.saved_tensors
        grad_x = grad_x.contiguous()
        g = torch.empty_like(grad_x)  # dL/dv
        grad_lam = torch.empty(lam_re.shape[0], dtype=g.dtype)  # (N,) complex
        b, length, n = g.shape
        native.library().lru_bwd(
            *map(native.ptr, (grad_x, g, x, lam_re, lam_im, grad_lam)), b, length, n
        )
        return grad_lam, g
