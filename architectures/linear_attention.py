"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"), per head:

    S_t = S_{t-1} + φ(k_t) v_tᵀ,   z_t = z_{t-1} + φ(k_t),   y_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + ε)

The feature map φ is a knob: `elu1` (ELU + 1, the paper's), `relu`, or `taylor2`, Based's
second-order Taylor map of exp(q·k / √d) (Arora et al. 2024), whose feature width is
1 + d + d² for d = `feature_dim` (16 by default, as Based). With `normalize=False` the
denominator is dropped. The normaliser rides along as one extra value column of ones, so
z is the last column of S and one kernel computes both. No decay, no gates: the state sums
every key it has seen, which is why the family below adds decays (RetNet, GLA) and the delta
rule. Decoding keeps S (H, d_φ, d_head + 1): a fixed size.

`d_conv` > 0 passes the q, k and v projections through depthwise causal convolutions of that
width and SiLU before the feature map (`ShortConvs`, as DeltaNet). Without it the layer has no
positional signal at all: a causal sum of φ(k) vᵀ is invariant to the order of the tokens, so
it cannot bind a value to the key just before it, the token shift recall (MQAR) needs. Decoding
then also keeps the three conv windows (last d_conv − 1 inputs each): still a fixed size. The
default 0 is Katharopoulos et al.'s layer, without convolutions. This mixer with
`feature_map=taylor2` and `d_conv=4` is the linear layer of the Based preset, beside
sliding-window attention layers (Arora et al. 2024 build Based from exactly those three parts).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from seqbench.architectures.linear_parts import (
    FEATURE_MAPS,
    Features,
    LinearFamilyMixer,
    ShortConvs,
    feature_size,
    head_dim,
    merge_heads,
    split_heads,
)
from seqbench.architectures.linear_parts import (
    feature_map as phi,
)
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans.chunked_linear import DEFAULT_CHUNK
from seqbench.architectures.ssm_parts import choice, positive_int
from seqbench.errors import UserError

TAYLOR_FEATURE_DIM = 16  # Based's query/key width per head before the Taylor map


@MIXERS.register("linear_attention", family="linear-attention")
class LinearAttention(LinearFamilyMixer):
    """Linear attention with feature map `feature_map`; impl "auto"/"chunked" or "reference"."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        n_heads: int = 4,
        feature_map: str = "elu1",
        feature_dim: int | None = None,
        normalize: bool = True,
        d_conv: int = 0,
        eps: float = 1e-6,
        bias: bool = False,
        impl: str = "auto",
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads = positive_int("n_heads", n_heads)
        self.feature_map = choice("linear_attention feature_map", feature_map, FEATURE_MAPS)
        self.head_v = head_dim("linear_attention value", d_model, 1, n_heads)
        if feature_dim is None:
            feature_dim = TAYLOR_FEATURE_DIM if feature_map == "taylor2" else self.head_v
        self.feature_dim = positive_int("feature_dim", feature_dim)
        self.normalize = bool(normalize)
        self.eps = eps
        self.d_k = feature_size(feature_map, self.feature_dim)
        self.d_v = self.head_v + int(self.normalize)
        self._setup(impl, chunk)
        self.q_proj = nn.Linear(d_model, n_heads * self.feature_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_heads * self.feature_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_heads * self.head_v, bias=bias)
        self.out_proj = nn.Linear(n_heads * self.head_v, d_model, bias=bias)
        self.d_conv = d_conv_width(d_conv)
        kd, vd = n_heads * self.feature_dim, n_heads * self.head_v
        self.convs = ShortConvs({"q": kd, "k": kd, "v": vd}, d_conv) if d_conv else None

    def _features(self, x: Tensor, state: dict[str, Any] | None) -> Features:
        new: dict[str, Any] = {}
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)  # (B, L, H * ·)
        if self.convs is not None:  # the token shift: each position sees its last d_conv inputs
            q = self.convs("q", q, state, new)
            k = self.convs("k", k, state, new)
            v = self.convs("v", v, state, new)
        q = phi(self.feature_map, split_heads(q, self.n_heads))  # (B, H, L, d_φ)
        k = phi(self.feature_map, split_heads(k, self.n_heads))
        v = split_heads(v, self.n_heads)  # (B, H, L, head_v)
        if self.normalize:  # a column of ones: its output is the normaliser φ(q)ᵀ Σ φ(k)
            v = nn.functional.pad(v, (0, 1), value=1.0)
        return Features(q, k, v, state=new)

    def _own_state(self, batch: int, device: torch.device | str, dtype: torch.dtype) -> dict:
        return {} if self.convs is None else self.convs.init_state(batch, device, dtype)

    def _output(self, y: Tensor, f: Features) -> Tensor:
        if self.normalize:
            y = y[..., :-1] / (y[..., -1:] + self.eps)
        return self.out_proj(merge_heads(y))


def d_conv_width(value: object) -> int:
    """The short-conv width: 0 (no convolution) or a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"d_conv must be a non-negative integer (0 = no conv), got {value!r}")
    return value
