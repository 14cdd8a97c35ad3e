"""Sliding-window attention: blocked fast path equals the masked-softmax reference (float64,
outputs and every gradient), decoding equals forward, and the KV cache stops at the window."""

from __future__ import annotations

import pytest
import torch

from seqbench.architectures import LanguageModel, build_config
from seqbench.architectures.attention import Attention, attention_reference, attention_sliding
from seqbench.architectures.contract import prefill, state_bytes
from seqbench.errors import UserError


def _qkv(length: int, n_kv_heads: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(2, 4, length, 8), (2, n_kv_heads, length, 8), (2, n_kv_heads, length, 8)]
    return [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_(True) for s in shapes]


def _grads(y: torch.Tensor, wrt: list[torch.Tensor]) -> list[torch.Tensor]:
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(9), dtype=y.dtype)
    return list(torch.autograd.grad((y * w).sum(), wrt))


@pytest.mark.parametrize(
    ("length", "window", "n_kv_heads"),
    [(5, 8, 4), (8, 8, 2), (37, 8, 1), (50, 7, 2), (64, 16, 4), (23, 1, 4)],
)
def test_sliding_equals_masked_reference_float64(length: int, window: int, n_kv_heads: int) -> None:
    """L < W, L = W, L not a multiple of W, W = 1; MHA, GQA and MQA head layouts."""
    q, k, v = _qkv(length, n_kv_heads)
    fast = attention_sliding(q, k, v, window)
    ref = attention_reference(q, k, v, window=window)
    assert (fast - ref).abs().max() < 1e-10
    for a, b in zip(_grads(fast, [q, k, v]), _grads(ref, [q, k, v]), strict=True):
        assert (a - b).abs().max() < 1e-10


def test_reference_window_really_cuts() -> None:
    """Keys W or more tokens back have no influence; the key W-1 back does."""
    q, k, v = (t.detach() for t in _qkv(20, 4))
    base = attention_reference(q, k, v, window=5)
    far, near = v.clone(), v.clone()
    far[:, :, 10] += 100.0  # 5 tokens before position 15
    near[:, :, 11] += 100.0  # 4 tokens before position 15
    assert torch.equal(attention_reference(q, k, far, window=5)[:, :, 15], base[:, :, 15])
    assert not torch.allclose(attention_reference(q, k, near, window=5)[:, :, 15], base[:, :, 15])


@pytest.mark.parametrize(("positions", "n_kv_heads"), [("rope", 2), ("none", 8), ("rope", 1)])
def test_module_fast_equals_reference_with_grads(positions: str, n_kv_heads: int) -> None:
    torch.manual_seed(0)
    kwargs = {"n_heads": 8, "n_kv_heads": n_kv_heads, "positions": positions, "window": 6}
    fast = Attention(64, **kwargs).double()
    ref = Attention(64, impl="reference", **kwargs).double()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(2, 29, 64, dtype=torch.float64)
    y_fast, y_ref = fast(x), ref(x)
    assert (y_fast - y_ref).abs().max() < 1e-10
    g_fast = _grads(y_fast, list(fast.parameters()))
    g_ref = _grads(y_ref, list(ref.parameters()))
    for a, b in zip(g_fast, g_ref, strict=True):
        assert (a - b).abs().max() < 1e-10


@pytest.mark.parametrize("n_kv_heads", [4, 1])
def test_step_and_prefill_continue_forward_past_the_window(n_kv_heads: int) -> None:
    torch.manual_seed(1)
    mixer = Attention(32, n_heads=4, n_kv_heads=n_kv_heads, window=5).double()
    x = torch.randn(2, 23, 32, dtype=torch.float64)
    with torch.no_grad():
        full = mixer(x)
        state = mixer.init_state(2, device="cpu", dtype=torch.float64)
        for t in range(23):
            y_t, state = mixer.step(x[:, t], state)
            assert (y_t - full[:, t]).abs().max() < 1e-10
        _, state = mixer.prefill(x[:, :11])
        for t in range(11, 23):
            y_t, state = mixer.step(x[:, t], state)
            assert (y_t - full[:, t]).abs().max() < 1e-10


def test_kv_cache_is_bounded_by_the_window() -> None:
    """State bytes after 4096 tokens equal those after W tokens: W-1 cached keys and values."""
    d_model, n_heads, n_kv_heads, window = 64, 8, 2, 16
    mixer = Attention(d_model, n_heads=n_heads, n_kv_heads=n_kv_heads, window=window)
    head_dim = d_model // n_heads
    with torch.no_grad():
        _, at_w = prefill(mixer, torch.randn(1, window, d_model))
        _, at_4096 = prefill(mixer, torch.randn(1, 4096, d_model))
        _, stepped = mixer.step(torch.randn(1, d_model), at_4096)
        _, short = prefill(mixer, torch.randn(1, 3, d_model))
    expected = 2 * n_kv_heads * head_dim * (window - 1) * 4
    assert state_bytes(at_w) == state_bytes(at_4096) == state_bytes(stepped) == expected
    assert state_bytes(short) == 2 * n_kv_heads * head_dim * 3 * 4  # below W: all tokens


def test_swa_preset_matches_mha_and_sets_a_window() -> None:
    config = build_config("swa", vocab_size=64)
    assert config.mixer_kwargs["attention"]["window"] == 64
    for d_model in (64, 128):
        sizes = [
            LanguageModel(
                build_config(n, vocab_size=64, overrides={"d_model": d_model})
            ).parameter_counts()["total"]
            for n in ("swa", "mha")
        ]
        assert sizes[0] == sizes[1]


def test_window_override_from_config() -> None:
    config = build_config("mha", vocab_size=16, overrides={"attention.window": 4})
    model = LanguageModel(config)
    assert all(block.mixer.window == 4 for block in model.blocks)


@pytest.mark.parametrize("window", [0, -3, 2.5, "64", True])
def test_bad_window_fails_in_one_line(window: object) -> None:
    with pytest.raises(UserError, match="window must be a positive integer") as info:
        Attention(64, window=window)
    assert "\n" not in str(info.value)


def test_gate_passes_with_a_window_shorter_than_its_probe() -> None:
    """The gate probes 32 tokens; a window of 8 binds there (swa's 64 would not)."""
    from seqbench.architectures.conformance import check_sequence_mixer

    report = check_sequence_mixer(
        lambda: Attention(64, n_heads=8, n_kv_heads=2, window=8), "attention(window=8)"
    )
    assert report.passed, report.format()
    assert report.state_bytes[64] == report.state_bytes[256] == 2 * 2 * 8 * 7 * 4
