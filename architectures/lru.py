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
kernel_path: "c-native" (the C kernel, complex64 on the CPU with impl="auto" when a C compiler
is there), "torch-scan" (the chunked PyTorch scan; impl="torch" forces it) or "torch-reference"
(impl="reference").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqbench.architectures.precision import no_autocast
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans import cuda, native
from seqbench.architectures.scans.linear_scan import (
    DEFAULT_CHUNK,
    linear_scan_chunked,
    linear_scan_native,
    linear_scan_ref,
    linear_step,
)
from seqbench.architectures.ssm_parts import (
    choice,
    no_weight_decay,
    positive_int,
    scan_dtype,
)
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

    def log_lambda(self, dtype: torch.dtype | None = None) -> Tensor:
        """log λ = -exp(ν_log) + i exp(θ_log), (d_state,) complex, computed in `dtype` (default:
        the parameters' scan precision; complex numbers have no bf16)."""
        dtype = dtype or scan_dtype(self.nu_log)
        return torch.complex(-torch.exp(self.nu_log.to(dtype)), torch.exp(self.theta_log.to(dtype)))

    def _drive(self, u: Tensor) -> Tensor:
        """γ ⊙ (B u): (.., d_model) real, float32 or float64 -> (.., d_state) complex.

        One real matmul against B with real and imaginary rows interleaved, whose output is
        then viewed as complex without a copy. γ is real, so it scales B's rows before the
        matmul ((N, H) numbers) instead of the complex output ((.., N) numbers, three passes
        with the backward): the same products, far fewer of them. The weights are taken in
        u's dtype (a bf16 copy of the model keeps float32 arithmetic here).
        """
        gamma = torch.exp(self.gamma_log.to(u.dtype))[:, None]  # (N, 1)
        B_re, B_im = self.B_re.to(u.dtype), self.B_im.to(u.dtype)
        w = torch.stack([B_re * gamma, B_im * gamma], dim=1).flatten(0, 1)  # (2N, H)
        return torch.view_as_complex((u @ w.t()).unflatten(-1, (self.d_state, 2)))  # (.., N)

    def _read(self, x: Tensor, u: Tensor) -> Tensor:
        """Re(C x) + D ⊙ u = [Re x, Im x] · [Re C, -Im C] + D ⊙ u, one real matmul (u's dtype)."""
        w = torch.stack([self.C_re, -self.C_im], dim=2).flatten(1, 2).to(u.dtype)  # (H, 2N)
        return torch.view_as_real(x).flatten(-2) @ w.t() + self.D.to(u.dtype) * u

    def forward(self, u: Tensor) -> Tensor:
        return self.prefill(u)[0]

    def prefill(self, u: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Forward over a prompt (B, L, D) plus the decode state after it, without stepping.

        The whole recurrence runs in float32 (float64 for a float64 input) with autocast off:
        complex tensors have no bf16, and a bf16 recurrence would drift over long sequences.
        """
        with no_autocast(u.device.type):
            u_s = u.to(scan_dtype(u))  # (B, L, D)
            v = self._drive(u_s)  # (B, L, N) complex
            log_lam = self.log_lambda(u_s.dtype)
            if self.impl == "reference":
                xs, x_last = linear_scan_ref(log_lam, v)
            elif self.impl == "auto" and v.dtype == torch.complex64 and native.usable(v):
                xs, x_last = linear_scan_native(log_lam, v)
                self.kernel_path = native.PATH_NATIVE
            else:
                xs, x_last = linear_scan_chunked(log_lam, v, chunk=self.chunk)
                self.kernel_path = cuda.PATH_TORCH
            return self._read(xs, u_s).to(u.dtype), {"x": x_last.to(_complex(u.dtype))}

    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        shape = (batch_size, self.d_state)
        return {"x": torch.zeros(shape, device=device, dtype=_complex(dtype))}

    def step(self, u_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """One token (B, D) in the state's precision (complex64: float32), autocast off."""
        with no_autocast(u_t.device.type):
            real = state["x"].real.dtype  # float32 or float64
            u_s = u_t.to(real)  # (B, D)
            lam = torch.exp(self.log_lambda(real))  # (N,) complex
            x = linear_step(state["x"], lam, self._drive(u_s))  # (B, N)
            return self._read(x, u_s).to(u_t.dtype), {"x": x}


def _complex(dtype: torch.dtype) -> torch.dtype:
    return COMPLEX.get(dtype, torch.complex64)
