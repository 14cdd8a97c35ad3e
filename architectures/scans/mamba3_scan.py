"""Mamba-3's scan (Lahoti et al. 2026): trapezoidal rule, rotary (complex) state, MIMO.

Per head h, with x_t (P x R), B_t and C_t (N x R) (R = MIMO rank, 1 for SISO) and a scalar
transition α_t = exp(a_t), a_t = Δ_t A_{t,h} (or 2 exp(a_t) − 1 with `signed`, the range
[−1, 1] of Grazzi et al. 2025):

    φ_t = (φ_{t-1} + ω_t) mod 2π                   cumulative rotary angle, K ≤ N/2 per head
    B̃_t = rot(B_t, φ_t),  C̃_t = rot(C_t, φ_t)      pairs (2i, 2i+1), i < K, rotated by φ_t[i];
                                                   channels 2K.. are not rotated
    S_t = α_t S_{t-1} + γ_t x_t B̃_tᵀ + β_t α_t x_{t-1} B̃_{t-1}ᵀ        (P x N)
    y_t = S_t C̃_t                                  (P x R)

γ_t = λ_t Δ_t and β_t = (1 − λ_t) Δ_t for the exponential-trapezoidal rule; γ = Δ and no β for
Mamba-2's Euler rule. Rotating B and C by the running angle is a complex diagonal transition
(each pair of state channels is one complex number turning by θ_t per step) written in real
arithmetic: C̃_tᵀ S B̃_s carries the relative rotation φ_t − φ_s. The angle increments ω_t are
given per head (the mixer decides how they come from the input: mamba-ssm's π tanh(θ_t) Δ_t,
or a raw projection); the mod 2π only keeps the angle small (exact in float64, accurate in
float32 at any length), cos and sin do not see it.

Three implementations with one signature:
- `mamba3_ref`: the sequential loop over `mamba3_step` (also the decode step), obviously
  correct and differentiated by autograd.
- `mamba3_chunked`: the rotation applied to all of B and C at once (angles by cumsum), then
  the chunked SSD matmul form. The trapezoid folds into it exactly: input s reaches every
  later state through α_{s+1} first, so its weight there is σ_s = γ_s + β_{s+1}; only in its
  own state S_s is the weight γ_s, so the diagonal of each chunk's weight matrix is γ.
  MIMO flattens (time, rank) into one axis of T·R rows inside a chunk.
- `mamba3_native` (SISO, float32 on the CPU): the same rotation and trapezoid folding, then
  the recurrence in the C kernel of Mamba-2 (`ssd_scan_native`, one group per head), which
  takes any transition α_t. The kernel runs U_t = α_t U_{t-1} + σ_t x_t B̃_tᵀ; the state the
  model reads is S_t = U_t − β_{t+1} x_t B̃_tᵀ (input t has not yet passed α_{t+1}), so
  y_t = U_t C̃_t − β_{t+1} (B̃_t · C̃_t) x_t, and S_L = U_L.

The decode state (`init_state`) is exactly what the next step needs: the SSM state, the
previous step's x and rotated B (the trapezoid's second term), and the cumulative angle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from seqbench.architectures.scans.counting import batched_on_meta
from seqbench.architectures.scans.decay import (
    decay_matrix,
    log_transition,
    prefix_transition,
    suffix_transition,
    transition,
)
from seqbench.architectures.scans.ssd import DEFAULT_CHUNK, ssd_scan_native

State = dict[str, Tensor]
CHECKPOINT_TOKENS = 512  # longer sequences recompute each group of this many steps in backward


TWO_PI = 2 * math.pi


def rotate(v: Tensor, angle: Tensor) -> Tensor:
    """Rotate pairs (2i, 2i+1) of v (.., N, R) by angle (.., K), i < K ≤ N/2; the channels
    from 2K on pass unrotated (mamba-ssm's rope_fraction < 1)."""
    K = angle.shape[-1]
    head, tail = v[..., : 2 * K, :], v[..., 2 * K :, :]
    pairs = head.unflatten(-2, (K, 2))  # (.., K, 2, R)
    v0, v1 = pairs[..., 0, :], pairs[..., 1, :]  # (.., K, R)
    cos, sin = torch.cos(angle)[..., None], torch.sin(angle)[..., None]  # (.., K, 1)
    turned = torch.stack((v0 * cos - v1 * sin, v0 * sin + v1 * cos), dim=-2).flatten(-3, -2)
    return torch.cat((turned, tail), dim=-2) if tail.shape[-2] else turned


def wrap(angle: Tensor) -> Tensor:
    """angle mod 2π, in [0, 2π); its gradient is 1."""
    return torch.remainder(angle, TWO_PI)


def init_state(
    batch: int,
    shape: tuple[int, int, int, int, int],
    *,
    trapezoidal: bool,
    device: torch.device | str,
    dtype: torch.dtype,
) -> State:
    """Zero state. shape = (H, P, N, R, K): heads, head dim, state size, rank, rotary angles
    per head (0: no rotary angle is kept)."""
    H, P, N, R, K = shape
    state = {"ssm": torch.zeros(batch, H, P, N, device=device, dtype=dtype)}
    if trapezoidal:
        state["x_prev"] = torch.zeros(batch, H, P, R, device=device, dtype=dtype)
        state["B_prev"] = torch.zeros(batch, H, N, R, device=device, dtype=dtype)
    if K:
        state["angle"] = torch.zeros(batch, H, K, device=device, dtype=dtype)
    return state


def mamba3_step(
    state: State,
    x_t: Tensor,
    a_t: Tensor,
    gamma_t: Tensor,
    beta_t: Tensor | None,
    B_t: Tensor,
    C_t: Tensor,
    omega_t: Tensor | None,
    signed: bool = False,
) -> tuple[Tensor, State]:
    """One step. x_t (b, H, P, R); a_t, gamma_t, beta_t (b, H); B_t, C_t (b, H, N, R);
    omega_t (b, H, K) angle increments. Returns y_t (b, H, P, R) and the new state."""
    new: State = {}
    if omega_t is not None:
        new["angle"] = wrap(state["angle"] + omega_t)  # (b, H, K)
        B_t, C_t = rotate(B_t, new["angle"]), rotate(C_t, new["angle"])
    alpha = transition(a_t, signed)[..., None, None]  # (b, H, 1, 1)
    S = alpha * state["ssm"] + gamma_t[..., None, None] * (x_t @ B_t.transpose(-1, -2))
    if beta_t is not None:
        prev = state["x_prev"] @ state["B_prev"].transpose(-1, -2)  # (b, H, P, N)
        S = S + (beta_t[..., None, None] * alpha) * prev
        new["x_prev"], new["B_prev"] = x_t, B_t
    new["ssm"] = S
    return S @ C_t, new  # (b, H, P, R)


def mamba3_ref(
    x: Tensor,
    a: Tensor,
    gamma: Tensor,
    beta: Tensor | None,
    B: Tensor,
    C: Tensor,
    omega: Tensor | None,
    signed: bool = False,
    state: State | None = None,
) -> tuple[Tensor, State]:
    """Sequential reference. x (b, L, H, P, R); a, gamma, beta (b, L, H); B, C (b, L, H, N, R);
    omega (b, L, H, K). Returns y (b, L, H, P, R) and the state after the last step."""
    b, _, H, P, R = x.shape
    N = B.shape[-2]
    if state is None:
        K = 0 if omega is None else omega.shape[-1]
        state = init_state(
            b, (H, P, N, R, K), trapezoidal=beta is not None, device=x.device, dtype=x.dtype
        )
    ys = []
    for t in range(x.shape[1]):
        y_t, state = mamba3_step(
            state, x[:, t], a[:, t], gamma[:, t], None if beta is None else beta[:, t],
            B[:, t], C[:, t], None if omega is None else omega[:, t], signed,
        )  # fmt: skip
        ys.append(y_t)
    return torch.stack(ys, dim=1), state


@dataclass
class _Chunks:
    """Per-chunk inputs (b, H, c, T, ...), B and C not yet rotated; angle None without rope."""

    x: Tensor  # (b, H, c, T, P, R)
    B: Tensor  # (b, H, c, T, N, R)
    C: Tensor  # (b, H, c, T, N, R)
    angle: Tensor | None  # (b, H, c, T, K) cumulative angle φ
    log_abs: Tensor  # (b, H, c, T) log |α|
    neg: Tensor | None  # (b, H, c, T) 1 where α < 0 (signed only)
    sigma: Tensor  # (b, H, c, T) weight of input s in later states, γ_s + β_{s+1}
    beta_next: Tensor | None  # (b, H, c, T) β_{t+1}: the diagonal gets σ_t − β_{t+1} = γ_t

    def slice(self, lo: int, hi: int) -> list[Tensor | None]:
        fields = (self.x, self.B, self.C, self.angle, self.log_abs, self.neg, self.sigma)
        return [None if t is None else t[:, :, lo:hi] for t in (*fields, self.beta_next)]


def _rotated(B: Tensor, angle: Tensor | None) -> Tensor:
    return B if angle is None else rotate(B, angle)


def _chunk_states(
    x: Tensor,
    B: Tensor,
    _C: Tensor,
    angle: Tensor | None,
    log_abs: Tensor,
    neg: Tensor | None,
    sigma: Tensor,
    _beta_next: Tensor | None,
) -> Tensor:
    """Each chunk's own final state Σ_s (α_{s+1} .. α_T) σ_s x_s B̃_sᵀ: (b, H, c, P, N).
    Takes every `_Chunks` field (C and β_{t+1} are not needed here)."""
    b, H, c, T, P, R = x.shape
    Bf = _rotated(B, angle).transpose(-1, -2).reshape(b, H, c, T * R, -1)  # rows (s, r)
    w = suffix_transition(log_abs, neg) * sigma  # (b, H, c, T)
    xw = (x * w[..., None, None]).transpose(-1, -2).reshape(b, H, c, T * R, P)
    return xw.transpose(-1, -2) @ Bf


def _chunk_outputs(
    x: Tensor,
    B: Tensor,
    C: Tensor,
    angle: Tensor | None,
    log_abs: Tensor,
    neg: Tensor | None,
    sigma: Tensor,
    beta_next: Tensor | None,
    carried: Tensor,
) -> Tensor:
    """Outputs (b, H, c, T, P, R) of chunks given the state carried into each (b, H, c, P, N)."""
    b, H, c, T, P, R = x.shape
    Bf = _rotated(B, angle).transpose(-1, -2).reshape(b, H, c, T * R, -1)  # rows (s, r)
    Cf = _rotated(C, angle).transpose(-1, -2).reshape(b, H, c, T * R, -1)  # rows (t, r')
    xf = x.transpose(-1, -2).reshape(b, H, c, T * R, P)
    # within chunks: W[t, s] = (α_{s+1} .. α_t) σ_s for s < t, γ_t on the diagonal.
    W = decay_matrix(log_abs, neg) * sigma[..., None, :]  # (b, H, c, T, T)
    if beta_next is not None:
        W = W - torch.diag_embed(beta_next)
    scores = (Cf @ Bf.transpose(-1, -2)).view(b, H, c, T, R, T, R) * W[..., :, None, :, None]
    y = scores.view(b, H, c, T * R, T * R) @ xf  # (b, H, c, T R', P)
    # the carried-in state read out at each step, after the transitions since the chunk start.
    into = prefix_transition(log_abs, neg).repeat_interleave(R, dim=-1)[..., None]
    y = y + (Cf @ carried.transpose(-1, -2)) * into
    return y.view(b, H, c, T, R, P).transpose(-1, -2)


def _in_groups(fn: Callable[..., Tensor], chunks: _Chunks, extra: Tensor | None) -> Tensor:
    """fn over groups of chunks, each recomputed in the backward (activation checkpointing)
    when gradients are on and there is more than one group: what autograd keeps is then the
    inputs plus one group's intermediates, not the (T x T) matrices of every chunk."""
    c, T = chunks.x.shape[2], chunks.x.shape[3]
    per = max(1, CHECKPOINT_TOKENS // T)
    if c <= per or not torch.is_grad_enabled():
        return fn(*chunks.slice(0, c), *([] if extra is None else [extra]))
    if batched_on_meta(chunks.x):  # every group in one checkpoint: the same ops, recomputed
        return checkpoint(fn, *chunks.slice(0, c), *([] if extra is None else [extra]),
                          use_reentrant=False)  # fmt: skip
    outs = []
    for lo in range(0, c, per):
        args = chunks.slice(lo, lo + per) + ([] if extra is None else [extra[:, :, lo : lo + per]])
        outs.append(checkpoint(fn, *args, use_reentrant=False))
    return torch.cat(outs, dim=2)


def _angle_and_weights(
    x: Tensor, gamma: Tensor, beta: Tensor | None, B: Tensor, omega: Tensor | None
) -> tuple[Tensor | None, Tensor | None, Tensor, State]:
    """What the chunked and the kernel forms share: the running angle φ (b, L, H, K) or None,
    β_{t+1} (b, L, H) or None, the folded input weight σ_t = γ_t + β_{t+1}, and the decode
    state's angle, x_prev and rotated B_prev after the last step."""
    final: State = {}
    angle = None
    if omega is not None:
        # summed in float64 so the angle is exact to float32 rounding at any length
        angle = wrap(omega.double().cumsum(1)).to(omega.dtype)  # (b, L, H, K)
        final["angle"] = angle[:, -1]
    if beta is None:
        return angle, None, gamma, final
    final["x_prev"] = x[:, -1]
    final["B_prev"] = _rotated(B[:, -1], None if angle is None else angle[:, -1])
    beta_next = F.pad(beta[:, 1:], (0, 0, 0, 1))  # β_{t+1}, 0 after the last step
    return angle, beta_next, gamma + beta_next, final


def mamba3_chunked(
    x: Tensor,
    a: Tensor,
    gamma: Tensor,
    beta: Tensor | None,
    B: Tensor,
    C: Tensor,
    omega: Tensor | None,
    signed: bool = False,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[Tensor, State]:
    """Chunked form with the signature of `mamba3_ref` (from the zero state)."""
    b, L, H, P, R = x.shape
    angle, beta_next, sigma, final = _angle_and_weights(x, gamma, beta, B, omega)
    log_abs, neg = log_transition(a, signed)

    T = min(chunk, L)
    pad = -L % T  # padded steps: α = 1 and no input, so the state passes through unchanged
    c = (L + pad) // T

    def chunks(t: Tensor | None) -> Tensor | None:  # (b, L, H, ...) -> (b, H, c, T, ...)
        if t is None:
            return None
        t = F.pad(t, (0, 0) * (t.dim() - 3) + (0, 0, 0, pad))
        return t.reshape(b, c, T, H, *t.shape[3:]).transpose(1, 3).transpose(2, 3)

    parts = _Chunks(
        chunks(x), chunks(B), chunks(C), chunks(angle), chunks(log_abs), chunks(neg),
        chunks(sigma), chunks(beta_next),
    )  # fmt: skip
    states = _in_groups(_chunk_states, parts, None)  # (b, H, c, P, N)
    # states passed across chunks with the whole-chunk transitions.
    totals = F.pad(parts.log_abs.sum(-1), (1, 0))  # (b, H, c + 1)
    neg_totals = None if neg is None else F.pad(parts.neg.sum(-1), (1, 0))
    carried = decay_matrix(totals, neg_totals) @ F.pad(states, (0, 0, 0, 0, 1, 0)).flatten(-2)
    carried = carried.view(b, H, c + 1, P, -1)  # [k] = state after chunk k-1
    y = _in_groups(_chunk_outputs, parts, carried[:, :, :-1])  # (b, H, c, T, P, R)
    y = y.permute(0, 2, 3, 1, 4, 5).reshape(b, c * T, H, P, R)[:, :L]
    final["ssm"] = carried[:, :, -1]
    return y, final


def mamba3_native(
    x: Tensor,
    a: Tensor,
    gamma: Tensor,
    beta: Tensor | None,
    B: Tensor,
    C: Tensor,
    omega: Tensor | None,
    signed: bool = False,
) -> tuple[Tensor, State]:
    """The C kernel's form with the signature of `mamba3_ref` (from the zero state); SISO
    only (R = 1) and float32 on the CPU: callers check `native.usable` and the rank first."""
    angle, beta_next, sigma, final = _angle_and_weights(x, gamma, beta, B, omega)
    B, C = _rotated(B, angle), _rotated(C, angle)  # (b, L, H, N, 1)
    x1, B1, C1 = x[..., 0], B[..., 0], C[..., 0]  # (b, L, H, P), (b, L, H, N)
    y, final["ssm"] = ssd_scan_native(x1 * sigma[..., None], transition(a, signed), B1, C1)
    if beta_next is not None:
        y = y - (beta_next * (B1 * C1).sum(-1))[..., None] * x1  # (b, L, H, P)
    return y[..., None], final
