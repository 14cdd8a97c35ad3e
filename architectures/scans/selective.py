"""Mamba-1 selective scan on CPU: a chunked autograd function with its own reverse-time backward.

The recurrence, per batch b, channel d and state n (Gu & Dao 2023, eq. 2a-2b):

    h_t = exp(Δ_t A) ⊙ h_{t-1} + (Δ_t u_t) B_t          y_t = Σ_n C_t,n h_t,n

`selective_scan_ref` is the obviously-correct loop; autograd differentiates it. It is the oracle.

`selective_scan` is the fast CPU path. Why it looks the way it does:
- The decay exp(Δ A) differs per channel *and* state, so the cumulative-log-decay (chunked
  matmul) trick that suits Mamba-2 needs exp of differences of long sums: slower and inexact in
  float32. The only inherently sequential part is one fused multiply-add per time step, so the
  time loop does exactly that (`addcmul_` in place) and nothing else.
- Everything else (exp, the input term, the C readout, every gradient reduction) runs as
  batched tensor ops over a chunk of `chunk` time steps, sized so the chunk's buffers stay in
  cache. Buffers are allocated once and reused, so no per-chunk allocation or page faulting.
- Nothing of size (L, B, D, N) is ever stored: the forward keeps only the state at each chunk
  boundary, and the backward recomputes one chunk's states from its checkpoint, runs the
  adjoint recurrence g_t = C_t y'_t + exp(Δ_{t+1} A) ⊙ g_{t+1} backwards in time, and reduces.
  Autograd never sees the loop, so there is no per-step graph.

`signed` (Grazzi et al. 2025, "negative eigenvalues") replaces the transition exp(Δ A) by
α = 2 exp(Δ A) − 1 in (−1, 1]. Nothing here works in log space (the time loop multiplies by
the transition itself), so the only other change is dα/d(Δ A) in the backward: α for
exp, 2 exp(Δ A) = α + 1 signed. The C kernel and mamba-ssm's CUDA kernel compute exp(Δ A)
only; callers must not use them with `signed`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqbench.architectures.scans import native
from seqbench.architectures.scans.counting import batched_on_meta
from seqbench.architectures.scans.decay import transition

DEFAULT_CHUNK = (
    8  # time steps per batched block: (chunk, B, N, D) buffers stay in L2; measured best
)


def selective_step(
    h: Tensor,
    u_t: Tensor,
    delta_t: Tensor,
    A: Tensor,
    B_t: Tensor,
    C_t: Tensor,
    *,
    signed: bool = False,
) -> tuple[Tensor, Tensor]:
    """One recurrence step. h (B, D, N); u_t, delta_t (B, D); A (D, N); B_t, C_t (B, N)."""
    alpha = transition(delta_t[..., None] * A, signed)  # (B, D, N)
    h = alpha * h + (delta_t * u_t)[..., None] * B_t[:, None, :]
    y_t = (h * C_t[:, None, :]).sum(-1)  # (B, D)
    return y_t, h


def selective_scan_ref(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    h0: Tensor | None = None,
    *,
    signed: bool = False,
) -> tuple[Tensor, Tensor]:
    """Sequential reference. u, delta (B, L, D); A (D, N); B, C (B, L, N) -> y (B, L, D), h_L.

    `unbind` (not indexing) keeps autograd's backward linear in L: indexing a slice makes the
    backward of every step allocate a full-length zero gradient.
    """
    batch, _, channels = u.shape
    h = u.new_zeros(batch, channels, A.shape[1]) if h0 is None else h0  # (B, D, N)
    ys = []
    for u_t, d_t, B_t, C_t in zip(
        u.unbind(1), delta.unbind(1), B.unbind(1), C.unbind(1), strict=True
    ):
        y_t, h = selective_step(h, u_t, d_t, A, B_t, C_t, signed=signed)
        ys.append(y_t)
    return torch.stack(ys, dim=1), h  # (B, L, D), (B, D, N)


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk: int = DEFAULT_CHUNK,
    *,
    signed: bool = False,
) -> tuple[Tensor, Tensor]:
    """Fast path with the signature of `selective_scan_ref` (no h0): y (B, L, D), h_L (B, D, N).

    The final state is not differentiable (decoding and prefill use it; training uses y).
    """
    return SelectiveScanFn.apply(u, delta, A, B, C, chunk, signed)


def _chunking(length: int, chunk: int) -> tuple[int, int]:
    """(T, c): steps per chunk and the number of chunks covering `length` steps."""
    T = min(chunk, length)
    return T, -(-length // T)


def _chunked(t: Tensor, chunks: int, T: int) -> Tensor:
    """(B, L, K) -> time-major (c, T, B, K), zero-padded to c * T steps (one copy).

    Padded steps have Δ = 0 (decay 1, no input) and a zero output gradient, so they neither
    change the state nor contribute to any gradient; their rows are cut off at the end.
    """
    batch, length, k = t.shape
    out = t.new_empty(chunks * T, batch, k)
    out[:length].copy_(t.transpose(0, 1))
    out[length:].zero_()
    return out.view(chunks, T, batch, k)


def _unchunked(t: Tensor, length: int) -> Tensor:
    """(c, T, B, K) -> (B, L, K), dropping the padded steps."""
    return t.flatten(0, 1)[:length].transpose(0, 1)


class _ChunkBuffers:
    """The inputs split into time-major chunks, and reusable (T, B, N, D) work buffers.

    Why (T, B, N, D) with channels innermost: every broadcast (Δ_t ⊗ A, Δu_t ⊗ B_t, y'_t ⊗ C_t)
    then runs over contiguous rows of D values, which vectorises far better than rows of N = 16.
    Why the per-chunk views are made once (`unbind`): the chunk loop then does no indexing of
    its own, and Python overhead stays small next to the tensor work.
    """

    def __init__(
        self, u: Tensor, delta: Tensor, B: Tensor, C: Tensor, A: Tensor, chunk: int, signed: bool
    ):
        batch, length, channels = u.shape
        self.signed = signed
        n = A.shape[1]
        self.T, self.count = _chunking(length, chunk)
        self.u = _chunked(u, self.count, self.T)  # (c, T, B, D)
        self.delta = _chunked(delta, self.count, self.T)
        self.du = self.delta * self.u
        self.B = _chunked(B, self.count, self.T)  # (c, T, B, N)
        self.C = _chunked(C, self.count, self.T)
        self.A_t = A.t().contiguous()  # (N, D)
        self.delta_row = self.delta[:, :, :, None, :].unbind(0)  # c x (T, B, 1, D)
        self.du_row = self.du[:, :, :, None, :].unbind(0)
        self.B_col = self.B[..., None].unbind(0)  # c x (T, B, N, 1)
        self.B_row = self.B[:, :, :, None, :].unbind(0)  # c x (T, B, 1, N)
        self.C_col = self.C[..., None].unbind(0)
        self.C_row = self.C[:, :, :, None, :].unbind(0)
        shape = (self.T, batch, n, channels)
        self.decay = u.new_empty(shape)  # the transition α (exp(Δ A), or 2 exp(Δ A) − 1)
        self.states = u.new_empty(shape)  # h_t for the chunk
        self.decay_rows, self.state_rows = self.decay.unbind(0), self.states.unbind(0)

    def states_of_chunk(self, i: int, h: Tensor) -> None:
        """Fill decay and states (T, B, N, D) of chunk i from the state h before it."""
        torch.mul(self.delta_row[i], self.A_t, out=self.decay).exp_()
        if self.signed:
            self.decay.mul_(2).sub_(1)
        torch.mul(self.du_row[i], self.B_col[i], out=self.states)
        rows, decays = self.state_rows, self.decay_rows
        rows[0].addcmul_(decays[0], h)
        for prev, cur, a in zip(rows, rows[1:], decays[1:], strict=False):
            cur.addcmul_(a, prev)  # h_t = α_t h_{t-1} + Δ_t u_t B_t


class SelectiveScanFn(torch.autograd.Function):
    """y = scan(u, Δ, A, B, C) with checkpoints per chunk and a recomputing backward.

    Internally the state is laid out (B, N, D); the returned final state is (B, D, N).
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, chunk, signed):  # type: ignore[override]
        batch, length, channels = u.shape
        if batched_on_meta(u):
            y, checkpoints = _forward_on_meta(u, A, C, chunk)
        else:
            bufs = _ChunkBuffers(u, delta, B, C, A, chunk, signed)
            y = u.new_empty(bufs.count, bufs.T, batch, 1, channels)
            # checkpoints[i] is the state before chunk i; the last one is the final state.
            checkpoints = u.new_zeros(bufs.count + 1, batch, A.shape[1], channels)
            for i in range(bufs.count):
                bufs.states_of_chunk(i, checkpoints[i])
                torch.matmul(bufs.C_row[i], bufs.states, out=y[i])  # Σ_n C h
                checkpoints[i + 1].copy_(bufs.state_rows[-1])
        ctx.save_for_backward(u, delta, A, B, C, checkpoints)
        ctx.chunk, ctx.signed = chunk, signed
        # Padded steps leave the state unchanged, so the last checkpoint is h_L.
        h_last = checkpoints[-1].transpose(1, 2).contiguous()  # (B, D, N)
        ctx.mark_non_differentiable(h_last)
        return _unchunked(y[:, :, :, 0], length), h_last  # (B, L, D), (B, D, N)

    @staticmethod
    def backward(ctx, grad_y, _grad_h):  # type: ignore[override]
        u, delta, A, B, C, checkpoints = ctx.saved_tensors
        if batched_on_meta(u):
            return (*_backward_on_meta(u, delta, A, B, grad_y, ctx.chunk), None, None)
        bufs = _ChunkBuffers(u, delta, B, C, A, ctx.chunk, ctx.signed)
        c, T = bufs.count, bufs.T
        gy = _chunked(grad_y, c, T)  # (c, T, B, D)
        gy_row = gy[:, :, :, None, :]  # (c, T, B, 1, D)
        g_du = torch.empty_like(gy_row)  # dL/d(Δ u)
        g_delta = torch.empty_like(gy)  # dL/dΔ through the decay
        g_B = torch.empty_like(bufs.B)[:, :, :, None, :]  # (c, T, B, 1, N)
        g_C = torch.empty_like(g_B)
        g_A, g_A_chunk = torch.zeros_like(bufs.A_t), torch.empty_like(bufs.A_t)  # (N, D)
        adj = torch.empty_like(bufs.states)  # adjoint g_t = dL/dh_t for the chunk
        rows = adj.unbind(0)
        carry = torch.zeros_like(checkpoints[0])  # exp(Δ_{s'} A) g_{s'} from the next chunk
        decay, states = bufs.decay, bufs.states
        for i in reversed(range(c)):
            bufs.states_of_chunk(i, checkpoints[i])
            g = torch.mul(gy_row[i], bufs.C_col[i], out=adj)
            rows[-1].add_(carry)
            for nxt, cur, a in zip(rows[::-1], rows[-2::-1], bufs.decay_rows[::-1], strict=False):
                cur.addcmul_(a, nxt)  # g_t = C_t y'_t + exp(Δ_{t+1} A) g_{t+1}
            torch.mul(bufs.decay_rows[0], rows[0], out=carry)
            # Contractions over D as (1, D) @ (D, N) on transposed views: twice as fast in MKL
            # as (N, D) @ (D, 1).
            torch.matmul(gy_row[i], states.transpose(2, 3), out=g_C[i])  # Σ_d y' h
            torch.matmul(bufs.du_row[i], g.transpose(2, 3), out=g_B[i])  # Σ_d g Δu
            torch.matmul(bufs.B_row[i], g, out=g_du[i])  # Σ_n g B
            # dL/d(Δ A) = g_t ⊙ h_{t-1} ⊙ dα_t/d(Δ_t A), built in place over the adjoint
            # buffer; dα/d(Δ A) is α for exp, 2 exp(Δ A) = α + 1 signed (decay is refilled by
            # the next chunk's states_of_chunk, so it may be overwritten here).
            g.mul_(decay.add_(1) if bufs.signed else decay)
            g[1:].mul_(states[: T - 1])
            g[0].mul_(checkpoints[i])
            torch.sum(torch.mul(g, bufs.A_t, out=states), 2, out=g_delta[i])  # Σ_n (.) A
            g_A.add_(torch.sum(g.mul_(bufs.delta_row[i]), (0, 1), out=g_A_chunk))  # Σ_{t,b}
        g_du = g_du[:, :, :, 0]
        g_u = g_du * bufs.delta
        g_delta.addcmul_(g_du, bufs.u)
        length = u.shape[1]
        return (
            _unchunked(g_u, length),
            _unchunked(g_delta, length),
            g_A.t(),
            _unchunked(g_B[:, :, :, 0], length),
            _unchunked(g_C[:, :, :, 0], length),
            None,
            None,
        )


