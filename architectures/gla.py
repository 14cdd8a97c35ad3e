"""Gated Linear Attention (Yang, Wang, Shen, Panda, Kim 2024, "Gated Linear Attention
Transformers with Hardware-Efficient Training"), per head:

    S_t = diag(α_t) S_{t-1} + k_t v_tᵀ,   y_t = S_tᵀ q_t,   out = W_o( SiLU(W_r x) ⊙ Norm_h(y) )
    α_t = exp( max(logsigmoid(W_α2 W_α1 x_t + b_α) / τ, −5) )  ∈ (0, 1)^{d_k}

The decay is data-dependent and differs per key dimension. As in the paper: the gate comes from
a low-rank projection (rank 16) with a bias, log α = logsigmoid(·)/τ with temperature τ = 16
(so α starts near 1 and memories last long), key width d_model/2 (`expand_k=0.5`), value
width d_model (`expand_v=1`), 4 heads, queries scaled by d_k^(−½), per-head RMSNorm and a
SiLU output gate. Our addition: log α is floored at −5 per step (α ≥ 0.0067). With τ = 16 the
floor binds only when the gate's logit is below −80, and it bounds the exponentials of the
chunked form within float32's range for chunks up to 32 steps (chunked_linear.py, "Numerics");
the reference applies the same floor, so both compute one function. Decoding keeps
S (H, d_k, d_v): a fixed size.
"""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.linear_parts import (
    Features,
    HeadNorm,
    LinearFamilyMixer,
    head_dim,
    split_heads,
)
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.ssm_parts import positive_int
from seqbench.errors import UserError

LOG_ALPHA_FLOOR = -5.0
MAX_CHUNK = 32  # (MAX_CHUNK / 2) * |LOG_ALPHA_FLOOR| = 80 < log(float32 max) ≈ 88.7


@MIXERS.register("gla", family="linear-attention")
class GLA(LinearFamilyMixer):
    """Gated linear attention; impl "auto"/"chunked" or "reference"."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        n_heads: int = 4,
        expand_k: float = 0.5,
        expand_v: float = 1,
        gate_rank: int = 16,
        gate_temperature: float = 16.0,
        bias: bool = False,
        impl: str = "auto",
        chunk: int = MAX_CHUNK,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads = positive_int("n_heads", n_heads)
        self.d_k = head_dim("gla key", d_model, expand_k, n_heads)
        self.d_v = head_dim("gla value", d_model, expand_v, n_heads)
        if not gate_temperature > 0:
            raise UserError(f"gla gate_temperature must be positive, got {gate_temperature}")
        if chunk > MAX_CHUNK:
            raise UserError(f"gla chunk must be at most {MAX_CHUNK} (float32 range), got {chunk}")
        self.temperature = float(gate_temperature)
        self._setup(impl, chunk)
        kd, vd = n_heads * self.d_k, n_heads * self.d_v
        self.q_proj = nn.Linear(d_model, kd, bias=bias)
        self.k_proj = nn.Linear(d_model, kd, bias=bias)
        self.v_proj = nn.Linear(d_model, vd, bias=bias)
        self.g_proj = nn.Linear(d_model, vd, bias=bias)  # output gate
        self.gk_down = nn.Linear(d_model, positive_int("gate_rank", gate_rank), bias=False)
        self.gk_up = nn.Linear(gate_rank, kd, bias=True)
        self.norm = HeadNorm(self.d_v)
        self.out_proj = nn.Linear(vd, d_model, bias=bias)

    def _features(self, x: Tensor, state: dict[str, Any] | None) -> Features:
        q = split_heads(self.q_proj(x), self.n_heads) / math.sqrt(self.d_k)  # (B, H, L, d_k)
        k = split_heads(self.k_proj(x), self.n_heads)
        v = split_heads(self.v_proj(x), self.n_heads)
        log_alpha = F.logsigmoid(self.gk_up(self.gk_down(x))) / self.temperature
        g = split_heads(log_alpha.clamp(min=LOG_ALPHA_FLOOR), self.n_heads)  # (B, H, L, d_k)
        return Features(q, k, v, g=g, extra={"gate": self.g_proj(x)})

    def _output(self, y: Tensor, f: Features) -> Tensor:
        return self.out_proj(self.norm(y, f.extra["gate"]))
