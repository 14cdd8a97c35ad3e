"""What the linear-attention family's mixers share: one base class that runs the kernel in
training, prefill and decoding, plus heads, feature maps, key normalisation and the output norm.

Each mixer (linear_attention, retnet, gla, deltanet, gated_deltanet) only says how a token
becomes per-head queries, keys, values and gates (`_features`) and how the kernel's per-head
output becomes the layer output (`_output`); the base class picks the kernel (sequential
reference or chunked, `seqbench.architectures.scans.chunked_linear`) and keeps the decode state:
the per-head matrix S (d_k x d_v) plus the mixer's own fixed-size extras (short-conv windows,
the position counter for RoPE). So the state's bytes never depend on the context length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.scans import cuda
from seqbench.architectures.scans.chunked_linear import (
    delta_rule_chunked,
    delta_rule_ref,
    delta_step,
    linear_attention_chunked,
    linear_attention_ref,
    linear_step,
)
from seqbench.architectures.ssm_parts import CausalConv1d, choice, positive_int, scan_dtype
from seqbench.errors import UserError

IMPLS = ("auto", "chunked", "reference")
FEATURE_MAPS = ("elu1", "relu", "taylor2")


@dataclass
class Features:
    """Per-head kernel inputs, (B, H, L, ·) each; `extra` is what `_output` needs back (gates),
    `state` the mixer's own decode-state entries after these tokens (conv windows, position)."""

    q: Tensor
    k: Tensor
    v: Tensor
    beta: Tensor | None = None  # (B, H, L), delta rule only
    g: Tensor | None = None  # log-decay (B, H, L, dk | 1) for linear, (B, H, L) for delta
    extra: dict[str, Tensor] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


class LinearFamilyMixer(nn.Module):
    """Base of the family: forward / prefill / init_state / step around `_features`/`_output`.

    Subclasses set `delta_rule`, `n_heads`, `d_k`, `d_v` (per head; d_v counts any extra
    normaliser column) and implement `_features(x, state)` (state None while prefilling) and
    `_output(y, features)`.
    """

    delta_rule = False
    n_heads: int
    d_k: int
    d_v: int

    def _setup(self, impl: str, chunk: int) -> None:
        self.impl = choice(f"{type(self).__name__} impl", impl, IMPLS)
        self.chunk = positive_int("chunk", chunk)
        self.kernel_path = cuda.PATH_REFERENCE if impl == "reference" else cuda.PATH_TORCH

    def _features(self, x: Tensor, state: dict[str, Any] | None) -> Features:
        raise NotImplementedError

    def _output(self, y: Tensor, f: Features) -> Tensor:
        raise NotImplementedError

    def _own_state(self, batch: int, device: torch.device | str, dtype: torch.dtype) -> dict:
        """The mixer's fixed-size extras besides S (conv windows, position); none by default."""
        return {}

    # -- training and prefill ---------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        return self.prefill(x)[0]

    def prefill(self, x: Tensor) -> tuple[Tensor, dict[str, Any]]:
        """Outputs (B, L, D) over a prompt and the decode state after it, without stepping."""
        f = self._features(x, None)
        dtype = scan_dtype(x)
        q, k, v = f.q.to(dtype), f.k.to(dtype), f.v.to(dtype)
        g = None if f.g is None else f.g.to(dtype)
        if self.delta_rule:
            assert f.beta is not None
            beta = f.beta.to(dtype)
            if self.impl == "reference":
                y, S = delta_rule_ref(q, k, v, beta, g)
            else:
                y, S = delta_rule_chunked(q, k, v, beta, g, chunk=self.chunk)
        elif self.impl == "reference":
            y, S = linear_attention_ref(q, k, v, g)
        else:
            y, S = linear_attention_chunked(q, k, v, g, chunk=self.chunk)
        return self._output(y.to(x.dtype), f), {"S": S.to(x.dtype), **f.state}

    # -- decoding ---------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Any]:
        S = torch.zeros(batch_size, self.n_heads, self.d_k, self.d_v, device=device, dtype=dtype)
        return {"S": S, **self._own_state(batch_size, device, dtype)}

    def step(self, x_t: Tensor, state: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        f = self._features(x_t[:, None], state)  # (B, H, 1, ·)
        q, k, v = f.q[:, :, 0], f.k[:, :, 0], f.v[:, :, 0]
        g = None if f.g is None else f.g[:, :, 0]
        if self.delta_rule:
            assert f.beta is not None
            y, S = delta_step(state["S"], q, k, v, f.beta[:, :, 0], g)
        else:
            y, S = linear_step(state["S"], q, k, v, g)
        return self._output(y[:, :, None], f)[:, 0], {"S": S, **f.state}


# -- pieces ---------------------------------------------------------------------------------------
def head_dim(what: str, d_model: int, expand: float, n_heads: int) -> int:
    """Per-head width of a projection of `expand * d_model` channels split over n_heads."""
    if isinstance(expand, bool) or not isinstance(expand, (int, float)) or expand <= 0:
        raise UserError(f"{what} expand must be a positive number, got {expand!r}")
    positive_int("n_heads", n_heads)
    total = int(expand * d_model)
    if total < n_heads or total % n_heads:
        raise UserError(
            f"{what}: {total} channels (expand {expand} x d_model {d_model}) do not split "
            f"into {n_heads} heads"
        )
    return total // n_heads


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, L, H * d) -> (B, H, L, d)."""
    B, L, _ = x.shape
    return x.view(B, L, n_heads, -1).transpose(1, 2)


def merge_heads(y: Tensor) -> Tensor:
    """(B, H, L, d) -> (B, L, H * d)."""
    B, _, L, _ = y.shape
    return y.transpose(1, 2).reshape(B, L, -1)


def l2norm(x: Tensor, eps: float = 1e-6) -> Tensor:
    """x / sqrt(|x|² + eps) over the last dimension (the delta rule's key normalisation)."""
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps)


