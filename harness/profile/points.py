"""What one profile point is: its spec (hashed into the run_id) and how to build its model.

A point is one measurement of one model: mode "train" (a forward+backward step at seq_len),
"decode" (prefill to a context, then single-token steps) or "counted" (the training step on
the meta device, nothing allocated). Everything that decides the numbers is in the spec, the
resolved model config included, so a changed preset gets a new run_id instead of a stale skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from seqbench.harness.common.profile_frame import LENGTH_FIELD
from seqbench.harness.records import spec_hash

MODES = ("train", "decode", "counted")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
COUNTED_METHOD = "counted-meta"


@dataclass(frozen=True)
class PointOptions:
    """Knobs of the measurement itself (part of the spec: they change the numbers)."""

    batch: int = 1
    vocab_size: int = 64
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0
    repeats: int = 3  # timed training steps (median) after one warm-up step
    decode_steps: int = 16  # timed decode steps (median) after two warm-up steps
    threads: int | None = None  # torch threads in the worker (None: torch's default)


def make_spec(
    mode: str, arch: str, overrides: dict[str, Any], length: int, options: PointOptions
) -> dict[str, Any]:
    """The canonical spec of a point; `overrides` are flat preset overrides (d_model=…)."""
    from seqbench.architectures import build_config

    config = build_config(arch, vocab_size=options.vocab_size, overrides=overrides)
    attention = config.mixer_kwargs.get("attention", {})
    spec: dict[str, Any] = {
        "mode": mode,
        "arch": arch,
        "overrides": dict(sorted(overrides.items())),
        LENGTH_FIELD[mode]: length,
        "batch": options.batch,
        "d_model": config.d_model,
        "n_layers": config.n_layers,
        "impl": attention.get("impl", "sdpa") if "attention" in config.layer_pattern else None,
        "vocab_size": options.vocab_size,
        "device": "meta" if mode == "counted" else options.device,
        "dtype": options.dtype,
        "seed": options.seed,
        "threads": None if mode == "counted" else options.threads,
        "model": config.to_dict(),
    }
    if mode == "train":
        spec["repeats"] = options.repeats
    elif mode == "decode":
        spec["decode_steps"] = options.decode_steps
    else:
        spec["method"] = COUNTED_METHOD
    return spec


SHORT_LENGTH = {"seq_len": "L", "context": "ctx"}


def point_label(spec: dict[str, Any]) -> str:
    """E.g. "train mha/sdpa L=1024 B=1 d=128 ffn.n_experts=16"."""
    arch = spec["arch"] + (f"/{spec['impl']}" if spec.get("impl") else "")
    field = LENGTH_FIELD[spec["mode"]]
    extra = [
        f"{k}={v}" for k, v in spec["overrides"].items() if k not in ("d_model", "attention.impl")
    ]
    parts = [spec["mode"], arch, f"{SHORT_LENGTH[field]}={spec[field]}", f"B={spec['batch']}"]
    return " ".join([*parts, f"d={spec['d_model']}", *extra])


def point_id(spec: dict[str, Any]) -> str:
    return spec_hash("profile", spec)


def point_length(spec: dict[str, Any]) -> int:
    return int(spec[LENGTH_FIELD[spec["mode"]]])


def series_spec(spec: dict[str, Any], x: str | None = None) -> dict[str, Any]:
    """The spec without the swept variable `x` (default: the length of its mode).

    `x` is "seq_len"/"context", "d_model", or any override key swept with --set (e.g.
    "ffn.n_experts"); the resolved model config goes too, since it contains the swept value.
    """
    x = x or LENGTH_FIELD[spec["mode"]]
    rest = {k: v for k, v in spec.items() if k != x}
    if x not in LENGTH_FIELD.values():
        rest.pop("model", None)
        rest["overrides"] = {k: v for k, v in spec["overrides"].items() if k != x}
    return rest


def x_value(spec: dict[str, Any], x: str) -> Any:
    """The value of a swept variable in a point's spec (None when the point does not set it)."""
    if x in spec and x != "overrides":
        return spec[x]
    return spec["overrides"].get(x)


def series_key(spec: dict[str, Any], x: str | None = None) -> str:
    """Identity of the sweep a point belongs to along `x` (default: its length)."""
    return spec_hash("series", series_spec(spec, x))


def build_model(spec: dict[str, Any], device: torch.device | str) -> torch.nn.Module:
    """The point's model, seeded, on `device` (meta: shapes only, nothing allocated)."""
    from seqbench.architectures import LanguageModel, build_config

    config = build_config(spec["arch"], vocab_size=spec["vocab_size"], overrides=spec["overrides"])
    torch.manual_seed(spec["seed"])
    with torch.device(device):
        model = LanguageModel(config)
    return model.to(DTYPES[spec["dtype"]])


def random_tokens(spec: dict[str, Any], length: int, device: torch.device | str) -> torch.Tensor:
    """(batch, length) token ids; zeros on meta, seeded uniform draws elsewhere."""
    shape = (spec["batch"], length)
    if str(device) == "meta":
        return torch.zeros(shape, dtype=torch.long, device="meta")
    gen = torch.Generator().manual_seed(spec["seed"] + 1)
    return torch.randint(0, spec["vocab_size"], shape, generator=gen).to(device)
