"""mamba-ssm's CUDA kernels, imported lazily and only when a CUDA tensor asks for them.

Why lazy and guarded: mamba-ssm and causal-conv1d neither build nor import on a CPU-only
machine, and a broken CUDA install must not stop a CPU run. Every lookup returns None when the
kernels cannot be used, and the caller falls back to its PyTorch scan without a message; the
mixer records which path ran in its `kernel_path`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from torch import Tensor

PATH_MAMBA_SSM = "mamba-ssm-cuda"  # mamba-ssm selective scan / SSD kernels
PATH_TORCH = "torch-scan"  # our PyTorch fast path (chunked scan, chunked SSD, chunked LRU)
PATH_REFERENCE = "torch-reference"  # the sequential reference loop (impl="reference")


@functools.cache
def _import(module: str, name: str) -> Callable[..., Any] | None:
    try:
        mod = __import__(module, fromlist=[name])
        return getattr(mod, name)
    except Exception:  # ImportError, or a CUDA extension that fails to load
        pass
    if module.startswith(TRITON_PREFIX):
        return _import_triton_only(module, name)
    return None


# mamba-ssm's Triton kernels (the Mamba-2 chunk scan) are plain Python, but the package's
# __init__ imports its compiled selective-scan extension. When that extension is missing (an
# install with MAMBA_SKIP_CUDA_BUILD=TRUE, which needs no nvcc: docs/gpu.md), the Triton
# modules are loaded under a bare `mamba_ssm` package that skips that __init__.
TRITON_PREFIX = "mamba_ssm.ops.triton."


def _import_triton_only(module: str, name: str) -> Callable[..., Any] | None:
    import importlib
    import importlib.util
    import sys
    import types

    try:
        if "mamba_ssm" not in sys.modules:
            spec = importlib.util.find_spec("mamba_ssm")  # locates it; runs nothing
            if spec is None or not spec.submodule_search_locations:
                return None
            package = types.ModuleType("mamba_ssm")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            sys.modules["mamba_ssm"] = package
        return getattr(importlib.import_module(module), name)
    except Exception:
        return None


def compiled_extension_available() -> bool:
    """Whether mamba-ssm's compiled selective scan (CUDA) imports here."""
    return _import("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn") is not None


def _on_cuda(*tensors: Tensor) -> bool:
    return all(t.is_cuda for t in tensors)


def selective_scan_kernel(x: Tensor) -> Callable[..., Any] | None:
    """mamba_ssm's `selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
    return_last_state)` with u (B, D, L), B and C (B, N, L); None when unusable."""
    if not _on_cuda(x):
        return None
    return _import("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn")


def causal_conv1d_kernel(x: Tensor) -> Callable[..., Any] | None:
    """causal_conv1d's `causal_conv1d_fn(x (B, C, L), weight (C, W), bias, *, activation)`;
    activation must be a keyword (the fourth positional parameter is seq_idx)."""
    if not _on_cuda(x):
        return None
    return _import("causal_conv1d", "causal_conv1d_fn")


def ssd_kernel(x: Tensor) -> Callable[..., Any] | None:
    """mamba_ssm's `mamba_chunk_scan_combined(x (B, L, H, P), dt (B, L, H), A (H,),
    B (B, L, G, N), C (B, L, G, N), chunk_size, D, z, dt_bias, initial_states, seq_idx,
    dt_softplus, dt_limit, return_final_states)` (Triton); None when unusable."""
    if not _on_cuda(x):
        return None
    return _import("mamba_ssm.ops.triton.ssd_combined", "mamba_chunk_scan_combined")


def mamba3_siso_kernel(x: Tensor) -> Callable[..., Any] | None:
    """mamba_ssm's Mamba-3 SISO Triton kernel `mamba3_siso_combined(Q, K, V, ADT, DT, Trap,
    Q_bias, K_bias, Angles, D, Z, Input_States, chunk_size, return_final_states)`: Q and K
    (B, L, G, N), V (B, L, H, P), ADT/DT/Trap (B, H, L) with Trap a logit, Angles (B, L, H, S)
    multiplied by DT and accumulated inside; None when unusable."""
    if not _on_cuda(x):
        return None
    return _import("mamba_ssm.ops.triton.mamba3.mamba3_siso_combined", "mamba3_siso_combined")
