"""RMSNorm and the gated RMSNorm through the C kernels (`norm_kernels.c`), with autograd.

`architectures/norm.py`'s RMSNorm runs this for float32 on the CPU when the C kernels are
built; everything else (bf16, float64, autocast, CUDA, a dispatch mode, no compiler) runs the
PyTorch expression, which is also the oracle the tests hold this to.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils._python_dispatch import _get_current_dispatch_mode

from seqbench.architectures.scans import native


def usable(x: Tensor, weight: Tensor, gate: Tensor | None = None) -> bool:
    """float32 on the CPU, no autocast and no dispatch mode (a mode sees aten ops only, not a
    ctypes call: the FLOP counter and the profiler's meta-device count run PyTorch's ops)."""
    return (
        x.dtype == torch.float32
        and weight.dtype == torch.float32
        and x.shape[-1] == weight.shape[0]
        and (gate is None or (gate.dtype == torch.float32 and gate.shape == x.shape))
        and not torch.is_autocast_enabled("cpu")
        and _get_current_dispatch_mode() is None
        and native.usable(x, weight)
    )


class NativeRMSNormFn(torch.autograd.Function):
    """y = x rstd w with rstd = 1 / sqrt(mean(x^2) + eps), over the last dimension.

    Saves what PyTorch's eager expression saves (x, rstd as (..., 1) and the normalised x), so
    a measured step's saved bytes stay the profiler's on-paper count for that expression."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, eps: float) -> Tensor:  # type: ignore[override]
        x = x.contiguous()
        D = x.shape[-1]
        rows = x.numel() // D
        normed, y = torch.empty_like(x), torch.empty_like(x)
        rstd = x.new_empty(*x.shape[:-1], 1)  # (..., 1)
        tensors = (x, weight.contiguous(), normed, y, rstd)
        units, lib = native.row_units(rows), native.library()
        native.split_units(lib.rmsnorm_fwd, units, *map(native.ptr, tensors), rows, D, eps)
        ctx.save_for_backward(x, rstd, normed, weight)
        return y

    @staticmethod
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        _, rstd, normed, weight = ctx.saved_tensors
        D = normed.shape[-1]
        rows = normed.numel() // D
        grad_y = grad_y.contiguous()
        grad_x = torch.empty_like(normed)
        units = native.row_units(rows)
        parts = normed.new_empty(units, D)  # (units, D): the weight gradient per unit of rows
        tensors = (grad_y, normed, weight.contiguous(), rstd, grad_x, parts)
        lib = native.library()
        native.split_units(lib.rmsnorm_bwd, units, *map(native.ptr, tensors), rows, D)
        return grad_x, parts.sum(0), None


class NativeGatedRMSNormFn(torch.autograd.Function):
    """RMSNorm(y SiLU(z)) w, Mamba-2/3's output norm; saves y, z and rstd only (the gated
    product and the normalised row are recomputed in the backward)."""

    @staticmethod
    def forward(ctx, y: Tensor, z: Tensor, weight: Tensor, eps: float) -> Tensor:  # type: ignore[override]
        y, z = y.contiguous(), z.contiguous()
        D = y.shape[-1]
        rows = y.numel() // D
        out = torch.empty_like(y)
        rstd = y.new_empty(*y.shape[:-1], 1)  # (..., 1)
        tensors = (y, z, weight.contiguous(), out, rstd)
        units, lib = native.row_units(rows), native.library()
        native.split_units(lib.gated_rmsnorm_fwd, units, *map(native.ptr, tensors), rows, D, eps)
        ctx.save_for_backward(y, z, weight, rstd)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:  # type: ignore[override]
        y, z, weight, rstd = ctx.saved_tensors
        D = y.shape[-1]
        rows = y.numel() // D
        grad_y, grad_z = torch.empty_like(y), torch.empty_like(z)
        units = native.row_units(rows)
        parts = y.new_empty(units, D)  # (units, D): the weight gradient per unit of rows
        tensors = (grad_out.contiguous(), y, z, weight.contiguous(), rstd, grad_y, grad_z, parts)
        lib = native.library()
        native.split_units(lib.gated_rmsnorm_bwd, units, *map(native.ptr, tensors), rows, D)
        return grad_y, grad_z, parts.sum(0), None


def rms_norm_native(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """x (..., D), weight (D,) -> (..., D); callers check `usable` first."""
    return NativeRMSNormFn.apply(x, weight, eps)


def gated_rms_norm_native(y: Tensor, z: Tensor, weight: Tensor, eps: float) -> Tensor:
    """RMSNorm(y SiLU(z)) w for y, z (..., D); callers check `usable(y, weight, z)` first."""
    return NativeGatedRMSNormFn.apply(y, z, weight, eps)
