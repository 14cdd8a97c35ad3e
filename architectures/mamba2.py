"""Mamba-2 (SSD; Dao & Gu 2024): a selective SSM with a scalar decay per head.

    [z, x, B, C, δ] = W_in u;  [x, B, C] = SiLU(conv([x, B, C]));  Δ = softplus(δ + b_Δ)
    per head h:  S_t = exp(Δ_t A_h) S_{t-1} + Δ_t x_t B_tᵀ,  y_t = S_t C_t + D_h x_t
    out = W_out(RMSNorm(y ⊙ SiLU(z)))

Compared with Mamba-1, B and C are shared by the heads of a group (multi-value heads, like
GQA), A is one scalar per head (so chunks become matmuls, see
`seqbench.architectures.scans.ssd`), and
all input-dependent projections come from one in-projection. Decoding keeps the conv window
over [x, B, C] and the per-head states (B, H, headdim, d_state): a fixed size.

`allow_neg_eigval` (default off): α_t = 2 exp(Δ_t A_h) − 1 in (−1, 1] instead of exp(Δ_t A_h)
in (0, 1] (Grazzi et al. 2025, "negative eigenvalues"), the same knob as `mamba3`'s. No
parameter changes; only the transition does.

Kernel paths (`kernel_path`, updated by every forward): "mamba-ssm-cuda" (mamba-ssm's Triton
`mamba_chunk_scan_combined` on CUDA when importable), "c-native" (the C kernel in
`scans/native_kernels.c`, float32 on the CPU with impl="auto" when a C compiler is there),
"torch-scan" (our chunked SSD; impl="torch" forces it),
"torch-reference" (impl="reference", the sequential loop). With `allow_neg_eigval` the CUDA
kernel is never used (it computes exp(ΔA)); the C kernel takes the signed transition as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.norm import RMSNorm
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans import cuda, native
from seqbench.architectures.scans.conv import conv_silu
from seqbench.architectures.scans.ssd import (
    DEFAULT_CHUNK,
    ssd_chunked,
    ssd_native,
    ssd_ref,
    ssd_step,
)
from seqbench.architectures.ssm_parts import (
    CausalConv1d,
    check_dt_range,
    choice,
    dt_bias_init,
    flag,
    head_layout,
    no_weight_decay,
    positive_int,
    scan_dtype,
)
from seqbench.errors import UserError

IMPLS = ("auto", "torch", "reference")
CUDA_CHUNK = 256  # mamba-ssm's default chunk for its Triton kernels


@MIXERS.register("mamba2", family="ssm")
class Mamba2(nn.Module):
    """Mamba-2 mixer; impl "auto" | "torch" | "reference" as for `mamba`."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        d_state: int = 64,
        expand: float = 2,
        headdim: int = 32,
        ngroups: int = 1,
        d_conv: int = 4,
        A_init_range: Sequence[float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        conv_bias: bool = True,
        bias: bool = False,
        impl: str = "auto",
        chunk: int = DEFAULT_CHUNK,
        allow_neg_eigval: bool = False,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.d_state = positive_int("d_state", d_state)
        self.d_inner, self.headdim, self.ngroups, self.nheads = head_layout(
            d_model, expand, headdim, ngroups
        )
        lo, hi = _range("A_init_range", A_init_range)
        check_dt_range(dt_min, dt_max, dt_init_floor)
        self.impl = choice("mamba2 impl", impl, IMPLS)
        self.chunk = positive_int("chunk", chunk)
        self.allow_neg_eigval = flag("allow_neg_eigval", allow_neg_eigval)
        self.kernel_path = cuda.PATH_REFERENCE if impl == "reference" else cuda.PATH_TORCH

        self.d_bc = ngroups * self.d_state
        self.conv_dim = self.d_inner + 2 * self.d_bc
        self.in_proj = nn.Linear(d_model, self.d_inner + self.conv_dim + self.nheads, bias=bias)
        self.conv = CausalConv1d(self.conv_dim, d_conv, bias=conv_bias)
        self.dt_bias = no_weight_decay(
            nn.Parameter(dt_bias_init(self.nheads, dt_min, dt_max, dt_init_floor))
        )
        # A_h uniform in [lo, hi]: heads start with decay rates spread over one decade.
        self.A_log = no_weight_decay(
            nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(lo, hi)))
        )
        self.D = no_weight_decay(nn.Parameter(torch.ones(self.nheads)))
        self.norm = RMSNorm(self.d_inner, eps=1e-5)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    # -- shared pieces ----------------------------------------------------------------------------
    def _split_in(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z (.., d_inner), xBC before the conv (.., conv_dim), raw δ (.., nheads)."""
        return self.in_proj(u).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)

    def _split_xbc(self, xbc: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x (.., H, P), B and C (.., G, N) from the conv output."""
        x, B, C = xbc.split([self.d_inner, self.d_bc, self.d_bc], dim=-1)
        lead = xbc.shape[:-1]
        return (
            x.reshape(*lead, self.nheads, self.headdim),
            B.reshape(*lead, self.ngroups, self.d_state),
            C.reshape(*lead, self.ngroups, self.d_state),
        )

    def _A(self, dtype: torch.dtype = torch.float32) -> Tensor:
        return -torch.exp(self.A_log.to(dtype))  # (H,)

    def _finish(self, y: Tensor, x: Tensor, z: Tensor) -> Tensor:
        """D skip, gated RMSNorm (norm after the gate, as mamba-ssm's default) and out-proj."""
        y = y + self.D[:, None] * x  # (.., H, P)
        fused = self.impl == "auto"
        return self.out_proj(self.norm.gated(y.flatten(-2), z, fused))  # (.., d_inner)

    # -- training / prefill -----------------------------------------------------------------------
    def forward(self, u: Tensor) -> Tensor:
        return self._run(u)[0]

    def prefill(self, u: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Forward over a prompt (B, L, D) plus the decode state after it, without stepping."""
        return self._run(u)

    def _run(self, u: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        z, xbc_raw, dt_raw = self._split_in(u)
        x, B, C = self._split_xbc(conv_silu(self.conv, xbc_raw, fused=self.impl == "auto"))
        fused = self.impl == "auto"
        # mamba-ssm's kernel only knows exp(ΔA); the C kernel takes signed transitions too.
        kernel = cuda.ssd_kernel(u) if fused and not self.allow_neg_eigval else None
        if kernel is not None:
            y, S = kernel(
                x, dt_raw, self._A(), B, C, CUDA_CHUNK,
                dt_bias=self.dt_bias.float(), dt_softplus=True, return_final_states=True,
            )  # fmt: skip
            self.kernel_path = cuda.PATH_MAMBA_SSM
        else:
            dtype = scan_dtype(u)
            dt = F.softplus(dt_raw + self.dt_bias).to(dtype)  # (B, L, H)
            args = (x.to(dtype), dt, self._A(dtype), B.to(dtype), C.to(dtype))
            if self.impl == "reference":
                y, S = ssd_ref(*args, signed=self.allow_neg_eigval)
            elif fused and dtype == torch.float32 and native.usable(u):
                y, S = ssd_native(*args, signed=self.allow_neg_eigval)
                self.kernel_path = native.PATH_NATIVE
            else:
                y, S = ssd_chunked(*args, chunk=self.chunk, signed=self.allow_neg_eigval)
                self.kernel_path = cuda.PATH_TORCH
        out = self._finish(y.to(u.dtype), x, z)
        return out, {"conv": self.conv.tail(xbc_raw), "ssm": S.to(u.dtype)}

    # -- decoding ---------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        shape = (batch_size, self.nheads, self.headdim, self.d_state)
        return {
            "conv": self.conv.init_state(batch_size, self.conv_dim, device, dtype),
            "ssm": torch.zeros(shape, device=device, dtype=dtype),
        }

    def step(self, u_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        z, xbc_raw, dt_raw = self._split_in(u_t)  # (B, ..) each
        xbc, conv_state = self.conv.step(xbc_raw, state["conv"])
        x, B, C = self._split_xbc(F.silu(xbc))
        dt = F.softplus(dt_raw + self.dt_bias)  # (B, H)
        y, S = ssd_step(state["ssm"], x, dt, self._A(x.dtype), B, C, signed=self.allow_neg_eigval)
        return self._finish(y, x, z), {"conv": conv_state, "ssm": S}


def _range(name: str, value: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be two numbers (low, high), got {value!r}") from None
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise UserError(f"{name} needs 0 < low <= high, got {value!r}")
    return lo, hi
