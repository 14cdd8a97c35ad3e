"""Causal softmax attention with grouped key/value heads: MHA, GQA and MQA from one knob.

`n_kv_heads` = `n_heads` is multi-head attention, 1 is multi-query, anything between that
divides `n_heads` is grouped-query. The fast path calls `scaled_dot_product_attention`
(fused, never materialises the L x L scores on kernels that support it); the reference path
builds the score matrix and applies an explicit softmax, and tests hold the two equal.
Decoding keeps a KV cache of 2 * n_kv_heads * head_dim * tokens_seen values per layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.registry import MIXERS
from seqbench.architectures.rope import apply_rope, rope_angles
from seqbench.errors import UserError

IMPLS = ("sdpa", "reference")
POSITIONS = ("rope", "none")


def attention_reference(q: Tensor, k: Tensor, v: Tensor, *, causal_offset: int = 0) -> Tensor:
    """Explicit-softmax attention. q (B, H, Lq, hd); k, v (B, Hkv, Lk, hd) -> (B, H, Lq, hd).

    Query i sits at absolute position `causal_offset + i` and sees keys 0 .. that position.
    """
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1)  # (B, H, Lk, hd)
    v = v.repeat_interleave(groups, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Lq, Lk)
    q_pos = torch.arange(q.shape[2], device=q.device)[:, None] + causal_offset
    k_pos = torch.arange(k.shape[2], device=q.device)[None, :]
    scores = scores.masked_fill(k_pos > q_pos, float("-inf"))
    weights = torch.softmax(scores.float(), dim=-1).to(v.dtype)
    return weights @ v  # (B, H, Lq, hd)


def attention_sdpa(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Fused causal attention for a full sequence (Lq == Lk)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


@MIXERS.register("attention", family="attention")
class Attention(nn.Module):
    """Causal multi-head attention with `n_kv_heads` key/value heads and optional RoPE."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        n_heads: int = 8,
        n_kv_heads: int | None = None,
        positions: str = "rope",
        rope_base: float = 10000.0,
        bias: bool = False,
        impl: str = "sdpa",
    ) -> None:
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        validate_heads(d_model, n_heads, n_kv_heads)
        if impl not in IMPLS:
            raise UserError(f"attention impl must be one of {IMPLS}, got {impl!r}")
        if positions not in POSITIONS:
            raise UserError(f"attention positions must be one of {POSITIONS}, got {positions!r}")
        self.layer_idx = layer_idx
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = d_model // n_heads
        if positions == "rope" and self.head_dim % 2:
            raise UserError(f"RoPE needs an even head_dim, got {self.head_dim}")
        self.positions = positions
        self.rope_base = rope_base
        self.impl = impl
        kv_dim = n_kv_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.kv_proj = nn.Linear(d_model, 2 * kv_dim, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _project(self, x: Tensor, start: int) -> tuple[Tensor, Tensor, Tensor]:
        """q (B, H, L, hd), k and v (B, Hkv, L, hd) for tokens at positions start.."""
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.n_heads, self.head_dim).transpose(1, 2)
        kv = self.kv_proj(x).view(B, L, 2, self.n_kv_heads, self.head_dim)
        k, v = kv.unbind(dim=2)  # (B, L, Hkv, hd) each
        k, v = k.transpose(1, 2), v.transpose(1, 2)  # (B, Hkv, L, hd)
        if self.positions == "rope":
            pos = torch.arange(start, start + L, device=x.device)
            cos, sin = rope_angles(pos, self.head_dim, self.rope_base, q.dtype)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return q, k, v

    def _merge(self, out: Tensor) -> Tensor:
        B, _, L, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(B, L, -1))  # (B, L, D)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self._project(x, 0)
        return self._merge(self._attend(q, k, v))

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Full-sequence causal attention through the configured implementation."""
        return attention_sdpa(q, k, v) if self.impl == "sdpa" else attention_reference(q, k, v)

    # -- decoding -------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        empty = torch.zeros(
            batch_size, self.n_kv_heads, 0, self.head_dim, device=device, dtype=dtype
        )
        return {"k": empty, "v": empty.clone()}

    def step(self, x_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        seen = state["k"].shape[2]
        q, k, v = self._project(x_t[:, None, :], seen)  # q (B, H, 1, hd)
        k = torch.cat([state["k"], k], dim=2)  # (B, Hkv, seen+1, hd)
        v = torch.cat([state["v"], v], dim=2)
        out = attention_reference(q, k, v, causal_offset=seen)  # (B, H, 1, hd)
        return self._merge(out)[:, 0], {"k": k, "v": v}

    def prefill(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Forward over a prompt, keeping its keys and values as the cache."""
        q, k, v = self._project(x, 0)
        return self._merge(self._attend(q, k, v)), {"k": k.contiguous(), "v": v.contiguous()}


def validate_heads(d_model: int, n_heads: int, n_kv_heads: int) -> None:
    """One-line errors for head counts that cannot work."""
    if n_heads <= 0 or n_kv_heads <= 0:
        raise UserError(f"n_heads and n_kv_heads must be positive, got {n_heads}, {n_kv_heads}")
    if d_model % n_heads:
        raise UserError(f"n_heads={n_heads} does not divide d_model={d_model}")
    if n_heads % n_kv_heads:
        raise UserError(f"n_kv_heads={n_kv_heads} does not divide n_heads={n_heads}")
