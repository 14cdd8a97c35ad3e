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
"""

from __future__ import annotations

import torch
from torch import Tensor

DEFAULT_CHUNK = 32  # time steps per batched block; (chunk, B, D, N) float32 buffers fit in L2/L3


def selective_step(
    h: Tensor, u_t: Tensor, delta_t: Tensor, A: Tensor, B_t: Tensor, C_t: Tensor
) -> tuple[Tensor, Tensor]:
    """One recurrence step. h (B, D, N); u_t, delta_t (B, D); A (D, N); B_t, C_t (B, N)."""
    h = torch.exp(delta_t[..., None] * A) * h + (delta_t * u_t)[..., None] * B_t[:, None, :]
    y_t = (h * C_t[:, None, :]).sum(-1)  # (B, D)
    return y_t, h


def selective_scan_ref(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, h0: Tensor | None = None
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
        y_t, h = selective_step(h, u_t, d_t, A, B_t, C_t)
        ys.append(y_t)
    return torch.stack(ys, dim=1), h  # (B, L, D), (B, D, N)


def selective_scan(
    u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int = DEFAULT_CHUNK
) -> tuple[Tensor, Tensor]:
    """Fast path with the signature of `selective_scan_ref` (no h0): y (B, L, D), h_L (B, D, N).

    The final state is not differentiable (decoding and prefill use it; training uses y).
    """
    return SelectiveScanFn.apply(u, delta, A, B, C, chunk)


class _ChunkBuffers:
    """Time-major views of the inputs and reusable (chunk, B, N, D) work buffers.

    Why (T, B, N, D) with channels innermost: every broadcast (Δ_t ⊗ A, Δu_t ⊗ B_t, y'_t ⊗ C_t)
    then runs over contiguous rows of D values, which vectorises far better than rows of N = 16.
    """

    def __init__(self, u: Tensor, delta: Tensor, B: Tensor, C: Tensor, A: Tensor, chunk: int):
        batch, length, channels = u.shape
        self.length, self.chunk = length, min(chunk, length)
        # Time-major *views*: per-chunk ops read them strided, so no transposed copies are made.
        self.u = u.transpose(0, 1)  # (L, B, D)
        self.delta = delta.transpose(0, 1)  # (L, B, D)
        self.du = self.delta * self.u  # (L, B, D)
        self.B = B.transpose(0, 1)  # (L, B, N)
        self.C = C.transpose(0, 1)  # (L, B, N)
        self.A_t = A.t().contiguous()  # (N, D)
        shape = (self.chunk, batch, A.shape[1], channels)
        self.decay = u.new_empty(shape)  # exp(Δ A) for the chunk
        self.states = u.new_empty(shape)  # h_t for the chunk

    def spans(self) -> list[tuple[int, int]]:
        return [(s, min(s + self.chunk, self.length)) for s in range(0, self.length, self.chunk)]

    def states_of_chunk(self, s: int, e: int, h: Tensor) -> tuple[Tensor, Tensor]:
        """Fill decay (T, B, N, D) and states h_s..h_{e-1} from the state h before the chunk."""
        T = e - s
        decay = torch.mul(self.delta[s:e, :, None, :], self.A_t, out=self.decay[:T]).exp_()
        states = torch.mul(self.du[s:e, :, None, :], self.B[s:e, :, :, None], out=self.states[:T])
        rows, decays = states.unbind(0), decay.unbind(0)
        rows[0].addcmul_(decays[0], h)
        for prev, cur, a in zip(rows, rows[1:], decays[1:], strict=False):
            cur.addcmul_(a, prev)  # h_t = exp(Δ_t A) h_{t-1} + Δ_t u_t B_t
        return decay, states


class SelectiveScanFn(torch.autograd.Function):
    """y = scan(u, Δ, A, B, C) with checkpoints per chunk and a recomputing backward.

    Internally the state is laid out (B, N, D); the returned final state is (B, D, N).
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, chunk):  # type: ignore[override]
        bufs = _ChunkBuffers(u, delta, B, C, A, chunk)
        batch, length, channels = u.shape
        n = A.shape[1]
        y = u.new_empty(length, batch, 1, channels)  # (L, B, 1, D)
        spans = bufs.spans()
        checkpoints = u.new_empty(len(spans), batch, n, channels)  # h before each chunk
        h = u.new_zeros(batch, n, channels)
        for i, (s, e) in enumerate(spans):
            checkpoints[i] = h
            _, states = bufs.states_of_chunk(s, e, h)
            torch.matmul(bufs.C[s:e, :, None, :], states, out=y[s:e])  # Σ_n C h
            h = states[e - s - 1].clone()
        ctx.save_for_backward(u, delta, A, B, C, checkpoints)
        ctx.chunk = chunk
        h_last = h.transpose(1, 2).contiguous()  # (B, D, N)
        ctx.mark_non_differentiable(h_last)
        return y[:, :, 0].transpose(0, 1), h_last  # (B, L, D), (B, D, N)

    @staticmethod
    def backward(ctx, grad_y, _grad_h):  # type: ignore[override]
        u, delta, A, B, C, checkpoints = ctx.saved_tensors
        bufs = _ChunkBuffers(u, delta, B, C, A, ctx.chunk)
        gy = grad_y.transpose(0, 1)  # (L, B, D)
        length, batch, channels = gy.shape
        n = A.shape[1]
        g_du = gy.new_empty(length, batch, 1, channels)  # dL/d(Δ u)
        g_delta = gy.new_empty(length, batch, channels)  # dL/dΔ through the decay
        g_B = gy.new_empty(length, batch, 1, n)
        g_C = gy.new_empty(length, batch, 1, n)
        g_A = torch.zeros_like(bufs.A_t)  # (N, D)
        adj = torch.empty_like(bufs.states)  # adjoint g_t = dL/dh_t for the chunk
        carry = torch.zeros_like(checkpoints[0])  # exp(Δ_{s'} A) g_{s'} from the next chunk
        for i, (s, e) in reversed(list(enumerate(bufs.spans()))):
            T = e - s
            decay, states = bufs.states_of_chunk(s, e, checkpoints[i])
            g = torch.mul(gy[s:e, :, None, :], bufs.C[s:e, :, :, None], out=adj[:T])
            rows, decays = g.unbind(0), decay.unbind(0)
            rows[T - 1].add_(carry)
            for nxt, cur, a in zip(rows[::-1], rows[-2::-1], decays[::-1], strict=False):
                cur.addcmul_(a, nxt)  # g_t = C_t y'_t + exp(Δ_{t+1} A) g_{t+1}
            torch.mul(decays[0], rows[0], out=carry)
            # Contractions over D as (1, D) @ (D, N) on transposed views: twice as fast in MKL
            # as (N, D) @ (D, 1).
            torch.matmul(gy[s:e, :, None, :], states.transpose(2, 3), out=g_C[s:e])  # Σ_d y' h
            torch.matmul(bufs.du[s:e, :, None, :], g.transpose(2, 3), out=g_B[s:e])  # Σ_d g Δu
            torch.matmul(bufs.B[s:e, :, None, :], g, out=g_du[s:e])  # Σ_n g B
            # dL/d(Δ A) = g_t ⊙ h_{t-1} ⊙ exp(Δ_t A), built in place over the adjoint buffer.
            g.mul_(decay)
            g[1:].mul_(states[: T - 1])
            g[0].mul_(checkpoints[i])
            torch.sum(torch.mul(g, bufs.A_t, out=states), 2, out=g_delta[s:e])  # Σ_n (.) A
            g_A.add_(g.mul_(bufs.delta[s:e, :, None, :]).sum((0, 1)))  # Σ_{t,b} (.) Δ
        g_du = g_du[:, :, 0]
        g_u = g_du * bufs.delta
        g_delta.addcmul_(g_du, bufs.u)
        return (
            g_u.transpose(0, 1),
            g_delta.transpose(0, 1),
            g_A.t(),
            g_B[:, :, 0].transpose(0, 1),
            g_C[:, :, 0].transpose(0, 1),
            None,
        )
