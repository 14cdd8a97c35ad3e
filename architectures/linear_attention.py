"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs"), per head:

    S_t = S_{t-1} + φ(k_t) v_tᵀ,   z_t = z_{t-1} + φ(k_t),   y_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + ε)

The feature map φ is a knob: `elu1` (ELU + 1, the paper's), `relu`, or `taylor2`, Based's
second-order Taylor map of exp(q·k / √d) (Arora et al. 2024), whose feature width is
1 + d + d² for d = `feature_dim` (16 by default, as Based). With `normalize=False` the
denominator is dropped. The normaliser rides along as one extra value column of ones, so
z is the last column of S and one kernel computes both. No decay, no gates: the state sums
every key it has seen, which is why the family below adds decays (RetNet, GLA) and the delta
rule. Decoding keeps S (H, d_φ, d_head + 1): a fixed size. This mixer is also the linear
layer of the Based preset (`feature_map=taylor2` beside sliding-window attention layers).
"""

from __future__ import annotations

from torch import Tensor, nn

from seqbench.architectures.linear_parts import (
    FEATURE_MAPS,
    Features,
    LinearFamilyMixer,
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

    def _features(self, x: Tensor, state: dict | None) -> Features:
        q = phi(self.feature_map, split_heads(self.q_proj(x), self.n_heads))
        k = phi(self.feature_map, split_heads(self.k_proj(x), self.n_heads))
        v = split_heads(self.v_proj(x), self.n_heads)  # (B, H, L, head_v)
        if self.normalize:  # a column of ones: its output is the normaliser φ(q)ᵀ Σ φ(k)
            v = nn.functional.pad(v, (0, 1), value=1.0)
        return Features(q, k, v)

    def _output(self, y: Tensor, f: Features) -> Tensor:
        if self.normalize:
            y = y[..., :-1] / (y[..., -1:] + self.eps)
        return self.out_proj(merge_heads(y))
