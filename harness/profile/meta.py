"""On paper: the training step and prefill of a model on the meta device, counted not measured.

Meta tensors carry shapes and dtypes but no data, so the very code that runs on the CPU can
be run at 1M tokens in milliseconds: torch's FLOP counter counts its matmuls and the
saved-tensor hooks count the bytes autograd would keep, exactly as for a measured step; the
decode state after `prefill` has the real state's shapes, so its bytes are exact too. Records
say `"method": "counted-meta"` so nobody mistakes them for measurements (no time, no RSS).

One intervention keeps the count honest for fused attention: on meta tensors
`scaled_dot_product_attention` has no fused kernel and falls back to its math decomposition,
which materialises the L×L score matrix and would be counted as saved. On the CPU the same
call runs the flash kernel `_scaled_dot_product_flash_attention_for_cpu` (which saves only q,
k, v, the output and a per-row logsumexp), and that op does have a meta implementation, so
`FusedAttentionOnMeta` routes meta calls to it. The explicit-softmax path is untouched.

A second one only saves time: an in-place pointwise op (`addcmul_`, `mul_`, ...) on a meta
tensor changes neither its shape nor its dtype, yet torch runs a Python reference to check
it, about a millisecond each. Recurrent scans that loop over time steps issue one per step,
so `InplaceMetaShortcut` answers those ops with their input, ahead of the FLOP counter (torch
counts no FLOPs for pointwise ops, and in-place ops save nothing), which makes counting such
models several times faster.

Models whose forward reads tensor values cannot run on meta; such points fail with a message
saying so. (The in-tree MoE counts on paper: on meta it assumes perfectly balanced routing,
which gives its exact expert FLOPs, since those depend only on tokens x k.)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from seqbench.architectures.contract import state_bytes
from seqbench.harness.common.outcome import one_line
from seqbench.harness.profile.memory import SavedTensorBytes
from seqbench.harness.profile.points import COUNTED_METHOD, build_model, random_tokens
from seqbench.harness.profile.train_step import flop_count_step, flop_metrics

_SDPA_PARAMS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")


class FusedAttentionOnMeta(TorchFunctionMode):
    """Run `F.scaled_dot_product_attention` on meta tensors as the CPU flash kernel would."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and args and args[0].device.type == "meta":
            bound = dict(zip(_SDPA_PARAMS, args, strict=False)) | kwargs
            if bound.get("attn_mask") is None:
                out, _logsumexp = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
                    bound["query"],
                    bound["key"],
                    bound["value"],
                    bound.get("dropout_p", 0.0),
                    bound.get("is_causal", False),
                    scale=bound.get("scale"),
                )
                return out  # (B, H, L, hd)
        return func(*args, **kwargs)


class InplaceMetaShortcut(TorchDispatchMode):
    """Return the input of in-place pointwise ops on meta tensors without running their check."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        target = args[0] if args else None
        if (
            isinstance(target, torch.Tensor)
            and target.is_meta
            and torch.Tag.pointwise in func.tags
            and func._schema.name.endswith("_")
        ):
            return target
        return func(*args, **(kwargs or {}))


class DataDependentError(RuntimeError):
    """The model's forward needs tensor values, which the meta device does not have."""


def count_on_meta(spec: dict[str, Any]) -> dict[str, Any]:
    """FLOPs and saved-activation bytes of a training step, and the decode state's bytes."""
    device = torch.device("meta")
    model = build_model(spec, device).train()
    inputs = random_tokens(spec, spec["seq_len"] + 1, device)  # (B, L+1)
    tokens = spec["batch"] * spec["seq_len"]
    try:
        with FusedAttentionOnMeta():
            saved = SavedTensorBytes.for_model(model)
            # one pass for FLOPs and bytes: Python loops over time steps are slow on meta
            flops = flop_count_step(model, inputs, saved, inner=InplaceMetaShortcut)
            with torch.no_grad(), InplaceMetaShortcut():
                _, state = model.prefill(inputs[:, :-1])
    except (NotImplementedError, RuntimeError) as exc:
        if "meta" in str(exc).lower() or "data-dependent" in str(exc).lower():
            raise DataDependentError(
                f"cannot count on the meta device (forward reads tensor values): {one_line(exc)}"
            ) from None
        raise
    return {
        "method": COUNTED_METHOD,
        **flop_metrics(flops, tokens),
        "saved_activations": saved.total_bytes,
        "saved_tensors": saved.n_saved,
        "state_bytes": state_bytes(state),
        "state_bytes_per_layer": [state_bytes(layer_state) for layer_state in state],
        "parameters": model.parameter_counts(),
    }
