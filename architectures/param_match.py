"""Parameter matching: solve one size knob of a preset so it has `mha`'s parameter count at
whatever width and depth it is built.

Why: a comparison of architectures is fair only at an equal parameter budget, and a fixed
recipe matched at one width drifts at another (embeddings grow with d_model, mixer weights
with d_model², and fixed-size parts such as Mamba's d_state not at all: at d_model 64 a recipe
matched at 128 carries 7–33% more parameters). A preset names the knob to solve
(`match=("mamba.expand",)`); building it at a width solves that knob against the reference
preset at the same width, vocabulary and proportional depth, unless the user set the knob.
Counts are taken on the meta device (no weights allocated), and only values the mixer accepts
(heads dividing widths...) are candidates.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache

import torch

from seqbench.architectures.model import LanguageModel, ModelConfig
from seqbench.errors import UserError

REFERENCE = "mha"  # the budget every matched preset is held to
SEARCH_STEPS = 12  # candidates tried on each side of the interpolated value


def active_parameters(config: ModelConfig) -> int:
    return _count(json.dumps(config.to_dict(), sort_keys=True, default=list))


@lru_cache(maxsize=1024)
def _count(config_json: str) -> int:
    config = ModelConfig(**json.loads(config_json))
    with torch.device("meta"):
        return LanguageModel(config).parameter_counts()["active"]


def _with(config: ModelConfig, key: str, value: float) -> ModelConfig:
    mixer, _, param = key.partition(".")
    out = copy.deepcopy(config)
    out.mixer_kwargs.setdefault(mixer, {})[param] = value
    return out


def _buildable_count(config: ModelConfig, key: str, value: float) -> int | None:
    try:
        return active_parameters(_with(config, key, value))
    except (UserError, ValueError, RuntimeError):
        return None


def solve(config: ModelConfig, key: str, target: int) -> float:
    """The value of `key` ("mixer.param") whose model is closest to `target` parameters.

    The count is affine in expand-like and state-size knobs between roundings, so two builds
    give the interpolated value; candidates around it on the knob's grid (integers, or
    d_inner in steps of 8 for a float expand) are then built and the closest kept."""
    mixer, _, param = key.partition(".")
    start = config.mixer_kwargs.get(mixer, {}).get(param)
    if start is None:
        raise UserError(f"preset matches {key!r} but sets no starting value for it")
    integer = isinstance(start, int)
    step = 1 if integer else 8 / config.d_model
    low, high = start, start + 4 * step
    p_low, p_high = _buildable_count(config, key, low), _buildable_count(config, key, high)
    guess = start
    if p_low is not None and p_high is not None and p_high != p_low:
        guess = low + (target - p_low) * (high - low) / (p_high - p_low)
    center = round(guess / step)
    best: tuple[int, float] | None = None
    for k in range(center - SEARCH_STEPS, center + SEARCH_STEPS + 1):
        value = k if integer else round(k * step, 6)
        if value <= 0:
            continue
        count = _buildable_count(config, key, value)
        if count is not None and (best is None or abs(count - target) < best[0]):
            best = (abs(count - target), value)
    if best is None:
        raise UserError(f"no buildable value of {key!r} near {guess:g} at d_model {config.d_model}")
    return best[1]


def reference_config(
    reference: ModelConfig, config: ModelConfig, default_layers: int
) -> ModelConfig:
    """The reference preset at `config`'s width and vocabulary, at the depth that corresponds
    to `config`'s (a 3-layer hybrid is matched to a 2-layer mha; both scale together)."""
    out = copy.deepcopy(reference)
    out.vocab_size, out.d_model = config.vocab_size, config.d_model
    out.n_layers = max(1, round(reference.n_layers * config.n_layers / default_layers))
    return out


def match_parameters(
    config: ModelConfig,
    keys: tuple[str, ...],
    reference: ModelConfig,
    default_layers: int,
    fixed: set[str],
) -> ModelConfig:
    """`config` with each matched knob solved, except those the user set (`fixed`)."""
    free = [k for k in keys if k not in fixed]
    if not free:
        return config
    target = active_parameters(reference_config(reference, config, default_layers))
    for key in free:
        config = _with(config, key, solve(config, key, target))
    return config
