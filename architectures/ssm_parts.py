"""Parts shared by the recurrent mixers: the short causal convolution, Δ initialisation and
hyper-parameter checks.

The convolution is depthwise and causal (each channel sees its own last `width` inputs). For
decoding, its state is the last `width - 1` inputs, so it costs a fixed number of bytes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.errors import UserError


def scan_dtype(t: Tensor) -> torch.dtype:
    """The precision a scan runs in: float64 stays float64, anything else (bf16, fp16) float32.

    Why: a recurrence accumulates over thousands of steps, so low precision drifts; and a
    float64 copy of a module must stay float64 to serve as an exact reference.
    """
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return value


def flag(name: str, value: object) -> bool:
    """A true/false option; 0/1 or strings are refused so a config typo is not read as a flag."""
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {value!r}")
    return value


def choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UserError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def inner_width(d_model: int, expand: float) -> int:
    """int(expand * d_model), as mamba-ssm computes it; expand may be fractional."""
    if isinstance(expand, bool) or not isinstance(expand, (int, float)) or expand <= 0:
        raise UserError(f"expand must be a positive number, got {expand!r}")
    d_inner = int(expand * d_model)
    if d_inner < 1:
        raise UserError(f"expand={expand} gives no inner channels at d_model={d_model}")
    return d_inner


def no_weight_decay(param: nn.Parameter) -> nn.Parameter:
    """Mark `param` to be trained without weight decay (mamba-ssm's `_no_weight_decay`).

    Why: SSM / LRU dynamics (A_log, D, dt_bias, the LRU's ν, θ, γ logs) set the recurrence
    itself; decaying them towards zero would move A towards -1 and |λ| towards e^-1, not just
    shrink a weight. The mark is made where the parameter is created, so the training loop
    needs no list of names.
    """
    param._no_weight_decay = True  # type: ignore[attr-defined]
    return param


def check_dt_range(dt_min: float, dt_max: float, dt_init_floor: float) -> None:
    if not 0 < dt_min <= dt_max:
        raise UserError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
    if dt_init_floor < 0:
        raise UserError(f"dt_init_floor must be >= 0, got {dt_init_floor}")


def dt_bias_init(n: int, dt_min: float, dt_max: float, dt_init_floor: float) -> Tensor:
    """Bias b with softplus(b) log-uniform in [dt_min, dt_max] (Gu & Dao 2023, §3.6).

    Why log-uniform: Δ sets each channel's memory timescale (1/Δ), so spreading it over decades
    gives the layer both fast and slow channels from the start. The inverse of softplus is
    x + log(-expm1(-x)), which stays finite for small x.
    """
    log_dt = torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
    dt = torch.exp(log_dt).clamp(min=dt_init_floor)
    return dt + torch.log(-torch.expm1(-dt))


class CausalConv1d(nn.Module):
    """Depthwise causal convolution over time: (B, L, C) -> (B, L, C), and its decode step."""

    def __init__(self, channels: int, width: int, bias: bool = True) -> None:
        super().__init__()
        self.width = positive_int("d_conv", width)
        self.conv = nn.Conv1d(channels, channels, width, groups=channels, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x.transpose(1, 2), (self.width - 1, 0))  # (B, C, L + W - 1), zeros before t=0
        return F.conv1d(x, self.conv.weight, self.conv.bias, groups=x.shape[1]).transpose(1, 2)

    def init_state(
        self, batch: int, channels: int, device: torch.device | str, dtype: torch.dtype
    ) -> Tensor:
        return torch.zeros(batch, channels, self.width - 1, device=device, dtype=dtype)

    def tail(self, x: Tensor) -> Tensor:
        """Decode state after a prompt x (B, L, C): its last W-1 inputs, zero-padded first."""
        keep = self.width - 1
        tail = x[:, max(0, x.shape[1] - keep) :].transpose(1, 2)  # (B, C, <= W-1)
        return F.pad(tail, (keep - tail.shape[2], 0)).contiguous()

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """x_t (B, C); state (B, C, W-1) -> output (B, C) and the new state."""
        window = torch.cat([state, x_t[:, :, None]], dim=2)  # (B, C, W)
        y_t = (window * self.conv.weight[:, 0, :]).sum(-1)  # (B, C)
        if self.conv.bias is not None:
            y_t = y_t + self.conv.bias
        return y_t, window[:, :, 1:]


def head_layout(
    d_model: int, expand: float, headdim: int, ngroups: int
) -> tuple[int, int, int, int]:
    """(d_inner, headdim, ngroups, nheads) of a Mamba-2-style block (Mamba-2, Mamba-3): heads of
    `headdim` channels tile d_inner, and B/C groups tile the heads; one-line errors otherwise."""
    d_inner = inner_width(d_model, expand)
    positive_int("headdim", headdim)
    positive_int("ngroups", ngroups)
    if d_inner % headdim:
        raise UserError(f"headdim={headdim} does not divide d_inner={d_inner}")
    nheads = d_inner // headdim
    if nheads % ngroups:
        raise UserError(f"ngroups={ngroups} does not divide the {nheads} heads")
    return d_inner, headdim, ngroups, nheads
