"""Named architecture recipes (`mha`, `gqa`, `mamba`, ...) and their overrides.

A preset fixes the mixer per layer, the channel mixer and their hyper-parameters at a default
size (d_model 128, 2 layers). Any field can be overridden with flat keys, which is how the CLI
and suite files talk to it:

    d_model=64  n_layers=4  ffn=moe  layer_pattern=mamba,attention
    attention.n_kv_heads=2          (hyper-parameter of the "attention" mixer)
    ffn.n_experts=16                (hyper-parameter of the channel mixer)

Unknown keys and hyper-parameters a mixer does not take fail with one line before any work.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field, fields
from typing import Any

from seqbench.architectures.model import ModelConfig
from seqbench.architectures.param_match import REFERENCE, match_parameters
from seqbench.architectures.registry import CHANNEL_MIXERS, MIXERS, PRESETS
from seqbench.errors import UserError
from seqbench.registry import did_you_mean

DEFAULT_VOCAB = 64  # vocabulary used when a size is quoted without a task (e.g. `list`)


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    description: str
    config: ModelConfig = field(default_factory=ModelConfig)
    # Knobs ("mixer.param") solved at every width so the preset has mha's parameter count
    # (architectures/param_match.py); their values in `config` are the starting points.
    match: tuple[str, ...] = ()


def register_preset(
    name: str, family: str, description: str, *, match: tuple[str, ...] = (), **config: Any
) -> Preset:
    preset = Preset(name, family, description, ModelConfig(**config), tuple(match))
    PRESETS.add(name, preset, family=family, description=description)
    return preset


def build_config(
    preset_name: str, *, vocab_size: int, overrides: dict[str, Any] | None = None
) -> ModelConfig:
    """The preset's config at a task's vocabulary, with overrides applied and validated."""
    return preset_config(PRESETS.get(preset_name), vocab_size, overrides or {})


def preset_config(preset: Preset, vocab_size: int, overrides: dict[str, Any]) -> ModelConfig:
    """`preset` at a vocabulary with flat overrides applied, validated, and its matched knobs
    solved for the resulting width and depth (unless the overrides set them)."""
    config = copy.deepcopy(preset.config)
    config.vocab_size = vocab_size
    apply_overrides(config, overrides)
    validate_config(config)
    if preset.match:
        reference: Preset = PRESETS.get(REFERENCE)
        config = match_parameters(
            config, preset.match, reference.config, preset.config.n_layers, set(overrides)
        )
    return config


TOP_LEVEL = {f.name for f in fields(ModelConfig)} - {"mixer_kwargs", "ffn_kwargs", "vocab_size"}


def apply_overrides(config: ModelConfig, overrides: dict[str, Any]) -> None:
    """Apply flat override keys in place (see module docstring)."""
    # Switching the channel mixer drops the old one's hyper-parameters first.
    if "ffn" in overrides and overrides["ffn"] != config.ffn:
        config.ffn_kwargs = {}
    for key, value in overrides.items():
        head, dot, param = key.partition(".")
        if not dot:
            if key not in TOP_LEVEL:
                raise UserError(unknown_key_message(key, config))
            if key == "layer_pattern" and isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            setattr(config, key, tuple(value) if key == "layer_pattern" else value)
        elif head == "ffn":
            config.ffn_kwargs[param] = value
        else:
            config.mixer_kwargs.setdefault(head, {})[param] = value


def unknown_key_message(key: str, config: ModelConfig) -> str:
    known = sorted(TOP_LEVEL) + [f"{m}.<param>" for m in config.layer_pattern] + ["ffn.<param>"]
    hint = did_you_mean(key, sorted(TOP_LEVEL))
    return f"unknown architecture field {key!r}{hint} (known: {', '.join(known)})"


def validate_config(config: ModelConfig) -> None:
    """Fail early, in one line, on sizes and hyper-parameters that cannot build."""
    for name, value in (
        ("d_model", config.d_model),
        ("n_layers", config.n_layers),
        ("vocab_size", config.vocab_size),
    ):
        if not isinstance(value, int) or value <= 0:
            raise UserError(f"{name} must be a positive integer, got {value!r}")
    if not config.layer_pattern:
        raise UserError("layer_pattern must name at least one sequence mixer")
    for name in config.layer_pattern:
        check_kwargs(MIXERS.get(name), config.mixer_kwargs.get(name, {}), f"mixer {name!r}")
    for name in config.mixer_kwargs:
        if name not in config.layer_pattern:
            raise UserError(
                f"hyper-parameters given for mixer {name!r}, which is not in layer_pattern "
                f"{','.join(config.layer_pattern)}"
            )
    if config.ffn != "none":
        check_kwargs(
            CHANNEL_MIXERS.get(config.ffn), config.ffn_kwargs, f"channel mixer {config.ffn!r}"
        )
    elif config.ffn_kwargs:
        raise UserError("ffn hyper-parameters given but ffn is 'none'")


def check_kwargs(cls: type, kwargs: dict[str, Any], what: str) -> None:
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n in params if n not in ("d_model", "layer_idx")]
    for key in kwargs:
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            raise UserError(
                f"{what} has no hyper-parameter {key!r}{hint} (has: {', '.join(accepted)})"
            )


# -- the in-tree presets ---------------------------------------------------------------------------
def attention_preset(name: str, n_kv_heads: int, what: str) -> None:
    register_preset(
        name,
        "attention",
        f"{what}: 8 query heads, {n_kv_heads} key/value heads, RoPE, SwiGLU",
        layer_pattern=("attention",),
        mixer_kwargs={"attention": {"n_heads": 8, "n_kv_heads": n_kv_heads}},
    )


attention_preset("mha", 8, "multi-head attention")
attention_preset("gqa", 2, "grouped-query attention")
attention_preset("mqa", 1, "multi-query attention")

# Sliding-window attention: Based (Arora et al. 2024) pairs its linear attention with windows of
# 64 tokens; the same window here, so `swa` is Based's local half on its own. Same parameters as
# mha at every width (the window changes what is attended, not the weights).
SWA_WINDOW = 64
register_preset(
    "swa",
    "attention",
    f"sliding-window attention: mha whose queries see the last {SWA_WINDOW} tokens",
    layer_pattern=("attention",),
    mixer_kwargs={"attention": {"n_heads": 8, "n_kv_heads": 8, "window": SWA_WINDOW}},
)
register_preset(
    "mha-moe",
    "moe",
    "multi-head attention with a top-2-of-8 SwiGLU Mixture-of-Experts",
    layer_pattern=("attention",),
    mixer_kwargs={"attention": {"n_heads": 8, "n_kv_heads": 8}},
    ffn="moe",
    ffn_kwargs={"n_experts": 8, "top_k": 2},
)

# -- recurrent presets (issue 3) ----------------------------------------------------------------
# Mamba and Mamba-2 blocks have no separate MLP in their papers (the gated in/out expansion plays
# its role), and the papers match a Transformer's budget by stacking two Mamba blocks per
# attention+MLP layer. At a fixed 2 layers the same budget comes from widening the block:
# `expand` is solved at every width to land on mha's count (about 3.5 at d_model 128). The LRU
# paper follows each recurrent layer with an MLP, so `lru` keeps the SwiGLU and solves its
# number of complex states (128 at d_model 128).
register_preset(
    "mamba",
    "ssm",
    "Mamba-1 (selective scan), no MLP as in the paper, expand solved to match mha's parameters",
    layer_pattern=("mamba",),
    mixer_kwargs={"mamba": {"expand": 3.5}},
    ffn="none",
    match=("mamba.expand",),
)
register_preset(
    "mamba2",
    "ssm",
    "Mamba-2 (SSD, scalar decay per head, 16-wide heads), no MLP, expand solved to match mha",
    layer_pattern=("mamba2",),
    mixer_kwargs={"mamba2": {"expand": 3.5, "headdim": 16}},
    ffn="none",
    match=("mamba2.expand",),
)
register_preset(
    "lru",
    "linear-recurrence",
    "Linear Recurrent Unit, complex states solved to match mha, followed by SwiGLU as in the paper",
    layer_pattern=("lru",),
    mixer_kwargs={"lru": {"d_state": 128}},
    match=("lru.d_state",),
)
register_preset(
    "hybrid",
    "hybrid",
    "two Mamba layers per attention layer, no MLP; Mamba expand solved to match mha",
    n_layers=3,
    layer_pattern=("mamba", "mamba", "attention"),
    mixer_kwargs={"mamba": {"expand": 3.0}, "attention": {"n_heads": 8, "n_kv_heads": 8}},
    ffn="none",
    match=("mamba.expand",),
)

# -- long convolutions (issue 13) ----------------------------------------------------------------
# Hyena replaces attention inside an ordinary Transformer block, MLP kept (Poli et al. 2023). Its
# projections are attention's 4 d_model^2; the implicit filter's MLP width is derived from
# d_model (d_model // 8), which keeps it within 5% of mha at d_model 64 and 128.
register_preset(
    "hyena",
    "convolution",
    "Hyena order 2: implicit long convolution (positional MLP filter, FFT) with gating, SwiGLU",
    layer_pattern=("hyena",),
)

# -- the linear-attention family (issue 13) -------------------------------------------------------
# Every paper here keeps the Transformer++ block (mixer + SwiGLU), so the presets keep the SwiGLU
# and size the mixer to attention's 4 d_model² projections: widths are fractions of d_model, so
# the match holds at every width (tests/test_linear_presets.py checks d_model 64 and 128).
# RetNet and Gated DeltaNet are 8 d_model² at their papers' widths (values 2 d_model, keys
# d_model); their presets use keys d_model/2 and values d_model, GLA's own default widths.
HALF_KEYS = {"expand_k": 0.5, "expand_v": 1}
register_preset(
    "linear_attention",
    "linear-attention",
    "linear attention (Katharopoulos 2020): elu+1 features, normalised, 4 heads, SwiGLU",
    layer_pattern=("linear_attention",),
    mixer_kwargs={"linear_attention": {"feature_map": "elu1", "normalize": True}},
)
register_preset(
    "retnet",
    "linear-attention",
    "RetNet retention: fixed per-head decays 1 - 2^(-5-h), RoPE, keys d/2, values d, SwiGLU",
    layer_pattern=("retnet",),
    mixer_kwargs={"retnet": dict(HALF_KEYS)},
)
register_preset(
    "gla",
    "linear-attention",
    "Gated Linear Attention: data-dependent per-key decay (rank-16 gate, tau 16), SwiGLU",
    layer_pattern=("gla",),
    mixer_kwargs={"gla": dict(HALF_KEYS)},
)
register_preset(
    "deltanet",
    "linear-attention",
    "DeltaNet: delta rule, L2-normed q/k, beta = sigmoid, short convs, SwiGLU",
    layer_pattern=("deltanet",),
)
register_preset(
    "gated_deltanet",
    "linear-attention",
    "Gated DeltaNet: delta rule with Mamba-2-style decay, keys d/2, values d, SwiGLU",
    layer_pattern=("gated_deltanet",),
    mixer_kwargs={"gated_deltanet": dict(HALF_KEYS)},
)

# Based (Arora et al. 2024) = Taylor linear attention + short convolutions + sliding-window
# attention: linear attention with the 2nd-order Taylor feature map for global, approximate
# recall, whose q/k/v pass width-4 causal short convs (the token shift recall needs: without
# them the first layer has no positional signal and MQAR stays near chance), alternating with
# exact sliding-window attention over the last 64 tokens. The paper's short convs are gated
# convolution layers of their own; here they sit on the linear layer's projections, as DeltaNet's.
register_preset(
    "based",
    "linear-attention",
    "Based: taylor2 linear attention with width-4 short convs on q/k/v (feature dim solved to "
    "match mha, 15 at d_model 64) alternating with 64-token window attention, SwiGLU",
    layer_pattern=("linear_attention", "attention"),
    mixer_kwargs={
        "linear_attention": {"feature_map": "taylor2", "feature_dim": 16, "d_conv": 4},
        "attention": {"n_heads": 8, "n_kv_heads": 8, "window": SWA_WINDOW},
    },
    match=("linear_attention.feature_dim",),
)

# -- Mamba-3 presets (issue 12; official parameterisation since issue 24) --------------------
# Sized like `mamba2` (no MLP, as in the paper); `expand` is solved at every width so the preset
# has mha's parameter count (param_match.py). The mixer follows mamba-ssm's Mamba-3 module
# (docs/recurrent.md, "Mamba-3 against the official reference"); the knobs that changed from
# this code's earlier, unofficial form are written out here, not left to the mixer's
# defaults, so that they are part of the resolved config and hence of every run's identity:
# a record of the earlier form can never pass for this one.
MAMBA3_FORM = {
    "angle_rate": "tanh_dt",  # turn π tanh(θ) Δ per step (earlier: θ)
    "rope_fraction": 0.5,  # half the state channels rotate (earlier: all)
    "data_dependent_A": True,  # A per token from the input (earlier: one learned A per head)
    "outproj_norm": False,  # y ⊙ SiLU(z) (earlier: RMSNorm(y ⊙ SiLU(z)))
}
register_preset(
    "mamba3",
    "ssm",
    "Mamba-3 (trapezoidal, rotary state, SISO), no MLP, d_state 64, expand solved to match mha",
    layer_pattern=("mamba3",),
    mixer_kwargs={"mamba3": {"expand": 3.0, "d_state": 64, **MAMBA3_FORM}},
    ffn="none",
    match=("mamba3.expand",),
)
register_preset(
    "hybrid3",
    "hybrid",
    "two Mamba-3 layers per attention layer, no MLP; d_state 32, expand solved to match mha",
    n_layers=3,
    layer_pattern=("mamba3", "mamba3", "attention"),
    mixer_kwargs={
        "mamba3": {"expand": 3.0, "d_state": 32, **MAMBA3_FORM},
        "attention": {"n_heads": 8, "n_kv_heads": 8},
    },
    ffn="none",
    match=("mamba3.expand",),
)
