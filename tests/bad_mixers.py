"""Deliberately broken mixers: each must be refused by the conformance gate, with its reason.

They are importable as `tests.bad_mixers:Name`, the way a user's plugin is given on the CLI.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _LinearMixer(nn.Module):
    """A correct causal mixer (a per-token linear map) the broken ones start from."""

    def __init__(self, d_model: int, *, layer_idx: int = 0) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)

    def init_state(self, batch_size: int, *, device, dtype) -> dict[str, Tensor]:
        return {}

    def step(self, x_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.proj(x_t), state


class PeekingMixer(_LinearMixer):
    """Adds the NEXT token to each position: a leak from the future."""

    def forward(self, x: Tensor) -> Tensor:
        future = torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)  # (B, L, D)
        return self.proj(x + future)


class WrongShapeMixer(_LinearMixer):
    """Drops the last position."""

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x[:, :-1])


class MutatingMixer(_LinearMixer):
    """Normalises its input in place."""

    def forward(self, x: Tensor) -> Tensor:
        x.mul_(0.5)
        return self.proj(x)


class DeadParameterMixer(_LinearMixer):
    """Owns a parameter that never takes part in the output."""

    def __init__(self, d_model: int, *, layer_idx: int = 0) -> None:
        super().__init__(d_model, layer_idx=layer_idx)
        self.unused = nn.Parameter(torch.zeros(d_model))


class ForgetfulStepMixer(_LinearMixer):
    """Forward is a running mean, but step forgets the past: decode != forward."""

    def forward(self, x: Tensor) -> Tensor:
        counts = torch.arange(1, x.shape[1] + 1, device=x.device, dtype=x.dtype)[None, :, None]
        return self.proj(x.cumsum(dim=1) / counts)


class GoodShiftMixer(_LinearMixer):
    """A correct mixer with real state: mixes each token with the previous one."""

    def forward(self, x: Tensor) -> Tensor:
        prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)  # (B, L, D)
        return self.proj(x + 0.5 * prev)

    def init_state(self, batch_size: int, *, device, dtype) -> dict[str, Tensor]:
        return {"prev": torch.zeros(batch_size, self.proj.in_features, device=device, dtype=dtype)}

    def step(self, x_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.proj(x_t + 0.5 * state["prev"]), {"prev": x_t.clone()}
