"""DeltaNet (Schlag et al. 2021; Yang, Wang, Zhang, Shen, Kim, NeurIPS 2024, "Parallelizing
Linear Transformers with the Delta Rule over Sequence Length"), per head:

    S_t = S_{t-1} − β_t k_t (k_tᵀ S_{t-1} − v_tᵀ) = (I − β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ
    y_t = S_tᵀ q_t,   out = W_o( Norm_h(y) )

Instead of adding k vᵀ, each step replaces what S recalls for k_t by v_t, with strength
β_t = sigmoid(W_β x_t) ∈ (0, 1) per head, or β_t = 2 sigmoid(W_β x_t) ∈ (0, 2) with
`allow_neg_eigval` (Grazzi et al. 2025): I − β k kᵀ then has the eigenvalue 1 − β ∈ (−1, 1)
along k, so the state can flip sign, which parity needs; the chunked WY/UT form and the loop
take any β. As in the paper (and fla's layer): q, k and v pass a short causal convolution
(width 4) and SiLU, q and k are L2-normalised (so I − β k kᵀ is a contraction for β ≤ 2 and
the state stays bounded), queries are scaled by d_k^(−½), and each head's output is
RMS-normalised. Training uses the chunked WY/UT form (chunked_linear.py). Decoding
keeps S (H, d_k, d_v) and the three conv windows: a fixed size.
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
    ShortConvs,
    head_dim,
    l2norm,
    split_heads,
)
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans.chunked_linear import DEFAULT_CHUNK
from seqbench.architectures.ssm_parts import flag, positive_int


class DeltaRuleMixer(LinearFamilyMixer):
    """The parts DeltaNet and Gated DeltaNet share: q/k/v projections with short convs, L2-normed
    q and k, β = sigmoid(W_β x), per-head output norm (gated by SiLU(W_g x) when `gated`)."""

    delta_rule = True

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int,
        n_heads: int,
        expand_k: float,
        expand_v: float,
        d_conv: int,
        output_gate: bool,
        allow_neg_eigval: bool,
        bias: bool,
        impl: str,
        chunk: int,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.allow_neg_eigval = flag("allow_neg_eigval", allow_neg_eigval)
        self.n_heads = positive_int("n_heads", n_heads)
        name = type(self).__name__
        self.d_k = head_dim(f"{name} key", d_model, expand_k, n_heads)
        self.d_v = head_dim(f"{name} value", d_model, expand_v, n_heads)
        self._setup(impl, chunk)
        kd, vd = n_heads * self.d_k, n_heads * self.d_v
        self.q_proj = nn.Linear(d_model, kd, bias=bias)
        self.k_proj = nn.Linear(d_model, kd, bias=bias)
        self.v_proj = nn.Linear(d_model, vd, bias=bias)
        self.b_proj = nn.Linear(d_model, n_heads, bias=True)
        self.convs = ShortConvs({"q": kd, "k": kd, "v": vd}, d_conv)
        self.g_proj = nn.Linear(d_model, vd, bias=bias) if output_gate else None
        self.norm = HeadNorm(self.d_v)
        self.out_proj = nn.Linear(vd, d_model, bias=bias)

    def _qkv_beta(self, x: Tensor, state: dict[str, Any] | None, new: dict[str, Any]) -> tuple:
        q = self.convs("q", self.q_proj(x), state, new)
        k = self.convs("k", self.k_proj(x), state, new)
        v = self.convs("v", self.v_proj(x), state, new)
        q = l2norm(split_heads(q, self.n_heads)) / math.sqrt(self.d_k)  # (B, H, L, d_k)
        k = l2norm(split_heads(k, self.n_heads))
        beta = torch.sigmoid(self.b_proj(x)).transpose(1, 2)  # (B, H, L)
        if self.allow_neg_eigval:  # β ∈ (0, 2): I − β k kᵀ has the eigenvalue 1 − β ∈ (−1, 1)
            beta = 2 * beta
        return q, k, split_heads(v, self.n_heads), beta

    def _features(self, x: Tensor, state: dict[str, Any] | None) -> Features:
        new: dict[str, Any] = {}
        q, k, v, beta = self._qkv_beta(x, state, new)
        gate = {} if self.g_proj is None else {"gate": self.g_proj(x)}
        return Features(q, k, v, beta=beta, g=self._log_decay(x), extra=gate, state=new)

    def _log_decay(self, x: Tensor) -> Tensor | None:
        return None

    def _own_state(self, batch: int, device: torch.device | str, dtype: torch.dtype) -> dict:
        return self.convs.init_state(batch, device, dtype)

    def _output(self, y: Tensor, f: Features) -> Tensor:
        return self.out_proj(self.norm(y, f.extra.get("gate")))


@MIXERS.register("deltanet", family="linear-attention")
class DeltaNet(DeltaRuleMixer):
    """DeltaNet; impl "auto"/"chunked" (WY/UT form) or "reference"."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        n_heads: int = 4,
        expand_k: float = 1,
        expand_v: float = 1,
        d_conv: int = 4,
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
            output_gate=False,
            allow_neg_eigval=allow_neg_eigval,
            bias=bias,
            impl=impl,
            chunk=chunk,
        )
