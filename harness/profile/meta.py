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

The rest only saves time, and changes no count (tests hold the counts equal without it).
Counting costs Python time per op: torch's meta functions for most ops are Python (0.1-0.5 ms
each), and a step issues thousands. `MetaShortcuts` answers ops ahead of the FLOP counter:
- an in-place pointwise op (`addcmul_`, `mul_`) with its input, whose shape and dtype it
  cannot change;
- an op that makes new tensors (no view, nothing written in place), unless the FLOP counter
  counts it, with new tensors of the shapes, strides and dtypes that the first call with the
  same op and input metadata gave: about 80% of a step's calls repeat one (per layer, in
  backward, in prefill, at the next length). A meta function sees nothing but metadata, so
  it would give the same again; what autograd saves is decided above this mode, and every
  answer is a new storage, as the meta function's would be.
The scans' loops over chunks are batched on meta as well (`architectures/scans/counting.py`),
so a count costs about the same at 1k and at 1M tokens.

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
from torch.utils.flop_counter import flop_registry

from seqbench.architectures.contract import state_bytes
from seqbench.harness.common.outcome import one_line
from seqbench.harness.profile.flops import CUSTOM_FORMULAS
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


class MetaShortcuts(TorchDispatchMode):
    """Answer ops on meta tensors without torch's Python meta functions (see above)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not _all_meta(args):
            return func(*args, **kwargs)
        if torch.Tag.pointwise in func.tags and func._schema.name.endswith("_"):
            return args[0]  # in place: shape and dtype stay the input's
        if not _makes_new_tensors(func):
            return func(*args, **kwargs)
        key = (func, _metadata(args), _metadata(kwargs))
        known = _KNOWN.get(key)
        if known is None:
            out = func(*args, **kwargs)
            if len(_KNOWN) > MAX_KNOWN:
                _KNOWN.clear()
            outs = out if isinstance(out, tuple) else (out,)
            _KNOWN[key] = (isinstance(out, tuple), [(t.shape, t.stride(), t.dtype) for t in outs])
            return out
        several, metas = known
        outs = tuple(torch.empty_strided(*m[:2], dtype=m[2], device="meta") for m in metas)
        return outs if several else outs[0]


MAX_KNOWN = 100_000  # output metadata remembered per process (entries of a few hundred bytes)
_KNOWN: dict[tuple, tuple[bool, list[tuple[torch.Size, tuple[int, ...], torch.dtype]]]] = {}
_COUNTED = {*flop_registry, *CUSTOM_FORMULAS}  # ops the FLOP counter must see
_NEW_TENSORS: dict[Any, bool] = {}


def _all_meta(args: tuple) -> bool:
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    return bool(tensors) and all(t.is_meta for t in tensors)


def _makes_new_tensors(func: Any) -> bool:
    """Returns only tensors, none of them a view; writes no argument; not counted."""
    if func not in _NEW_TENSORS:
        schema = func._schema
        writes = any(a.alias_info is not None and a.alias_info.is_write for a in schema.arguments)
        returns = schema.returns
        _NEW_TENSORS[func] = (
            not writes
            and bool(returns)
            and all(str(r.type) == "Tensor" and r.alias_info is None for r in returns)
            and func._overloadpacket not in _COUNTED
        )
    return _NEW_TENSORS[func]


def _metadata(value: Any) -> Any:
    """What an op's output shapes, strides and dtypes can depend on, hashable."""
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), value.stride(), value.dtype, value.is_conj(), value.is_neg())
    if isinstance(value, (list, tuple)):
        return tuple(_metadata(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _metadata(v)) for k, v in sorted(value.items()))
    return (type(value), value)


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
            # one pass for FLOPs and bytes: every op costs Python time on meta
            flops = flop_count_step(model, inputs, saved, inner=MetaShortcuts)
            with torch.no_grad(), MetaShortcuts():
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
