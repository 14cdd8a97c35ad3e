"""Causal attention through the C kernel (`attention_kernels.c`), with PyTorch's autograd.

Used by the attention mixer's fused path (`impl="sdpa"`) for float32 on the CPU when the C
kernels are built and the head is at most `HD` (8) numbers: there PyTorch's CPU flash kernel
is several times slower (docs/performance.md). Everything else (float64, bf16, CUDA, larger
heads, no compiler) goes to `scaled_dot_product_attention`, and the tests hold the two equal.

The kernel is single-threaded per call; with more than one torch thread the (batch, kv head)
units are split over a small thread pool (ctypes releases the GIL during the call), so a
multi-threaded run is not slower than SDPA's own parallel loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from seqbench.architectures.scans import native

HD = 8  # the kernel's head size (attention_kernels.c); smaller heads are zero-padded to it


def usable(q: Tensor) -> bool:
    """True when the C kernel can take this attention: float32 on the CPU, heads of <= HD,
    and no dispatch mode active. Why the last: a mode (torch's FLOP counter, fake tensors)
    sees aten ops only, not a ctypes call, so under one the same math runs as torch's SDPA,
    which the profiler's FLOP counts and fake-tensor tracing understand."""
    return (
        q.dtype == torch.float32
        and q.shape[-1] <= HD
        and _get_current_dispatch_mode() is None
        and native.usable(q)
    )


def _padded(L: int) -> int:
    """L rounded up to the kernel's vector width: the rows of the transposed layouts."""
    return -(-L // native.BLOCK) * native.BLOCK


def _rows(t: Tensor) -> Tensor:
    """(..., L, hd) -> (..., L, HD) contiguous, zero-padded: zeros add nothing to q . k or p v."""
    if t.shape[-1] == HD:
        return t.contiguous()
    return F.pad(t, (0, HD - t.shape[-1])).contiguous()


def _transposed(t: Tensor, Lp: int) -> Tensor:
    """(..., L, hd) -> (..., HD, Lp) contiguous, zero-padded past hd and L."""
    return F.pad(t.transpose(-2, -1), (0, Lp - t.shape[-2], 0, HD - t.shape[-1])).contiguous()


def _untransposed(t: Tensor, L: int, hd: int) -> Tensor:
    """(..., HD, Lp) -> (..., L, hd), a view."""
    return t[..., :hd, :L].transpose(-2, -1)


class NativeCausalAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(hd) + causal/window mask) v; saves the row log-sum-exp, not scores.

    What it saves is what PyTorch's CPU flash kernel saves: q, k and v as given, the output
    and a (B, H, L) log-sum-exp, so the profiler's on-paper count of saved bytes (which
    follows the flash kernel on the meta device) stays the measurement. The kernel's padded
    and transposed layouts are made again in the backward, a few copies of O(L hd) each."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, window: int) -> Tensor:
        lib = native.library()
        B, H, L, hd = q.shape
        Hkv = k.shape[1]
        Lp = _padded(L)
        qt = _transposed(q, Lp)  # (B, H, HD, Lp)
        ot = torch.empty_like(qt)
        lse = torch.empty(B, H, Lp, dtype=q.dtype)  # (B, H, Lp)
        scale = hd**-0.5
        tensors = (qt, _rows(k), _rows(v), ot, lse)  # held until the kernel has run
        args = (H, Hkv, L, Lp, scale, window)
        native.split_units(lib.attn_fwd, B * Hkv, *map(native.ptr, tensors), *args)
        # (B, H, L, hd) stored as (B, L, H, hd), as the flash kernel stores it: the mixer's
        # merge of the heads is then a view, not a copy that out_proj would save again
        out = q.new_empty(B, L, H, hd).transpose(1, 2).copy_(_untransposed(ot, L, hd))
        ctx.save_for_backward(q, k, v, out, lse[..., :L].clone())
        ctx.window, ctx.scale = window, scale
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        lib = native.library()
        q, k, v, out, lse = ctx.saved_tensors
        B, H, L, hd = q.shape
        Hkv = k.shape[1]
        Lp = _padded(L)
        lse = F.pad(lse, (0, Lp - L))  # (B, H, Lp)
        delta = F.pad((grad * out).sum(-1), (0, Lp - L))  # (B, H, Lp): do . o
        qt, dot = _transposed(q, Lp), _transposed(grad, Lp)  # (B, H, HD, Lp)
        kt, vt = _transposed(k, Lp), _transposed(v, Lp)  # (B, Hkv, HD, Lp)
        dqt, dkt, dvt = torch.empty_like(qt), torch.empty_like(kt), torch.empty_like(vt)
        args = (H, Hkv, L, Lp, ctx.scale, ctx.window)
        tensors = (qt, dot, _rows(k), _rows(v), lse, delta, dqt)  # held until the kernel ran
        native.split_units(lib.attn_bwd_dq, B * Hkv, *map(native.ptr, tensors), *args)
        tensors = (_rows(q), _rows(grad), kt, vt, lse, delta, dkt, dvt)
        native.split_units(lib.attn_bwd_dkv, B * Hkv, *map(native.ptr, tensors), *args)
        dq, dk, dv = (_untransposed(t, L, hd) for t in (dqt, dkt, dvt))
        return dq, dk, dv, None


def attention_native(q: Tensor, k: Tensor, v: Tensor, window: int | None = None) -> Tensor:
    """q (B, H, L, hd); k, v (B, Hkv, L, hd) -> (B, H, L, hd), causal, optionally windowed."""
    return NativeCausalAttention.apply(q, k, v, 0 if window is None else window)
