"""Dense channel mixers: the GELU MLP and SwiGLU (Shazeer 2020)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.registry import CHANNEL_MIXERS
from seqbench.errors import UserError


def swiglu_hidden(d_model: int) -> int:
    """8/3 * d_model rounded up to a multiple of 8: the parameter count of a 4x GELU MLP."""
    return -(-(8 * d_model // 3) // 8) * 8


def positive(name: str, value: int) -> int:
    if value <= 0:
        raise UserError(f"{name} must be positive, got {value}")
    return value


@CHANNEL_MIXERS.register("mlp", family="dense")
class MLP(nn.Module):
    """Linear -> GELU -> Linear with hidden width `expand * d_model` (or `d_hidden`)."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        expand: int = 4,
        d_hidden: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        hidden = positive("d_hidden", d_hidden if d_hidden is not None else expand * d_model)
        self.fc_in = nn.Linear(d_model, hidden, bias=bias)
        self.fc_out = nn.Linear(hidden, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc_out(F.gelu(self.fc_in(x)))  # (..., D)


@CHANNEL_MIXERS.register("swiglu", family="dense")
class SwiGLU(nn.Module):
    """SiLU(x W_gate) * (x W_up), then W_down; hidden 8/3 d_model by default."""

    def __init__(
        self, d_model: int, *, layer_idx: int = 0, d_hidden: int | None = None, bias: bool = False
    ) -> None:
        super().__init__()
        hidden = positive("d_hidden", d_hidden if d_hidden is not None else swiglu_hidden(d_model))
        self.fc_in = nn.Linear(d_model, 2 * hidden, bias=bias)  # gate and up, fused
        self.fc_out = nn.Linear(hidden, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.fc_in(x).chunk(2, dim=-1)  # (..., hidden) each
        return self.fc_out(F.silu(gate) * up)
