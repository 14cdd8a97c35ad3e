"""FLOPs from torch's own counter (`torch.utils.flop_counter.FlopCounterMode`).

What torch counts (checked in tests/test_profile_flops.py):
- only matrix products, convolutions and attention kernels; elementwise work (softmax,
  norms, activations, recurrent scans written with elementwise ops) counts zero;
- a matmul of (m×k)·(k×n) as 2·m·k·n; backward ops are counted too, so a training step is
  about 3× its forward;
- attention kernels as their two L×L products, 4·B·H·L²·hd = 4·B·L²·d per layer forward,
  *ignoring the causal mask* (`is_causal=True` is counted as full L², though a causal kernel
  needs about half); the explicit-softmax path computes the full L×L products anyway.

Three gaps fixed here, by formulas of our own (`CUSTOM_FORMULAS`). For every fused
attention op (`SDPA_OPS`):
- torch 2.x has no formula for the CPU flash kernel
  (`aten._scaled_dot_product_flash_attention_for_cpu` and its backward), so on CPU a fused
  attention layer would count zero;
- torch 2.11 (the GPU machine's; 2.13 no longer does) asserts in its sdpa formulas that q,
  k and v have the same number of heads, so grouped-query attention (`gqa`, `mqa`: SDPA with
  `enable_gqa=True`, fewer key/value heads) failed to profile on CUDA ("sdpa_flop_count:
  query/key/value shapes are incompatible"). The kernel broadcasts each key/value head to
  its group of query heads and does the products of full multi-head attention, so ours
  count with the k and v *shapes* widened to the query's head count (no tensor is
  expanded), as torch 2.13 does: attention's products never depend on how many key/value
  heads are shared.
Dense (B, H, L, hd) inputs only, which is all `architectures/attention.py` passes.

And for `convolution_backward`: torch counts the weight gradient of a grouped convolution as
if it were dense, `groups` times too many (torch 2.11 and 2.13). The depthwise causal
convolutions of Mamba, Mamba-2/3, Hyena and the linear-attention family have groups =
channels, so their backward counted hundreds of times the forward: 64% of a d_model 1024
Mamba-2 step's counted FLOPs on the H200 (docs/gpu.md). Ours divides that term by `groups`;
ungrouped convolutions keep torch's count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import (
    FlopCounterMode,
    conv_backward_flop,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

aten = torch.ops.aten


def _all_heads(query_shape, key_shape, value_shape) -> tuple[tuple[int, ...], ...]:
    """q, k, v shapes (B, H, L, hd) with k and v widened to the query's H heads (GQA)."""
    heads = query_shape[1]
    key = (key_shape[0], heads, *key_shape[2:])
    value = (value_shape[0], heads, *value_shape[2:])
    return tuple(query_shape), key, value


def sdpa_forward_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kw) -> int:
    """Any fused attention op's forward: its first three arguments are q, k, v."""
    return sdpa_flop_count(*_all_heads(query_shape, key_shape, value_shape))


def sdpa_backward_flops(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kw
) -> int:
    """Any fused attention op's backward: its first four arguments are dO, q, k, v."""
    return sdpa_backward_flop_count(
        grad_out_shape, *_all_heads(query_shape, key_shape, value_shape)
    )


def conv_backward_flops(
    grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
    output_padding, groups, output_mask, out_shape=None, **kw,
) -> int:  # fmt: skip
    """torch's count of a convolution's backward, its weight-gradient term divided by `groups`
    (the dense count of a grouped convolution's weight gradient, exactly `groups` times too
    many); the input-gradient term is torch's own, which is right for any groups."""
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed)
    args += (output_padding, groups)
    grad_input = conv_backward_flop(*args, [output_mask[0], False, False], out_val=out_shape)
    grad_weight = conv_backward_flop(*args, [False, output_mask[1], False], out_val=out_shape)
    return grad_input + grad_weight // groups


# The fused attention kernels of CPU and CUDA (those this torch has), each with its backward.
SDPA_OPS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
)
CUSTOM_FORMULAS: dict[Any, Callable[..., int]] = {
    getattr(aten, name + part): formula
    for name in SDPA_OPS
    for part, formula in (("", sdpa_forward_flops), ("_backward", sdpa_backward_flops))
    if hasattr(aten, name + part)
} | {aten.convolution_backward: conv_backward_flops}


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode with our formulas (fused attention, convolution backward)."""
    return FlopCounterMode(display=False, custom_mapping=CUSTOM_FORMULAS)


def flops_by_op(counter: FlopCounterMode) -> dict[str, int]:
    """{"aten.mm": n, ...} over the whole run (JSON-ready)."""
    counts = counter.get_flop_counts().get("Global", {})
    return {str(op): int(n) for op, n in sorted(counts.items(), key=lambda kv: str(kv[0]))}
