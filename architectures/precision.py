"""Where a mixer leaves bf16 autocast: `no_autocast`.

Autocast (the harness's bf16 training on CUDA) runs every matmul in bf16 whatever its inputs,
so code that casts its inputs to float32 still gets bf16 products, and bf16 tensors reach ops
that have no bf16 kernel on CUDA (`view_as_complex`, cuFFT). The parts that must stay in
float32 (the LRU's complex recurrence, Hyena's implicit filter, the MoE router) run inside
`no_autocast` and cast their inputs themselves.
"""

from __future__ import annotations

import contextlib

import torch


def no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast switched off on devices that have it; nothing elsewhere (meta: counting)."""
    if device_type in ("cpu", "cuda"):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()
