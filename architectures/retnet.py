"""RetNet's multi-scale retention (Sun et al. 2023, "Retentive Network"), per head h:

    S_t = γ_h S_{t-1} + k_t v_tᵀ,   y_t = S_tᵀ q_t,   γ_h = 1 − 2^(−5−h)  (fixed, not learnt)
    out = W_o( SiLU(W_g x) ⊙ GroupNorm_h(y) )

Queries and keys carry rotary positions (the rotation part of the paper's xPos; the decay part
is γ), keys are scaled by d_k^(−½), each head's output is normalised on its own (the paper's
GroupNorm, here RMSNorm per head) and gated by SiLU(W_g x). The decays span 1 − 1/32 (memory ~32
tokens) to 1 − 2^(−5−H+1): heads look at different scales, hence "multi-scale". The paper uses
value width 2 d_model (`expand_v=2`) and key width d_model; the preset sets key width d_model/2
and value width d_model to keep mha's parameter count. Decoding keeps S (H, d_k, d_v) and the
position counter (a Python int, for the rotation): a fixed size.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from seqbench.architectures.linear_parts import (
    Features,
    HeadNorm,
    LinearFamilyMixer,
    head_dim,
    split_heads,
)
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.rope import apply_rope, rope_angles
from seqbench.architectures.scans.chunked_linear import DEFAULT_CHUNK
from seqbench.architectures.ssm_parts import positive_int
from seqbench.errors import UserError


def retention_log_decay(n_heads: int) -> Tensor:
    """log γ_h with γ_h = 1 − 2^(−5−h), h = 0 .. H−1 (the paper's fixed per-head decays)."""
    return torch.log1p(-(2.0 ** (-5.0 - torch.arange(n_heads, dtype=torch.float64))))


@MIXERS.register("retnet", family="linear-attention")
class RetNet(LinearFamilyMixer):
    """Multi-scale retention; impl "auto"/"chunked" or "reference"."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        n_heads: int = 4,
        expand_k: float = 1,
        expand_v: float = 2,
        rope_base: float = 10000.0,
        bias: bool = False,
        impl: str = "auto",
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads = positive_int("n_heads", n_heads)
        self.d_k = head_dim("retnet key", d_model, expand_k, n_heads)
        self.d_v = head_dim("retnet value", d_model, expand_v, n_heads)
        if self.d_k % 2:
            raise UserError(f"retnet needs an even key width per head for RoPE, got {self.d_k}")
        self.rope_base = rope_base
        self._setup(impl, chunk)
        kd, vd = n_heads * self.d_k, n_heads * self.d_v
        self.q_proj = nn.Linear(d_model, kd, bias=bias)
        self.k_proj = nn.Linear(d_model, kd, bias=bias)
        self.v_proj = nn.Linear(d_model, vd, bias=bias)
        self.g_proj = nn.Linear(d_model, vd, bias=bias)
        self.norm = HeadNorm(self.d_v)
        self.out_proj = nn.Linear(vd, d_model, bias=bias)
        self.register_buffer("log_gamma", retention_log_decay(n_heads), persistent=False)

    def _features(self, x: Tensor, state: dict[str, Any] | None) -> Features:
        start = 0 if state is None else state["pos"]
        B, L, _ = x.shape
        q = split_heads(self.q_proj(x), self.n_heads)  # (B, H, L, d_k)
        k = split_heads(self.k_proj(x), self.n_heads) / math.sqrt(self.d_k)
        cos, sin = rope_angles(
            torch.arange(start, start + L, device=x.device), self.d_k, self.rope_base, x.dtype
        )
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        g = self.log_gamma.to(x.dtype)[None, :, None, None].expand(B, -1, L, 1)  # (B, H, L, 1)
        v = split_heads(self.v_proj(x), self.n_heads)
        return Features(q, k, v, g=g, extra={"gate": self.g_proj(x)}, state={"pos": start + L})

    def _own_state(self, batch: int, device: torch.device | str, dtype: torch.dtype) -> dict:
        return {"pos": 0}

    def _output(self, y: Tensor, f: Features) -> Tensor:
        return self.out_proj(self.norm(y, f.extra["gate"]))
