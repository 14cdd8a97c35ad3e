"""Mamba-1's output tail, (y + u D) SiLU(z), through the C kernel (`gate_kernels.c`).

`architectures/mamba.py` runs this for float32 on the CPU when the C kernels ran the scan;
everywhere else it computes `skip_gate_torch`, which is also the oracle the tests hold the
kernel to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqbench.architectures.scans import native


def skip_gate_torch(y: Tensor, u: Tensor, z: Tensor, D: Tensor) -> Tensor:
    """(y + u D) SiLU(z) for y, u, z (..., d) and D (d,)."""
    return (y + u * D) * F.silu(z)


def _rows(t: Tensor) -> tuple[Tensor, int]:
    """t as rows of its last dimension with a row stride the kernel can step by: the tensor
    itself when its last dimension is dense and its rows evenly spaced (a slice of a wider
    tensor), else a contiguous copy."""
    d = t.shape[-1]
    flat = t.reshape(-1, d) if t.dim() != 2 else t
    if flat.stride(-1) == 1 and (flat.shape[0] <= 1 or flat.stride(0) >= d):
        return flat, max(flat.stride(0), d)
    flat = flat.contiguous()
    return flat, d


class NativeSkipGateFn(torch.autograd.Function):
    """Saves y, u and z as given (views, no copies); the products are recomputed."""

    @staticmethod
    def forward(ctx, y: Tensor, u: Tensor, z: Tensor, D: Tensor) -> Tensor:  # type: ignore[override]
        (yr, ys), (ur, us), (zr, zs) = _rows(y), _rows(u), _rows(z)
        rows, d = yr.shape
        out = y.new_empty(y.shape)
        tensors = (yr, ur, zr, D.contiguous(), out)
        args = (rows, d, ys, us, zs)
        units, lib = native.row_units(rows), native.library()
        native.split_units(lib.skip_gate_fwd, units, *map(_address, tensors), *args)
        ctx.save_for_backward(y, u, z, D)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        y, u, z, D = ctx.saved_tensors
        (yr, ys), (ur, us), (zr, zs) = _rows(y), _rows(u), _rows(z)
        rows, d = yr.shape
        grad_y, grad_u, grad_z = (y.new_empty(y.shape) for _ in range(3))
        units = native.row_units(rows)
        parts = y.new_empty(units, d)  # (units, d): the gradient of D per unit of rows
        tensors = (grad_out.contiguous(), yr, ur, zr, D.contiguous(), grad_y, grad_u, grad_z)
        args = (*map(_address, tensors), native.ptr(parts), rows, d, ys, us, zs)
        native.split_units(native.library().skip_gate_bwd, units, *args)
        return grad_y, grad_u, grad_z, parts.sum(0)


def _address(t: Tensor) -> int:
    """First element's address of a tensor whose last dimension is dense (rows may be spaced)."""
    assert t.stride(-1) == 1, "the gate kernel needs a dense last dimension"
    return t.data_ptr()


def usable(*tensors: Tensor) -> bool:
    return all(t.dtype == torch.float32 for t in tensors) and native.usable(*tensors)


def skip_gate(y: Tensor, u: Tensor, z: Tensor, D: Tensor) -> Tensor:
    """(y + u D) SiLU(z): the C kernel for float32 on the CPU, else `skip_gate_torch`."""
    if usable(y, u, z, D):
        return NativeSkipGateFn.apply(y, u, z, D)
    return skip_gate_torch(y, u, z, D)
