"""Attention: fused path equals the explicit-softmax reference; KV cache bytes; head errors."""

from __future__ import annotations

import pytest
import torch

from seqbench.architectures.attention import Attention, attention_reference, attention_sdpa
from seqbench.architectures.contract import prefill, state_bytes
from seqbench.errors import UserError


@pytest.mark.parametrize("n_kv_heads", [8, 2, 1])
def test_sdpa_equals_reference(n_kv_heads: int) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, 8, 33, 16, generator=gen)
    k = torch.randn(2, n_kv_heads, 33, 16, generator=gen)
    v = torch.randn(2, n_kv_heads, 33, 16, generator=gen)
    torch.testing.assert_close(attention_sdpa(q, k, v), attention_reference(q, k, v))


@pytest.mark.parametrize("positions", ["rope", "none"])
def test_module_impls_agree(positions: str) -> None:
    torch.manual_seed(0)
    fast = Attention(64, n_heads=8, n_kv_heads=2, positions=positions)
    ref = Attention(64, n_heads=8, n_kv_heads=2, positions=positions, impl="reference")
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(3, 20, 64)
    torch.testing.assert_close(fast(x), ref(x))


def test_reference_is_causal_with_offset() -> None:
    """A query at absolute position p sees exactly keys 0..p."""
    q = torch.randn(1, 1, 1, 4)
    k, v = torch.randn(1, 1, 5, 4), torch.randn(1, 1, 5, 4)
    out = attention_reference(q, k, v, causal_offset=2)
    torch.testing.assert_close(
        out, attention_reference(q, k[:, :, :3], v[:, :, :3], causal_offset=2)
    )


@pytest.mark.parametrize(("n_kv_heads", "tokens"), [(8, 64), (2, 64), (1, 256), (4, 100)])
def test_kv_cache_bytes_formula(n_kv_heads: int, tokens: int) -> None:
    """2 * n_kv_heads * head_dim * tokens_seen * dtype_size, per layer."""
    d_model, n_heads = 128, 8
    mixer = Attention(d_model, n_heads=n_heads, n_kv_heads=n_kv_heads)
    head_dim = d_model // n_heads
    with torch.no_grad():
        _, state = prefill(mixer, torch.randn(1, tokens, d_model))
        assert state_bytes(state) == 2 * n_kv_heads * head_dim * tokens * 4
        _, state = mixer.step(torch.randn(1, d_model), state)
    assert state_bytes(state) == 2 * n_kv_heads * head_dim * (tokens + 1) * 4


def test_prefill_then_step_continues_forward() -> None:
    torch.manual_seed(1)
    mixer = Attention(32, n_heads=4, n_kv_heads=2)
    x = torch.randn(2, 12, 32)
    with torch.no_grad():
        full = mixer(x)
        _, state = mixer.prefill(x[:, :8])
        for t in range(8, 12):
            y_t, state = mixer.step(x[:, t], state)
            torch.testing.assert_close(y_t, full[:, t], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_heads": 5}, "does not divide d_model"),
        ({"n_heads": 8, "n_kv_heads": 3}, "does not divide n_heads"),
        ({"n_heads": 0}, "must be positive"),
        ({"impl": "flash"}, "impl must be one of"),
        ({"positions": "alibi"}, "positions must be one of"),
    ],
)
def test_bad_heads_fail_in_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        Attention(64, **kwargs)
    assert "\n" not in str(info.value)
