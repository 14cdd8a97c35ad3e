"""Sequence mixers, channel mixers, the shared model and named presets.

Importing this package registers every in-tree architecture. Heavy optional code (mamba-ssm's
CUDA kernels) is imported only inside the fast paths that use it.
"""

from seqbench.architectures import (  # noqa: F401
    attention,
    deltanet,
    gated_deltanet,
    gla,
    hyena,
    linear_attention,
    lru,
    mamba,
    mamba2,
    mamba3,
    mlp,
    moe,
    presets,
    retnet,
)
from seqbench.architectures.contract import (
    AuxLossProvider,
    ChannelMixer,
    SequenceMixer,
    State,
    prefill,
    state_bytes,
)
from seqbench.architectures.model import LanguageModel, ModelConfig
from seqbench.architectures.presets import Preset, build_config
from seqbench.architectures.registry import CHANNEL_MIXERS, MIXERS, PRESETS

__all__ = [
    "CHANNEL_MIXERS",
    "MIXERS",
    "PRESETS",
    "AuxLossProvider",
    "ChannelMixer",
    "LanguageModel",
    "ModelConfig",
    "Preset",
    "SequenceMixer",
    "State",
    "build_config",
    "prefill",
    "state_bytes",
]
