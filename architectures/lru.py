"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks").

    λ = exp(-exp(ν_log) + i exp(θ_log))           (complex, diagonal, |λ| < 1 always)
    x_t = λ ⊙ x_{t-1} + γ ⊙ (B u_t)              γ = exp(γ_log), initialised √(1 - |λ|²)
    y_t = Re(C x_t) + D ⊙ u_t

Why these choices (all from the paper): a linear, diagonal recurrence trains in parallel and
decodes in O(1) per token; the exponential parameterisation keeps |λ| < 1 under any update;
initialising λ uniformly on a ring r_min <= |λ| <= r_max, phase in [0, max_phase], places the
memory timescales near the unit circle, which is what long-range tasks need; γ keeps the state's
variance independent of |λ| (without it, x blows up as |λ| -> 1).

There are no input-dependent gates, so this is the time-invariant baseline to the selective
Mamba mixers. Decoding keeps x (B, d_state) complex: a fixed size.
kernel_path: "torch-scan" (chunked matmul scan) or "torch-reference" (impl="reference").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans import cuda
from seqbench.architectures.scans.linear_scan import (
    DEFAULT_CHUNK,
    linear_scan_chunked,
    linear_scan_ref,
    linear_step,
)
from seqbench.architectures.ssm_parts import choice, no_weight_decay, positive_int, scan_dtype
from seqbench.errors import UserError

IMPLS = ("auto", "torch", "reference")
COMPLEX = {torch.float64: torch.complex128}  # every other real dtype decodes in complex64


@MIXERS.register("lru", family="linear-recurrence")
class LRU(nn.Module):
    """LRU mixer with d_state complex states; impl "auto"/"torch" (chunked) or "reference"."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        d_state: int = 128,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        impl: str = "auto",
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.d_state = positive_int("d_state", d_state)
        if not 0 <= r_min < r_max <= 1:
            raise UserError(f"LRU needs 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
        if not max_phase > 0:
            raise UserError(f"LRU max_phase must be positive, got {max_phase}")
        self.impl = choice("lru impl", impl, IMPLS)
        self.chunk = positive_int("chunk", chunk)
        self.kernel_path = cuda.PATH_REFERENCE if impl == "reference" else cuda.PATH_TORCH

        # Ring initialisation: |λ|² uniform in [r_min², r_max²], phase uniform in [0, max_phase].
        u1, u2 = torch.rand(d_state), torch.rand(d_state)
        radius_sq = u1 * (r_max**2 - r_min**2) + r_min**2
        self.nu_log = no_weight_decay(nn.Parameter(torch.log(-0.5 * torch.log(radius_sq))))
        self.theta_log = no_weight_decay(nn.Parameter(torch.log(max_phase * u2.clamp(min=1e-6))))
        # γ = √(1 - |λ|²), in log
        self.gamma_log = no_weight_decay(nn.Parameter(0.5 * torch.log1p(-radius_sq)))
        self.B_re = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(2 * d_model))
        self.B_im = nn.Parameter(torch.randn(d_state, d_model) / math.sqrt(2 * d_model))
        self.C_re = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.C_im = nn.Parameter(torch.randn(d_model, d_state) / math.sqrt(d_state))
        self.D = no_weight_decay(nn.Parameter(torch.randn(d_model)))

    def log_lambda(self) -> Tensor:
        """log λ = -exp(ν_log) + i exp(θ_log), (d_state,) complex."""
        return torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log))

    def _drive(self, u: Tensor) -> Tensor:
        """γ ⊙ (B u): (.., d_model) real -> (.., d_state) complex.

        One real matmul against B with real and imaginary rows interleaved, whose output is
        then viewed as complex without a copy.
        """
        w = torch.stack([self.B_re, self.B_im], dim=1).flatten(0, 1)  # (2N, H): re, im, ...
        v = torch.view_as_complex((u @ w.t()).unflatten(-1, (self.d_state, 2)))  # (.., N)
        return v * torch.exp(self.gamma_log)

    def _read(self, x: Tensor, u: Tensor) -> Tensor:
        """Re(C x) + D ⊙ u = [Re x, Im x] · [Re C, -Im C] + D ⊙ u, one real matmul."""
        w = torch.stack([self.C_re, -self.C_im], dim=2).flatten(1, 2)  # (H, 2N)
        return torch.view_as_real(x).flatten(-2) @ w.t() + self.D * u

    def forward(self, u: Tensor) -> Tensor:
        return self.prefill(u)[0]

    def prefill(self, u: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Forward over a prompt (B, L, D) plus the decode state after it, without stepping."""
        u_s = u.to(scan_dtype(u))
        v = self._drive(u_s)  # (B, L, N) complex
        if self.impl == "reference":
            xs, x_last = linear_scan_ref(self.log_lambda(), v)
        else:
            xs, x_last = linear_scan_chunked(self.log_lambda(), v, chunk=self.chunk)
        return self._read(xs, u_s).to(u.dtype), {"x": x_last.to(_complex(u.dtype))}

    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        shape = (batch_size, self.d_state)
        return {"x": torch.zeros(shape, device=device, dtype=_complex(dtype))}

    def step(self, u_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        lam = torch.exp(self.log_lambda()).to(state["x"].dtype)
        x = linear_step(state["x"], lam, self._drive(u_t).to(state["x"].dtype))  # (B, N)
        return self._read(x, u_t).to(u_t.dtype), {"x": x}


def _complex(dtype: torch.dtype) -> torch.dtype:
    return COMPLEX.get(dtype, torch.complex64)
