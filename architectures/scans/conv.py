"""The Mamba mixers' depthwise causal convolution followed by SiLU, fused in C.

`conv_silu` runs `F.silu(conv(x))` as one C pass forward and two backward (the pre-activation
is recomputed, not stored) when the C kernels are there and the input is float32 on the CPU;
otherwise, and for impl="torch"/"reference", it is exactly `F.silu(conv(x))`, which is also
the oracle the tests hold the kernel to. Why fuse: PyTorch runs this as a padded copy, a
oneDNN depthwise convolution whose backward is slow at these widths, and a separate SiLU pass
each way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqbench.architectures.scans import native


def conv_silu(conv: torch.nn.Module, x: Tensor, fused: bool) -> Tensor:
    """SiLU(conv(x)) for x (B, L, C) and a `CausalConv1d` `conv`; fused in C when allowed."""
    if fused and x.dtype == torch.float32 and native.usable(x):
        return NativeConvSiluFn.apply(x, conv.conv.weight, conv.conv.bias)
    return F.silu(conv(x))


class NativeConvSiluFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        channels, width = weight.shape[0], weight.shape[-1]
        xp = native.pad_last(x, native.BLOCK)  # (B, L, Cp)
        w_t = native.pad_last(weight[:, 0, :].t(), native.BLOCK)  # (Kw, Cp)
        b = bias if bias is not None else x.new_zeros(channels)
        b = native.pad_last(b, native.BLOCK)
        batch, length, padded = xp.shape
        y = torch.empty_like(xp)
        native.library().conv_silu_fwd(
            *map(native.ptr, (xp, w_t, b, y)), batch, length, padded, width
        )
        ctx.save_for_backward(xp, w_t, b)
        ctx.channels, ctx.has_bias = channels, bias is not None
        return y[..., :channels]

    @staticmethod
    def backward(ctx, grad_y: Tensor):  # type: ignore[override]
        xp, w_t, b = ctx.saved_tensors
        batch, length, padded = xp.shape
        c, width = ctx.channels, w_t.shape[0]
        gy = native.pad_last(grad_y, native.BLOCK)
        gpre, gx = torch.empty_like(xp), torch.empty_like(xp)
        gw, gb = torch.empty_like(w_t), torch.empty_like(b)
        native.library().conv_silu_bwd(
            *map(native.ptr, (xp, w_t, b, gy, gpre, gx, gw, gb)), batch, length, padded, width
        )
        grad_w = gw[:, :c].t().unsqueeze(1)  # (C, 1, Kw) like the conv weight
        return gx[..., :c], grad_w, gb[:c] if ctx.has_bias else None
