"""The public plugin API: everything an out-of-tree architecture, task or launcher needs.

A plugin imports from this module only; the rest of seqbench may move between versions.

    from seqbench.api import MIXERS, register_preset

    @MIXERS.register("my_mixer", family="convolution")
    class MyMixer(torch.nn.Module): ...

    register_preset("mine", "convolution", "my mixer, SwiGLU", layer_pattern=("my_mixer",))

Registration happens when the module is imported: name it under the entry-point group
`seqbench.architectures` (or `seqbench.tasks`, `seqbench.launchers`) in the plugin's
pyproject.toml, or pass `pkg.mod:Class` on the command line. `check_architecture` is the
conformance gate the harness runs before it trains anything out of tree.
"""

from __future__ import annotations

from seqbench.architectures.conformance import ConformanceReport, GateConfig, check_architecture
from seqbench.architectures.contract import (
    AuxLossProvider,
    ChannelMixer,
    SequenceMixer,
    State,
    prefill,
    state_bytes,
)
from seqbench.architectures.presets import Preset, register_preset
from seqbench.architectures.registry import CHANNEL_MIXERS, MIXERS, PRESETS
from seqbench.errors import UserError
from seqbench.harness.launchers import LAUNCHERS
from seqbench.harness.launchers.base import Job, Launcher
from seqbench.tasks import IGNORE_INDEX, TASKS, Batch, Task

__all__ = [
    "CHANNEL_MIXERS",
    "IGNORE_INDEX",
    "LAUNCHERS",
    "MIXERS",
    "PRESETS",
    "TASKS",
    "AuxLossProvider",
    "Batch",
    "ChannelMixer",
    "ConformanceReport",
    "GateConfig",
    "Job",
    "Launcher",
    "Preset",
    "SequenceMixer",
    "State",
    "Task",
    "UserError",
    "check_architecture",
    "prefill",
    "register_preset",
    "state_bytes",
]
