"""Gated DeltaNet (Yang, Kautz, Hatamizadeh, ICLR 2025, "Gated Delta Networks: Improving
Mamba2 with Delta Rule"), per head:

    S_t = α_t (I − β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ,   y_t = S_tᵀ q_t
    α_t = exp(−softplus(W_a x_t + b_Δ) · exp(A_log))   (one number per head, as Mamba-2's decay)
    out = W_o( SiLU(W_g x) ⊙ Norm_h(y) )

Mamba-2's gating (forget everything quickly when α → 0) combined with DeltaNet's targeted
overwrite (β). As in the paper and fla's layer: A = exp(A_log) with A uniform in [1, 16] at
init, b_Δ initialised so softplus(b_Δ) is log-uniform in [0.001, 0.1] (Mamba's Δ init),
β = sigmoid(W_β x) (2 sigmoid(W_β x) ∈ (0, 2) with `allow_neg_eigval`, Grazzi et al. 2025),
short convs + SiLU on q, k, v, L2-normalised q and k, a SiLU output gate
on the per-head RMSNorm. The paper's value width is 2 d_model (`expand_v=2`); the preset uses
d_model with key width d_model/2 to keep mha's parameter count. The scalar decay keeps the
chunked WY/UT form exact with segsum-built decay matrices. Decoding keeps S (H, d_k, d_v) and
the conv windows: a fixed size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.deltanet import DeltaRuleMixer
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans.chunked_linear import DEFAULT_CHUNK
from seqbench.architectures.ssm_parts import check_dt_range, dt_bias_init
from seqbench.errors import UserError


@MIXERS.register("gated_deltanet", family="linear-attention")
class GatedDeltaNet(DeltaRuleMixer):
    """Gated DeltaNet; impl "auto"/"chunked" (WY/UT form with decay) or "reference"."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        n_heads: int = 4,
        expand_k: float = 1,
        expand_v: float = 2,
        d_conv: int = 4,
        A_init_range: Sequence[float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        allow_neg_eigval: bool = False,
        bias: bool = False,
        impl: str = "auto",
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__(
            d_model,
            layer_idx=layer_idx,
            n_heads=n_heads,
            expand_k=expand_k,
            expand_v=expand_v,
            d_conv=d_conv,
            output_gate=True,
            allow_neg_eigval=allow_neg_eigval,
            bias=bias,
            impl=impl,
            chunk=chunk,
        )
        try:
            lo, hi = (float(a) for a in A_init_range)
        except (TypeError, ValueError):
            raise UserError(f"A_init_range must be two numbers, got {A_init_range!r}") from None
        if not 0 < lo <= hi:
            raise UserError(f"A_init_range needs 0 < low <= high, got {A_init_range!r}")
        check_dt_range(dt_min, dt_max, dt_init_floor)
        self.a_proj = nn.Linear(d_model, n_heads, bias=False)
        self.A_log = nn.Parameter(torch.log(torch.empty(n_heads).uniform_(lo, hi)))
        self.dt_bias = nn.Parameter(dt_bias_init(n_heads, dt_min, dt_max, dt_init_floor))

    def _log_decay(self, x: Tensor) -> Tensor:
        """log α = −softplus(W_a x + b_Δ) · exp(A_log), (B, H, L)."""
        return (-F.softplus(self.a_proj(x) + self.dt_bias) * torch.exp(self.A_log)).transpose(1, 2)
