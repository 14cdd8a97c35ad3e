"""What torch's FLOP counter counts, and the closed form 4·L²·d of attention's two products."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from seqbench.architectures.attention import attention_reference
from seqbench.harness.profile import flops
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


def strict_heads(formula):
    """torch 2.11's sdpa formulas (the GPU machine's): q, k and v must have equal head counts."""

    def strict(*shapes):
        if len({s[1] for s in shapes}) != 1:
            raise AssertionError("sdpa_flop_count: query/key/value shapes are incompatible")
        return formula(*shapes)

    return strict


@pytest.fixture
def torch_2_11_formulas(monkeypatch):
    """Our formulas over torch 2.11's strict ones, which failed `gqa`'s profile on the H200."""
    monkeypatch.setattr(flops, "sdpa_flop_count", strict_heads(flops.sdpa_flop_count))
    monkeypatch.setattr(
        flops, "sdpa_backward_flop_count", strict_heads(flops.sdpa_backward_flop_count)
    )


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_grouped_query_attention_counts_as_many_flops_as_mha(kv_heads, torch_2_11_formulas):
    q, k, v = qkv(64, 4, kv_heads, 8, "cpu", grad=True)
    with flop_counter() as counter:
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        forward = counter.get_total_flops()
        out.sum().backward()
    assert forward == 4 * 64**2 * 32
    assert counter.get_total_flops() - forward == 10 * 64**2 * 32


@pytest.mark.parametrize("name", flops.SDPA_OPS)
def test_every_fused_attention_kernel_has_a_gqa_formula(name, torch_2_11_formulas) -> None:
    """The CUDA kernels cannot run here; their formulas are called with GQA shapes directly."""
    op = getattr(torch.ops.aten, name, None)
    if op is None:
        pytest.skip(f"this torch has no aten.{name}")
    B, H, L, hd = 2, 8, 128, 16
    q, kv = (B, H, L, hd), (B, 2, L, hd)
    assert flops.CUSTOM_FORMULAS[op](q, kv, kv) == 4 * B * H * L**2 * hd
    backward = flops.CUSTOM_FORMULAS[getattr(torch.ops.aten, name + "_backward")]
    assert backward(q, q, kv, kv) == 10 * B * H * L**2 * hd


def test_gqa_model_attention_flops_equal_mha_in_a_profiled_step(torch_2_11_formulas) -> None:
    by_op = {}
    for arch in ("mha", "gqa"):
        spec = make_spec("train", arch, TINY, 64, PointOptions())
        model = build_model(spec, "cpu")
        by_op[arch] = flop_count_step(model, random_tokens(spec, 65, "cpu"))["by_op"]
    assert by_op["gqa"][FLASH] == by_op["mha"][FLASH] == 4 * 64**2 * TINY["d_model"] * 2
    assert by_op["gqa"]["aten.mm"] < by_op["mha"]["aten.mm"]  # smaller key/value projections


@pytest.mark.parametrize("groups", [1, 4, 64])
def test_a_convolution_backward_counts_twice_its_forward_whatever_the_groups(groups) -> None:
    """Input gradient + weight gradient, each the forward's products; torch's own counter
    counts a grouped convolution's weight gradient `groups` times (kept only for groups=1)."""
    C, W, L = 64, 4, 256
    x = torch.randn(2, C, L, requires_grad=True)  # (B, C, L)
    w = torch.randn(C, C // groups, W, requires_grad=True)
    counts = {}
    for name, mode in (("ours", flop_counter), ("torch", lambda: FlopCounterMode(display=False))):
        with mode() as counter:
            F.conv1d(F.pad(x, (W - 1, 0)), w, groups=groups).sum().backward()
        counts[name] = flops_by_op(counter)
    forward = 2 * 2 * L * C * (C // groups) * W
    assert counts["ours"] == {"aten.convolution": forward, "aten.convolution_backward": 2 * forward}
    torch_backward = forward + groups * forward  # input gradient + the dense weight gradient
    assert counts["torch"]["aten.convolution_backward"] == torch_backward


def test_mamba_step_counts_its_depthwise_convolution_backward_as_twice_the_forward() -> None:
    """The PyTorch path, as on CUDA without causal-conv1d (the CPU's C kernel fuses the conv)."""
    spec = make_spec("train", "mamba", {**TINY, "mamba.impl": "torch"}, 64, PointOptions())
    by_op = flop_count_step(build_model(spec, "cpu"), random_tokens(spec, 65, "cpu"))["by_op"]
    assert by_op["aten.convolution_backward"] == 2 * by_op["aten.convolution"] > 0
