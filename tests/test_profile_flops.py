"""What torch's FLOP counter counts, and the closed form 4·L²·d of attention's two products."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seqbench.architectures.attention import attention_reference
from seqbench.harness.profile.flops import flop_counter, flops_by_op
from seqbench.harness.profile.meta import FusedAttentionOnMeta, count_on_meta
from seqbench.harness.profile.points import PointOptions, build_model, make_spec, random_tokens
from seqbench.harness.profile.train_step import flop_count_step

FLASH = "aten._scaled_dot_product_flash_attention_for_cpu"
TINY = {"d_model": 32, "n_layers": 2}


def qkv(L: int, heads: int, kv_heads: int, head_dim: int, device: str, grad: bool = False):
    shapes = [(1, heads, L, head_dim), (1, kv_heads, L, head_dim), (1, kv_heads, L, head_dim)]
    return [torch.randn(s, device=device, requires_grad=grad) for s in shapes]


@pytest.mark.parametrize("kv_heads", [8, 2, 1])
@pytest.mark.parametrize("causal", [True, False])
def test_fused_attention_core_counts_4_L2_d_ignoring_the_causal_mask(kv_heads, causal) -> None:
    L, heads, head_dim = 65536, 8, 16  # on meta: nothing is allocated
    q, k, v = qkv(L, heads, kv_heads, head_dim, "meta")
    with FusedAttentionOnMeta(), flop_counter() as counter:
        F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    assert counter.get_total_flops() == 4 * L**2 * (heads * head_dim)
    assert list(flops_by_op(counter)) == [FLASH]


def test_explicit_attention_core_counts_4_L2_d() -> None:
    L, heads, head_dim = 65536, 8, 16
    q, k, v = qkv(L, heads, 2, head_dim, "meta")
    with flop_counter() as counter:
        attention_reference(q, k, v)
    assert counter.get_total_flops() == 4 * L**2 * (heads * head_dim)
    assert list(flops_by_op(counter)) == ["aten.bmm"]


def test_cpu_flash_kernel_is_counted_like_on_meta() -> None:
    """torch has no formula for the CPU flash kernel; ours must give the sdpa count."""
    q, k, v = qkv(64, 4, 2, 8, "cpu", grad=True)
    with flop_counter() as counter:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        forward = counter.get_total_flops()
        out.sum().backward()
    assert forward == 4 * 64**2 * 32
    # backward: the scores are recomputed, then four products (q·k, dO·v, P·dO, dS·k, q·dS)
    assert counter.get_total_flops() - forward == 10 * 64**2 * 32


@pytest.mark.parametrize("impl", ["sdpa", "reference"])
def test_whole_model_attention_flops_per_layer_match_the_closed_form(impl) -> None:
    L = 4096
    spec = make_spec("counted", "mha", {**TINY, "attention.impl": impl}, L, PointOptions())
    counted = count_on_meta(spec)
    d, layers = spec["d_model"], spec["n_layers"]
    by_op = counted["flops_by_op"]
    if impl == "sdpa":
        assert by_op[FLASH] == 4 * L**2 * d * layers
    else:  # forward's two products plus backward's four
        assert by_op["aten.bmm"] == 3 * 4 * L**2 * d * layers
    assert counted["method"] == "counted-meta"
    # the decode state is the KV cache: keys and values, L tokens, d floats each, per layer
    assert counted["state_bytes"] == 2 * L * d * 4 * layers


def test_linear_parts_scale_linearly_in_length() -> None:
    spec = {L: make_spec("counted", "mha", TINY, L, PointOptions()) for L in (1024, 2048)}
    mm = {L: count_on_meta(s)["flops_by_op"]["aten.mm"] for L, s in spec.items()}
    assert mm[2048] == 2 * mm[1024]


def test_moe_flops_per_token_grow_only_by_the_router_as_experts_are_added() -> None:
    """At fixed top_k every token runs k experts whatever E is; only the router grows (6·D·E)."""
    flops = {}
    for experts in (4, 16):
        overrides = {**TINY, "n_layers": 1, "ffn.n_experts": experts, "ffn.top_k": 2}
        spec = make_spec("train", "mha-moe", overrides, 64, PointOptions())
        model = build_model(spec, "cpu")
        flops[experts] = flop_count_step(model, random_tokens(spec, 65, "cpu"))["total"]
        counts = model.parameter_counts()
        assert counts["active"] < counts["total"]
    tokens, d = 64, TINY["d_model"]
    assert flops[16] - flops[4] == 6 * tokens * d * (16 - 4)
