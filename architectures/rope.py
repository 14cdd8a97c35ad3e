"""Rotary position embeddings (Su et al. 2021), rotate-half convention."""

from __future__ import annotations

import torch
from torch import Tensor


def rope_angles(
    positions: Tensor, head_dim: int, base: float, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """cos and sin tables (L, head_dim) for integer positions (L,)."""
    half = head_dim // 2
    inv_freq = base ** (
        -torch.arange(half, device=positions.device, dtype=torch.float32) / half
    )  # (hd/2,)
    angles = positions.float()[:, None] * inv_freq[None, :]  # (L, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (L, hd)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (..., L, hd) by the angles for its positions; returns a new tensor."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin
