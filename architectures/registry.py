"""The three architecture registries: sequence mixers, channel mixers and presets.

In-tree code registers with decorators; other packages through the `seqbench.architectures`
entry-point group (their module registers on import); users through "pkg.mod:Class" names.
"""

from __future__ import annotations

from seqbench.registry import Registry

ENTRY_POINT_GROUP = "seqbench.architectures"

MIXERS: Registry = Registry("sequence mixer", ENTRY_POINT_GROUP)
CHANNEL_MIXERS: Registry = Registry("channel mixer", ENTRY_POINT_GROUP)
PRESETS: Registry = Registry("architecture", ENTRY_POINT_GROUP)
