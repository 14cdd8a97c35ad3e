"""Mamba-1 (S6; Gu & Dao 2023): a selective state-space mixer with input-dependent Δ, B, C.

    [u, z] = W_in x;  u = SiLU(conv(u));  [δ, B, C] = W_x u;  Δ = softplus(W_Δ δ + b_Δ)
    h_t = exp(Δ_t A) ⊙ h_{t-1} + Δ_t u_t B_t;  y_t = C_t h_t + D ⊙ u_t;  out = W_out(y ⊙ SiLU(z))

A = -exp(A_log) is diagonal, one value per (channel, state), initialised S4D-real (A_n = -n):
the log keeps it negative (stable decay) under any update. Decoding keeps the scan state h
(B, d_inner, d_state) and the conv window (B, d_inner, d_conv - 1): a fixed size.

Kernel paths (recorded in `kernel_path` after every forward):
- "mamba-ssm-cuda": CUDA tensors with mamba-ssm importable (its fused selective scan, and
  causal-conv1d's kernel when installed);
- "c-native": the fused C kernel (`scans/native_kernels.c`, built at first use) for float32 on
  the CPU with impl="auto" when a C compiler is there;
- "torch-scan": our chunked PyTorch scan (`seqbench.architectures.scans.selective`), everywhere
  else (impl="torch" forces it: the fallback and the oracle of the C kernel);
- "torch-reference": the sequential reference, when built with impl="reference".

`allow_neg_eigval` (default off): the transition is 2 exp(Δ_t A) − 1 in (−1, 1] per channel
and state instead of exp(Δ_t A) (Grazzi et al. 2025, the knob `mamba2` and `mamba3` have). The
C and CUDA kernels compute exp(Δ A) only, so with it impl="auto" runs "torch-scan".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans import cuda, gate_native, native
from seqbench.architectures.scans.conv import conv_silu
from seqbench.architectures.scans.selective import (
    DEFAULT_CHUNK,
    selective_scan,
    selective_scan_native,
    selective_scan_ref,
    selective_step,
)
from seqbench.architectures.ssm_parts import (
    CausalConv1d,
    check_dt_range,
    choice,
    dt_bias_init,
    flag,
    inner_width,
    no_weight_decay,
    positive_int,
    scan_dtype,
)

IMPLS = ("auto", "torch", "reference")


@MIXERS.register("mamba", family="ssm")
class Mamba(nn.Module):
    """Mamba-1 block mixer. impl: "auto" (mamba-ssm on CUDA when installed, the C kernel on the
    CPU when it builds, else the chunked PyTorch scan), "torch" (always the chunked PyTorch
    scan) or "reference" (sequential loop)."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        d_state: int = 16,
        expand: float = 2,
        d_conv: int = 4,
        dt_rank: int | str = "auto",
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
        self.d_inner = inner_width(d_model, expand)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        positive_int("dt_rank", self.dt_rank)
        check_dt_range(dt_min, dt_max, dt_init_floor)
        self.impl = choice("mamba impl", impl, IMPLS)
        self.chunk = positive_int("chunk", chunk)
        self.allow_neg_eigval = flag("allow_neg_eigval", allow_neg_eigval)
        self.kernel_path = cuda.PATH_REFERENCE if impl == "reference" else cuda.PATH_TORCH

        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv = CausalConv1d(self.d_inner, d_conv, bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # Δ's projection starts at the scale that keeps its variance (mamba-ssm's dt_init
        # "random"); its bias puts softplus(bias) log-uniform in [dt_min, dt_max].
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt_bias_init(self.d_inner, dt_min, dt_max, dt_init_floor))
        no_weight_decay(self.dt_proj.bias)
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        # (d_inner, d_state): S4D-real, A = -n
        self.A_log = no_weight_decay(nn.Parameter(torch.log(a)))
        self.D = no_weight_decay(nn.Parameter(torch.ones(self.d_inner)))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    # -- shared pieces ----------------------------------------------------------------------------
    def _ssm_inputs(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Δ (.., d_inner) after softplus, B and C (.., d_state) from the conv output u."""
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.softplus(self.dt_proj(dt)), B, C

    def _A(self, dtype: torch.dtype = torch.float32) -> Tensor:
        return -torch.exp(self.A_log.to(dtype))  # (d_inner, d_state)

    def _fused(self) -> bool:
        """Whether a fused kernel (C or CUDA) may run: impl="auto" and the transition they
        know, exp(Δ A); signed transitions always take the PyTorch scan."""
        return self.impl == "auto" and not self.allow_neg_eigval

    # -- training / prefill -----------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        return self._run(x)[0]

    def prefill(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Forward over a prompt (B, L, D) plus the decode state after it, without stepping."""
        return self._run(x)

    def _run(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        u_raw, z = self.in_proj(x).chunk(2, dim=-1)  # (B, L, d_inner) each
        if self._fused() and cuda.selective_scan_kernel(x) is not None:
            y, h = self._scan_cuda(u_raw, z)
        else:
            y, h = self._scan_torch(u_raw, z)
        state = {"conv": self.conv.tail(u_raw), "ssm": h.to(x.dtype)}
        return self.out_proj(y.to(x.dtype)), state

    def _scan_torch(self, u_raw: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        u = conv_silu(self.conv, u_raw, fused=self.impl == "auto")  # (B, L, d_inner)
        delta, B, C = self._ssm_inputs(u)
        dtype = scan_dtype(u)
        args = (u.to(dtype), delta.to(dtype), self._A(dtype), B.to(dtype), C.to(dtype))
        signed = self.allow_neg_eigval
        in_c = self._fused() and dtype == torch.float32 and native.usable(u)
        if self.impl == "reference":
            y, h = selective_scan_ref(*args, signed=signed)
        elif in_c:
            y, h = selective_scan_native(*args)
            self.kernel_path = native.PATH_NATIVE
        else:
            y, h = selective_scan(*args, chunk=self.chunk, signed=signed)
            self.kernel_path = cuda.PATH_TORCH
        # the D skip and the SiLU(z) gate: fused in C where the scan ran in C
        gate = gate_native.skip_gate if in_c else gate_native.skip_gate_torch
        return gate(y, u.to(dtype), z.to(dtype), self.D), h  # (B, L, d_inner)

    def _scan_cuda(self, u_raw: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """mamba-ssm's fused kernel: softplus(Δ + bias), the scan, D skip and SiLU(z) gate."""
        scan_fn = cuda.selective_scan_kernel(u_raw)
        conv_fn = cuda.causal_conv1d_kernel(u_raw)
        if conv_fn is not None:
            weight = self.conv.conv.weight[:, 0, :]  # (d_inner, d_conv)
            x_t = u_raw.transpose(1, 2).contiguous()  # (B, d_inner, L)
            u = conv_fn(x_t, weight, self.conv.conv.bias, activation="silu")
        else:
            u = F.silu(self.conv(u_raw)).transpose(1, 2)  # (B, d_inner, L)
        dt, B, C = self.x_proj(u.transpose(1, 2)).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1
        )
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2).contiguous()  # (B, d_inner, L)
        y, h = scan_fn(
            u.contiguous(),
            delta,
            self._A(),
            B.transpose(1, 2).contiguous(),  # (B, d_state, L)
            C.transpose(1, 2).contiguous(),
            self.D.float(),
            z=z.transpose(1, 2).contiguous(),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            return_last_state=True,
        )
        self.kernel_path = cuda.PATH_MAMBA_SSM
        return y.transpose(1, 2), h  # (B, L, d_inner), (B, d_inner, d_state)

    # -- decoding ---------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        return {
            "conv": self.conv.init_state(batch_size, self.d_inner, device, dtype),
            "ssm": torch.zeros(batch_size, self.d_inner, self.d_state, device=device, dtype=dtype),
        }

    def step(self, x_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        u_raw, z = self.in_proj(x_t).chunk(2, dim=-1)  # (B, d_inner) each
        u, conv_state = self.conv.step(u_raw, state["conv"])
        u = F.silu(u)
        delta, B, C = self._ssm_inputs(u)
        A = self._A(u.dtype)
        y, h = selective_step(state["ssm"], u, delta, A, B, C, signed=self.allow_neg_eigval)
        y = (y + u * self.D) * F.silu(z)  # (B, d_inner)
        return self.out_proj(y), {"conv": conv_state, "ssm": h}
