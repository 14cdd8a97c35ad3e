"""RMSNorm: the pre-norm used in every block (no mean subtraction, no bias)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.scans import norm_native


def rms_norm_torch(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """The PyTorch expression: the path off the CPU kernels and the kernel's oracle.

    Normalises in at least float32 so bf16 autocast keeps a stable scale, and float64 stays
    float64 (a float64 model is the exact reference of the float32 one)."""
    x32 = x.to(torch.promote_types(x.dtype, torch.float32))
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return normed.to(x.dtype) * weight


class RMSNorm(nn.Module):
    def __init__(self, d_model: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: Tensor) -> Tensor:
        # float32 on the CPU: one C pass each way instead of ~6 eager ops forward, ~10 back
        if norm_native.usable(x, self.weight):
            return norm_native.rms_norm_native(x, self.weight, self.eps)
        return rms_norm_torch(x, self.weight, self.eps)

    def gated(self, y: Tensor, z: Tensor, fused: bool = True) -> Tensor:
        """RMSNorm(y SiLU(z)): Mamba-2/3's output norm, the gate applied before the norm.

        fused=False (a mixer's impl="torch" or "reference") keeps the PyTorch expression, so
        that those paths stay free of C kernels inside the mixer."""
        if fused and norm_native.usable(y, self.weight, z):
            return norm_native.gated_rms_norm_native(y, z, self.weight, self.eps)
        return rms_norm_torch(y * F.silu(z), self.weight, self.eps)
