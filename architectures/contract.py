"""The contracts every sequence mixer and channel mixer honours (see DESIGN.md).

They are `typing.Protocol`s, not base classes: a plugin only has to have the methods. The
conformance gate (`seqbench.architectures.conformance`) checks the behaviour the types cannot
express: causality, step == forward, no input mutation, gradients reaching every parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

# A decode state is any nesting of dicts, lists and tuples whose leaves are tensors (or plain
# Python numbers, which are not counted). Its tensors' bytes are the inference memory.
State = Any


@runtime_checkable
class SequenceMixer(Protocol):
    """Token mixing. Built as `Mixer(d_model, *, layer_idx, **hparams)`.

    `forward` maps (B, L, D) -> (B, L, D) causally and never mutates its input.
    `init_state` + repeated `step` over a sequence equals `forward` on it.
    """

    def forward(self, x: Tensor) -> Tensor: ...

    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> State: ...

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]: ...


@runtime_checkable
class ChannelMixer(Protocol):
    """Per-token mixing. Built as `Ffn(d_model, *, layer_idx, **hparams)`; (B, L, D) -> same."""

    def forward(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class AuxLossProvider(Protocol):
    """A layer (e.g. MoE) with an auxiliary training loss and statistics for the records.

    `aux_loss()` is the already-weighted loss of the last forward; `stats()` holds plain
    numbers and lists (JSON-ready) describing it: per-expert load, dropped fraction, ...
    """

    def aux_loss(self) -> Tensor: ...

    def stats(self) -> dict[str, Any]: ...


def iter_state_tensors(state: State) -> Iterable[Tensor]:
    """Every tensor inside a (nested) decode state."""
    if isinstance(state, Tensor):
        yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from iter_state_tensors(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from iter_state_tensors(value)


def state_bytes(state: State) -> int:
    """Bytes held by a decode state's tensors: the architecture's inference memory."""
    return sum(t.numel() * t.element_size() for t in iter_state_tensors(state))


def prefill(mixer: SequenceMixer, x: Tensor) -> tuple[Tensor, State]:
    """Run a mixer over a prompt (B, L, D) and return its outputs and the state after it.

    Mixers may offer a fast `prefill` method; otherwise the state is built by stepping.
    """
    fast = getattr(mixer, "prefill", None)
    if callable(fast):
        return fast(x)
    return prefill_by_steps(mixer, x)


def prefill_by_steps(mixer: SequenceMixer, x: Tensor) -> tuple[Tensor, State]:
    """The plain definition of prefill: one `step` per token."""
    state = mixer.init_state(x.shape[0], device=x.device, dtype=x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        y_t, state = mixer.step(x[:, t], state)  # (B, D)
        outputs.append(y_t)
    return torch.stack(outputs, dim=1), state  # (B, L, D)
