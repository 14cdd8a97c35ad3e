"""Mamba-2's scan (state-space duality, Dao & Gu 2024) and its sequential reference.

Per head h (of H, in G groups sharing B and C), with a *scalar* decay a_t = Δ_t A_h:

    S_t = exp(a_t) S_{t-1} + Δ_t x_t B_tᵀ   (P x N)        y_t = S_t C_t   (P)

Because the decay is one number per head and step, a chunk of T steps is exactly a masked
"attention" y = (C Bᵀ ⊙ exp(segsum(a))) (Δ x) plus the contribution of the state carried in
from earlier chunks; chunk states are passed on by the same decay-matrix product over chunks.
Everything is a batched matmul, and autograd differentiates it. Why this does not work for
Mamba-1: there the decay differs per channel *and* state, so the decay matrix would be
(T x T) per channel and state, and exp of long cumulative sums loses float32 precision.

`signed` (Grazzi et al. 2025) makes the transition α_t = 2 exp(a_t) − 1 in (−1, 1] instead of
exp(a_t) in (0, 1]: a state can flip sign each step, which parity-like state tracking needs.
The chunked form then builds its decay products as exp(Σ log |α|) times the parity sign of the
negative factors (`scans/decay.py`, shared with Mamba-3's scan); the C kernel takes α as a
number and runs either form, mamba-ssm's CUDA kernel assumes exp(a) and must not be used with
it. `segsum` (also in `scans/decay.py`)
takes differences as sums of the terms between two steps, which keeps exp(segsum) accurate
in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqbench.architectures.scans import native
from seqbench.architectures.scans.decay import (
    decay_matrix,
    log_transition,
    prefix_transition,
    transition,
)
from seqbench.architectures.scans.decay import segsum as segsum  # re-exported: older importers

DEFAULT_CHUNK = 64  # CPU cost grows with L * chunk inside chunks and (L / chunk)^2 across them


def _heads(t: Tensor, n_heads: int) -> Tensor:
    """Repeat per-group B or C (.., G, N) to per-head (.., H, N)."""
    return t.repeat_interleave(n_heads // t.shape[-2], dim=-2)


def ssd_step(
    S: Tensor,
    x_t: Tensor,
    dt_t: Tensor,
    A: Tensor,
    B_t: Tensor,
    C_t: Tensor,
    *,
    signed: bool = False,
) -> tuple[Tensor, Tensor]:
    """One step. S (b, H, P, N); x_t (b, H, P); dt_t (b, H); A (H,); B_t, C_t (b, G, N)."""
    B_h, C_h = _heads(B_t, x_t.shape[1]), _heads(C_t, x_t.shape[1])  # (b, H, N)
    decay = transition(dt_t * A, signed)[..., None, None]  # (b, H, 1, 1)
    S = decay * S + (dt_t[..., None] * x_t)[..., None] * B_h[:, :, None, :]
    return (S * C_h[:, :, None, :]).sum(-1), S  # (b, H, P), (b, H, P, N)


def ssd_ref(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    S0: Tensor | None = None,
    *,
    signed: bool = False,
) -> tuple[Tensor, Tensor]:
    """Sequential reference. x (b, L, H, P); dt (b, L, H); A (H,); B, C (b, L, G, N)."""
    b, _, H, P = x.shape
    S = x.new_zeros(b, H, P, B.shape[-1]) if S0 is None else S0
    ys = []
    for x_t, dt_t, B_t, C_t in zip(
        x.unbind(1), dt.unbind(1), B.unbind(1), C.unbind(1), strict=True
    ):
        y_t, S = ssd_step(S, x_t, dt_t, A, B_t, C_t, signed=signed)
        ys.append(y_t)
    return torch.stack(ys, dim=1), S  # (b, L, H, P), (b, H, P, N)


def ssd_chunked(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk: int = DEFAULT_CHUNK,
    *,
    signed: bool = False,
) -> tuple[Tensor, Tensor]:
    """Chunked SSD with the signature of `ssd_ref` (no S0): y (b, L, H, P), S_L (b, H, P, N)."""
    b, L, H, P = x.shape
    G, N = B.shape[-2:]
    r, T = H // G, min(chunk, L)
    pad = -L % T  # padded steps have Δ = 0: α = 1 (either form) and no input: state unchanged
    x, dt = F.pad(x, (0, 0, 0, 0, 0, pad)), F.pad(dt, (0, 0, 0, pad))
    B, C = F.pad(B, (0, 0, 0, 0, 0, pad)), F.pad(C, (0, 0, 0, 0, 0, pad))
    c = (L + pad) // T
    # Layout (b, G, r, c, T, ...): heads split into groups, time into chunks.
    xdt = (x * dt[..., None]).view(b, c, T, G, r, P).permute(0, 3, 4, 1, 2, 5)
    a = (dt * A).view(b, c, T, G, r).permute(0, 3, 4, 1, 2)  # (b, G, r, c, T)
    log_abs, neg = log_transition(a, signed)  # log |α| (= a unsigned); 0/1 where α < 0
    Bc = B.view(b, c, T, G, N).permute(0, 3, 1, 2, 4)[:, :, None]  # (b, G, 1, c, T, N)
    Cc = C.view(b, c, T, G, N).permute(0, 3, 1, 2, 4)[:, :, None]
    decay = decay_matrix(log_abs, neg)  # (b, G, r, c, T, T): α_{j+1} .. α_i
    # 1. within chunks: masked, decayed attention of C on B.
    y = ((Cc @ Bc.transpose(-1, -2)) * decay) @ xdt  # (b, G, r, c, T, P)
    # 2. each chunk's own final state, then 3. states passed across chunks.
    states = (xdt * decay[..., -1, :, None]).transpose(-1, -2) @ Bc  # (b, G, r, c, P, N)
    totals = F.pad(log_abs.sum(-1), (1, 0))  # (b, G, r, c + 1): log |α| of whole chunks
    neg_totals = None if neg is None else F.pad(neg.sum(-1), (1, 0))
    carried = decay_matrix(totals, neg_totals) @ F.pad(states, (0, 0, 0, 0, 1, 0)).flatten(-2)
    carried = carried.view(b, G, r, c + 1, P, N)  # [k] = state after chunk k-1
    # 4. the carried-in state read out inside each chunk, decayed to each step.
    cum = prefix_transition(log_abs, neg)[..., None]  # (b, G, r, c, T, 1): α_1 .. α_t
    y = y + (Cc @ carried[:, :, :, :-1].transpose(-1, -2)) * cum
    y = y.permute(0, 3, 4, 1, 2, 5).reshape(b, c * T, H, P)[:, :L]
    return y, carried[:, :, :, -1].reshape(b, H, P, N)


NATIVE_CHECKPOINT = 16  # steps between saved states in the C kernel (its chunk buffer fits L2)


def ssd_native(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, *, signed: bool = False
) -> tuple[Tensor, Tensor]:
    """The fused C kernel (`native_kernels.c`) with the signature of `ssd_ref` (no S0).

    Unsigned, the kernel computes exp(Δ A) and Δ x itself (Mamba-2's own form); signed, it
    takes the transition 2 exp(Δ A) − 1 and the scaled input Δ x as numbers (`ssd_scan_native`)
    and autograd carries their gradients back to Δ and A. float32 on the CPU only; callers
    check `native.usable` first and otherwise use `ssd_chunked` (the PyTorch path, also this
    kernel's oracle in the tests).
    """
    if signed:
        return ssd_scan_native(x * dt[..., None], transition(dt * A, True), B, C)
    return NativeSSDFn.apply(x, dt, A, None, B, C)


def ssd_scan_native(x: Tensor, alpha: Tensor, B: Tensor, C: Tensor) -> tuple[Tensor, Tensor]:
    """S_t = α_t S_{t-1} + x_t B_tᵀ, y_t = S_t C_t in the C kernel, from the zero state.
    x (b, L, H, P) already scaled; alpha (b, L, H) any sign; B, C (b, L, G, N).
    Returns y (b, L, H, P) and S_L (b, H, P, N)."""
    return NativeSSDFn.apply(x, None, None, alpha, B, C)


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else native.ptr(t)


class NativeSSDFn(torch.autograd.Function):
    """The recurrence itself, one step at a time over blocks of head channels, in C: no
    (T x T) decay matrices, the state saved every NATIVE_CHECKPOINT steps and recomputed.
    Takes (dt, A) with alpha None, or alpha with dt and A None (the kernel's two forms). The
    final state is differentiable too (the adjoint starts from its gradient)."""

    @staticmethod
    def forward(ctx, x, dt, A, alpha, B, C):  # type: ignore[override]
        b, L, H, P = x.shape
        G, N = B.shape[-2:]
        xp = native.pad_last(x, native.BLOCK)  # (b, L, H, Pp): padded channels stay zero
        dt, A, alpha, B, C = (None if t is None else t.contiguous() for t in (dt, A, alpha, B, C))
        Pp, K = xp.shape[-1], NATIVE_CHECKPOINT
        blocks = H * Pp // native.BLOCK
        y = torch.empty_like(xp)
        ckpt = x.new_empty(b, -(-L // K) + 1, blocks, N, native.BLOCK)
        native.library().ssd_fwd(
            *map(_ptr, (xp, dt, A, alpha, B, C, y, ckpt)), b, L, H, Pp, G, N, K
        )
        ctx.save_for_backward(xp, dt, A, alpha, B, C, ckpt)
        ctx.P = P
        last = ckpt[:, -1].view(b, H, Pp // native.BLOCK, N, native.BLOCK)
        S = last.transpose(-1, -2).reshape(b, H, Pp, N)[:, :, :P].contiguous()
        return y[..., :P], S

    @staticmethod
    def backward(ctx, grad_y, grad_S):  # type: ignore[override]
        xp, dt, A, alpha, B, C, ckpt = ctx.saved_tensors
        b, L, H, Pp = xp.shape
        G, N = B.shape[-2:]
        gy = native.pad_last(grad_y, native.BLOCK)
        # the final state's gradient in the kernel's block layout (b, H * Pp / W, N, W)
        gS = xp.new_zeros(b, H, Pp, N) if grad_S is None else F.pad(grad_S, (0, 0, 0, Pp - ctx.P))
        gS = gS.view(b, H, Pp // native.BLOCK, native.BLOCK, N).transpose(-1, -2).contiguous()
        gx, gB, gC = torch.empty_like(xp), torch.empty_like(B), torch.empty_like(C)
        gdt, gA, galpha = (None if t is None else torch.empty_like(t) for t in (dt, A, alpha))
        native.library().ssd_bwd(
            *map(_ptr, (xp, dt, A, alpha, B, C, ckpt, gy, gS, gx, gdt, gA, galpha, gB, gC)),
            b, L, H, Pp, G, N, NATIVE_CHECKPOINT,
        )  # fmt: skip
        return gx[..., : ctx.P], gdt, gA, galpha, gB, gC
