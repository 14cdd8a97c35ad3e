"""Causal softmax attention with grouped key/value heads: MHA, GQA and MQA from one knob.

`n_kv_heads` = `n_heads` is multi-head attention, 1 is multi-query, anything between that
divides `n_heads` is grouped-query. The fused path (`impl="sdpa"`, the default) never
materialises the L x L scores: for float32 on the CPU with heads of at most 8 numbers it runs
our C kernel (`scans/attention_native.py`, several times faster than PyTorch's there), else
`scaled_dot_product_attention`; `impl="torch"` always takes the latter. The reference path
builds the score matrix and applies an explicit softmax, and tests hold all three equal.
`kernel_path` records which ran: "c-native", "torch-sdpa" or "torch-reference".
Decoding keeps a KV cache of 2 * n_kv_heads * head_dim * tokens_seen values per layer.

`window=W` makes it sliding-window attention (Longformer/Mistral/Based): query t sees keys
t-W+1 .. t. The fast path is blocked (`attention_sliding`): queries in blocks of W, each block
attending to its own and the previous block's keys through one batched SDPA call with a
banded mask, so time and memory are O(L * W), not O(L^2). The reference masks the full score
matrix. The KV cache then keeps only the last W-1 tokens (with the new token, W), so decode
memory stops growing after W tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.registry import MIXERS
from seqbench.architectures.rope import apply_rope, rope_angles
from seqbench.architectures.scans import attention_native, cuda, native
from seqbench.errors import UserError

IMPLS = ("sdpa", "torch", "reference")
PATH_SDPA = "torch-sdpa"
POSITIONS = ("rope", "none")


def attention_reference(
    q: Tensor, k: Tensor, v: Tensor, *, causal_offset: int = 0, window: int | None = None
) -> Tensor:
    """Explicit-softmax attention. q (B, H, Lq, hd); k, v (B, Hkv, Lk, hd) -> (B, H, Lq, hd).

    Query i sits at absolute position `p = causal_offset + i` and sees keys 0 .. p, or only
    p-window+1 .. p when `window` is set.
    """
    groups = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(groups, dim=1)  # (B, H, Lk, hd)
    v = v.repeat_interleave(groups, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, Lq, Lk)
    q_pos = torch.arange(q.shape[2], device=q.device)[:, None] + causal_offset
    k_pos = torch.arange(k.shape[2], device=q.device)[None, :]
    hidden = k_pos > q_pos  # (Lq, Lk)
    if window is not None:
        hidden = hidden | (k_pos <= q_pos - window)
    scores = scores.masked_fill(hidden, float("-inf"))
    # softmax in float32 at least (bf16/fp16 inputs), in float64 when the inputs are
    weights = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))
    weights = weights.to(v.dtype)
    return weights @ v  # (B, H, Lq, hd)


def attention_sdpa(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Fused causal attention for a full sequence (Lq == Lk)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)


def attention_sliding(q: Tensor, k: Tensor, v: Tensor, window: int) -> Tensor:
    """Sliding-window causal attention in O(L * window) time and memory (Lq == Lk).

    q (B, H, L, hd); k, v (B, Hkv, L, hd) -> (B, H, L, hd). Queries are cut into nb blocks of
    W = window; block b (positions bW .. bW+W-1) can only see keys bW-W+1 .. bW+W-1, which lie
    in the 2W keys starting at bW-W. Keys are padded by W zeros in front (masked out) and the
    2W-key windows are taken with `unfold`; one SDPA call over B * nb blocks does the rest.
    """
    B, H, L, hd = q.shape
    if window >= L:  # the window never binds: plain causal attention
        return attention_sdpa(q, k, v)
    W, n_kv = window, k.shape[1]
    nb = -(-L // W)
    tail = nb * W - L  # queries padded to a whole number of blocks; their outputs are dropped
    q = F.pad(q, (0, 0, 0, tail))  # (B, H, nb*W, hd)
    k, v = (F.pad(t, (0, 0, W, tail)) for t in (k, v))  # (B, Hkv, W + nb*W, hd)
    qb = q.view(B, H, nb, W, hd).transpose(1, 2).reshape(B * nb, H, W, hd)
    kb, vb = (
        t.unfold(2, 2 * W, W).permute(0, 2, 1, 4, 3).reshape(B * nb, n_kv, 2 * W, hd)
        for t in (k, v)
    )  # (B*nb, Hkv, 2W, hd): block b holds keys at absolute positions bW-W .. bW+W-1
    i = torch.arange(W, device=q.device)[:, None]  # query offset in its block
    j = torch.arange(2 * W, device=q.device)[None, :]  # key offset in the block's window
    band = (j > i) & (j <= i + W)  # (W, 2W): key position in (query - W, query]
    first = band & (j >= W)  # block 0: the W padding keys in front do not exist
    # one cat, not a stack of nb copies: a Python list per block costs O(L) (seconds on meta)
    mask = torch.cat([first[None], band.expand(nb - 1, W, 2 * W)])  # (nb, W, 2W)
    mask = mask.expand(B, nb, W, 2 * W).reshape(B * nb, 1, W, 2 * W)
    out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, enable_gqa=True)
    out = out.view(B, nb, H, W, hd).transpose(1, 2).reshape(B, H, nb * W, hd)
    return out[:, :, :L]


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
        window: int | None = None,
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
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int) or window < 1
        ):
            raise UserError(f"attention window must be a positive integer or null, got {window!r}")
        self.window = window
        self.positions = positions
        self.rope_base = rope_base
        self.impl = impl
        self.kernel_path = cuda.PATH_REFERENCE if impl == "reference" else PATH_SDPA
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
        """Full-sequence causal (or sliding-window) attention through the configured impl."""
        if self.impl == "reference":
            return attention_reference(q, k, v, window=self.window)
        if self.impl == "sdpa" and attention_native.usable(q):
            self.kernel_path = native.PATH_NATIVE
            return attention_native.attention_native(q, k, v, self.window)
        self.kernel_path = PATH_SDPA
        if self.window is not None:
            return attention_sliding(q, k, v, self.window)
        return attention_sdpa(q, k, v)

    def _keep(self, t: Tensor) -> Tensor:
        """The cached part of keys or values (B, Hkv, n, hd): all of it, or the last W-1.

        Why W-1: the next query sees itself and the W-1 tokens before it; nothing older.
        """
        if self.window is None:
            return t.contiguous()
        return t[:, :, max(0, t.shape[2] - (self.window - 1)) :].contiguous()

    # -- decoding -------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        empty = torch.zeros(
            batch_size, self.n_kv_heads, 0, self.head_dim, device=device, dtype=dtype
        )
        # "pos" (a plain int, not counted as state bytes) is the absolute position of the next
        # token: RoPE needs it once a window has dropped the oldest keys from the cache.
        return {"k": empty, "v": empty.clone(), "pos": 0}

    def step(self, x_t: Tensor, state: dict) -> tuple[Tensor, dict]:
        pos = state["pos"]
        q, k, v = self._project(x_t[:, None, :], pos)  # q (B, H, 1, hd)
        k = torch.cat([state["k"], k], dim=2)  # (B, Hkv, cached+1, hd)
        v = torch.cat([state["v"], v], dim=2)
        # every cached key is inside the window by construction (see _keep)
        out = attention_reference(q, k, v, causal_offset=k.shape[2] - 1)  # (B, H, 1, hd)
        return self._merge(out)[:, 0], {"k": self._keep(k), "v": self._keep(v), "pos": pos + 1}

    def prefill(self, x: Tensor) -> tuple[Tensor, dict]:
        """Forward over a prompt, keeping its keys and values (the last W-1) as the cache."""
        q, k, v = self._project(x, 0)
        state = {"k": self._keep(k), "v": self._keep(v), "pos": x.shape[1]}
        return self._merge(self._attend(q, k, v)), state


def validate_heads(d_model: int, n_heads: int, n_kv_heads: int) -> None:
    """One-line errors for head counts that cannot work."""
    if n_heads <= 0 or n_kv_heads <= 0:
        raise UserError(f"n_heads and n_kv_heads must be positive, got {n_heads}, {n_kv_heads}")
    if d_model % n_heads:
        raise UserError(f"n_heads={n_heads} does not divide d_model={d_model}")
    if n_heads % n_kv_heads:
        raise UserError(f"n_kv_heads={n_kv_heads} does not divide n_heads={n_heads}")