def feature_size(name: str, dim: int) -> int:
    """Width of φ(x) for an input of width dim."""
    return 1 + dim + dim * dim if name == "taylor2" else dim


def feature_map(name: str, x: Tensor) -> Tensor:
    """φ for linear attention. elu1 = ELU + 1 (Katharopoulos et al. 2020), relu, and taylor2 =
    [1, x / d^¼, vec(x xᵀ) / (√2 √d)] so that φ(q)·φ(k) = 1 + s + s²/2 with s = q·k / √d, the
    second-order Taylor expansion of exp(s) (Based; Arora et al. 2024)."""
    if name == "elu1":
        return F.elu(x) + 1
    if name == "relu":
        return F.relu(x)
    d = x.shape[-1]
    outer = (x[..., :, None] * x[..., None, :]).flatten(-2)  # (.., d²)
    return torch.cat(
        [torch.ones_like(x[..., :1]), x / d**0.25, outer / (math.sqrt(2) * math.sqrt(d))], dim=-1
    )


class HeadNorm(nn.Module):
    """RMSNorm over each head's output (weight shared by the heads, as fla's `o_norm`), then an
    optional SiLU output gate: the per-head normalisation RetNet, GLA and (Gated) DeltaNet use."""

    def __init__(self, d_v: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_v))

    def forward(self, y: Tensor, gate: Tensor | None = None) -> Tensor:
        """y (B, H, L, d_v); gate (B, L, H * d_v) or None -> (B, L, H * d_v)."""
        y32 = y.float()
        y = (y32 * torch.rsqrt(y32.pow(2).mean(-1, keepdim=True) + self.eps)).to(y.dtype)
        out = merge_heads(y * self.weight)
        return out if gate is None else out * F.silu(gate)


class ShortConvs(nn.Module):
    """Depthwise causal convolutions (+ SiLU) over q, k and v projections, as DeltaNet and Gated
    DeltaNet use; in decoding each keeps its last width − 1 inputs (a fixed size)."""

    def __init__(self, widths: dict[str, int], d_conv: int) -> None:
        super().__init__()
        self.convs = nn.ModuleDict(
            {n: CausalConv1d(w, d_conv, bias=False) for n, w in widths.items()}
        )

    def forward(
        self, name: str, x: Tensor, state: dict[str, Any] | None, new_state: dict[str, Any]
    ) -> Tensor:
        """x (B, L, C): all of a prompt (state None) or one token (L == 1, state given)."""
        conv = self.convs[name]
        if state is None:
            new_state[f"conv_{name}"] = conv.tail(x)
            return F.silu(conv(x))
        y_t, new_state[f"conv_{name}"] = conv.step(x[:, 0], state[f"conv_{name}"])
        return F.silu(y_t)[:, None]

    def init_state(self, batch: int, device: torch.device | str, dtype: torch.dtype) -> dict:
        return {
            f"conv_{n}": c.init_state(batch, c.conv.weight.shape[0], device, dtype)
            for n, c in self.convs.items()
        }
