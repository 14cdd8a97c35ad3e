"""FLOPs from torch's own counter (`torch.utils.flop_counter.FlopCounterMode`).

What torch counts (checked in tests/test_profile_flops.py):
- only matrix products, convolutions and attention kernels; elementwise work (softmax,
  norms, activations, recurrent scans written with elementwise ops) counts zero;
- a matmul of (m×k)·(k×n) as 2·m·k·n; backward ops are counted too, so a training step is
  about 3× its forward;
- attention kernels as their two L×L products, 4·B·H·L²·hd = 4·B·L²·d per layer forward,
  *ignoring the causal mask* (`is_causal=True` is counted as full L², though a causal kernel
  needs about half); the explicit-softmax path computes the full L×L products anyway.

One gap fixed here: torch 2.x has no formula for the CPU flash kernel
(`aten._scaled_dot_product_flash_attention_for_cpu` and its backward), so on CPU a fused
attention layer would count zero. We register torch's own sdpa formulas for those two ops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


def _cpu_flash_forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_flash_backward(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


CUSTOM_FORMULAS: dict[Any, Callable[..., int]] = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_forward,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward,
}


def flop_counter() -> FlopCounterMode:
    """A silent FlopCounterMode that also knows the CPU flash-attention kernels."""
    return FlopCounterMode(display=False, custom_mapping=CUSTOM_FORMULAS)


def flops_by_op(counter: FlopCounterMode) -> dict[str, int]:
    """{"aten.mm": n, ...} over the whole run (JSON-ready)."""
    counts = counter.get_flop_counts().get("Global", {})
    return {str(op): int(n) for op, n in sorted(counts.items(), key=lambda kv: str(kv[0]))}
