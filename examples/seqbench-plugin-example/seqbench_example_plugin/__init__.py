"""A causal depthwise-convolution token mixer, registered from outside seqbench."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.api import MIXERS, register_preset


@MIXERS.register("causal_conv", family="convolution")
class CausalConv(nn.Module):
    """y = out(conv(x) * sigmoid(gate(x))): a short causal depthwise filter with a gate.

    Its decode state is the last `kernel_size - 1` inputs: fixed size, like an SSM's.
    """

    def __init__(self, d_model: int, *, layer_idx: int = 0, kernel_size: int = 4) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model)
        self.gate = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor) -> Tensor:
        padded = F.pad(x.transpose(1, 2), (self.kernel_size - 1, 0))  # (B, D, L + K - 1)
        conv = self.conv(padded).transpose(1, 2)  # (B, L, D)
        return self.out(conv * torch.sigmoid(self.gate(x)))

    def init_state(self, batch_size: int, *, device, dtype) -> dict[str, Tensor]:
        d_model = self.gate.in_features
        window = torch.zeros(batch_size, d_model, self.kernel_size - 1, device=device, dtype=dtype)
        return {"window": window}

    def step(self, x_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        window = torch.cat([state["window"], x_t[:, :, None]], dim=2)  # (B, D, K)
        conv = (window * self.conv.weight[:, 0, :]).sum(-1) + self.conv.bias  # (B, D)
        y_t = self.out(conv * torch.sigmoid(self.gate(x_t)))
        return y_t, {"window": window[:, :, 1:]}


register_preset(
    "conv",
    "convolution",
    "gated causal depthwise convolution (example plugin), SwiGLU",
    layer_pattern=("causal_conv",),
)