def _forward_on_meta(u: Tensor, A: Tensor, C: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """The forward's ops as `batched_on_meta` counts them: its one matmul per chunk, Σ_n C h,
    as one matmul over every chunk (the same FLOPs); y (c, T, B, 1, D) and the checkpoints
    (c + 1, B, N, D) with the loop's shapes. The decays and states are elementwise: no FLOPs."""
    batch, length, channels = u.shape
    T, count = _chunking(length, chunk)
    states = u.new_empty(count, T, batch, A.shape[1], channels)  # (c, T, B, N, D)
    y = torch.matmul(_chunked(C, count, T)[:, :, :, None, :], states)  # (c, T, B, 1, D)
    return y, u.new_zeros(count + 1, batch, A.shape[1], channels)


def _backward_on_meta(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, grad_y: Tensor, chunk: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The backward's three matmuls per chunk (dL/dC, dL/dB, dL/d(Δu)) batched over every
    chunk, as `batched_on_meta` counts them; gradients with the loop's shapes."""
    batch, length, channels = u.shape
    T, count = _chunking(length, chunk)
    states = u.new_empty(count, T, batch, A.shape[1], channels)  # (c, T, B, N, D): h, then g
    gy_row = _chunked(grad_y, count, T)[:, :, :, None, :]  # (c, T, B, 1, D)
    du_row = _chunked(delta * u, count, T)[:, :, :, None, :]
    B_row = _chunked(B, count, T)[:, :, :, None, :]  # (c, T, B, 1, N)
    g_C = torch.matmul(gy_row, states.transpose(-1, -2))  # Σ_d y' h
    g_B = torch.matmul(du_row, states.transpose(-1, -2))  # Σ_d g Δu
    g_du = torch.matmul(B_row, states)  # Σ_n g B
    return (
        _unchunked(g_du[:, :, :, 0], length),
        u.new_empty(u.shape),
        A.new_empty(A.shape),
        _unchunked(g_B[:, :, :, 0], length),
        _unchunked(g_C[:, :, :, 0], length),
    )


NATIVE_CHECKPOINT = 32  # steps between saved states in the C kernel: its chunk buffers fit L2


def selective_scan_native(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor
) -> tuple[Tensor, Tensor]:
    """The fused C kernel (`native_kernels.c`), same signature and results as `selective_scan`.

    float32 on the CPU only; callers check `native.usable` first and fall back to
    `selective_scan` (the PyTorch path) otherwise.
    """
    return NativeSelectiveScanFn.apply(u, delta, A, B, C)


class NativeSelectiveScanFn(torch.autograd.Function):
    """Forward saves the state every NATIVE_CHECKPOINT steps; backward recomputes from them."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C):  # type: ignore[override]
        channels = u.shape[2]
        # The kernel works on blocks of native.BLOCK channels: pad with Δ = 0, u = 0, A = 0
        # (decay 1, no input, zero output), and cut the padding off every result.
        u, delta = native.pad_last(u, native.BLOCK), native.pad_last(delta, native.BLOCK)
        A_t = native.pad_last(A.t(), native.BLOCK)  # (N, Dp)
        B, C = B.contiguous(), C.contiguous()
        batch, length, padded = u.shape
        n, K = A.shape[1], NATIVE_CHECKPOINT
        y = torch.empty_like(u)  # (B, L, Dp)
        checkpoints = u.new_empty(batch, -(-length // K) + 1, n, padded)  # (B, c+1, N, Dp)
        native.library().selective_fwd(
            *map(native.ptr, (u, delta, A_t, B, C, y, checkpoints)), batch, length, padded, n, K
        )
        ctx.save_for_backward(u, delta, A_t, B, C, checkpoints)
        ctx.channels = channels
        h_last = checkpoints[:, -1, :, :channels].transpose(1, 2).contiguous()  # (B, D, N)
        ctx.mark_non_differentiable(h_last)
        return y[..., :channels], h_last

    @staticmethod
    def backward(ctx, grad_y, _grad_h):  # type: ignore[override]
        u, delta, A_t, B, C, checkpoints = ctx.saved_tensors
        batch, length, padded = u.shape
        n, d = A_t.shape[0], ctx.channels
        grad_y = native.pad_last(grad_y, native.BLOCK)
        g_u, g_delta = torch.empty_like(u), torch.empty_like(u)
        g_A_t, g_B, g_C = torch.empty_like(A_t), torch.empty_like(B), torch.empty_like(C)
        native.library().selective_bwd(
            *map(native.ptr, (u, delta, A_t, B, C, checkpoints, grad_y)),
            *map(native.ptr, (g_u, g_delta, g_A_t, g_B, g_C)),
            batch, length, padded, n, NATIVE_CHECKPOINT,
        )  # fmt: skip
        return g_u[..., :d], g_delta[..., :d], g_A_t[:, :d].t(), g_B, g_C
