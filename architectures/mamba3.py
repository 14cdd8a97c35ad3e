"""Mamba-3 (Lahoti, Li, Chen, Wang, Bick, Kolter, Dao, Gu; ICLR 2026): Mamba-2's block with three
changes, each a knob so it can be ablated, and no short convolution.

    [z, x, B, C, δ, θ, λ] = W_in u;  Δ = softplus(δ + b_Δ);  α_t = exp(Δ_t A_h)
    B, C ← RMSNorm(B), RMSNorm(C) (use_bc_norm), + per-head biases initialised to 1 (use_bc_bias)
    per head:  S_t = α_t S_{t-1} + λ_t Δ_t x_t B̃_tᵀ + (1 − λ_t) Δ_t α_t x_{t-1} B̃_{t-1}ᵀ
               y_t = S_t C̃_t + D_h x_t
    out = W_out(RMSNorm(y ⊙ SiLU(z)))

- `use_trapezoidal`: λ_t = σ(·) per head blends the current and the previous input term
  (exponential-trapezoidal rule); off, λ ≡ 1 and this is Mamba-2's Euler rule.
- `use_rope`: B̃, C̃ are B, C rotated pairwise by the cumulative angle φ_t = Σ_{s≤t} θ_s, θ
  projected from the input (d_state/2 angles per group). Equivalent to a complex diagonal A: the
  transition can turn, not only shrink, which is what lets a recurrence track parity.
- `mimo_rank` r > 0: x (per head, a learned P -> P·r map) and B, C carry r columns, the state
  update is rank r, and the r outputs per head are projected back (P·r -> P). 0 is SISO.
- `allow_neg_eigval`: α_t = 2 exp(Δ_t A) − 1 in (−1, 1] instead of (0, 1] (Grazzi et al. 2025,
  "negative eigenvalues"); default off.

Kernel paths (`kernel_path`, updated by every forward): "mamba-ssm-cuda" (mamba-ssm's Triton
`mamba3_siso_combined` on CUDA when importable, for SISO with positive transitions),
"torch-scan" (`scans.mamba3_scan.mamba3_chunked`), "torch-reference" (impl="reference": the
sequential loop of the decode step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.mamba2 import _range
from seqbench.architectures.norm import RMSNorm
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans import cuda
from seqbench.architectures.scans.mamba3_scan import (
    State,
    init_state,
    mamba3_chunked,
    mamba3_ref,
    mamba3_step,
)
from seqbench.architectures.scans.ssd import DEFAULT_CHUNK
from seqbench.architectures.ssm_parts import (
    check_dt_range,
    choice,
    dt_bias_init,
    flag,
    head_layout,
    positive_int,
    scan_dtype,
)
from seqbench.errors import UserError

IMPLS = ("auto", "torch", "reference")
CUDA_CHUNK = 64  # mamba-ssm's recommended chunk for its Mamba-3 SISO kernel
TRAP_OFF_LOGIT = 1e4  # λ = σ(1e4) = 1 exactly: the CUDA kernel's Euler rule


@MIXERS.register("mamba3", family="ssm")
class Mamba3(nn.Module):
    """Mamba-3 mixer; impl "auto" | "torch" | "reference" as for `mamba2`."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        d_state: int = 64,
        expand: float = 2,
        headdim: int = 32,
        ngroups: int = 1,
        mimo_rank: int = 0,
        use_trapezoidal: bool = True,
        use_rope: bool = True,
        use_bc_norm: bool = True,
        use_bc_bias: bool = True,
        allow_neg_eigval: bool = False,
        A_init_range: Sequence[float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        bias: bool = False,
        impl: str = "auto",
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.d_state = positive_int("d_state", d_state)
        self.d_inner, self.headdim, self.ngroups, self.nheads = head_layout(
            d_model, expand, headdim, ngroups
        )
        if isinstance(mimo_rank, bool) or not isinstance(mimo_rank, int) or mimo_rank < 0:
            raise UserError(f"mimo_rank must be 0 (SISO) or a positive integer, got {mimo_rank!r}")
        self.mimo_rank = mimo_rank
        self.rank = max(1, mimo_rank)  # columns of x, B and C
        self.use_trapezoidal = flag("use_trapezoidal", use_trapezoidal)
        self.use_rope = flag("use_rope", use_rope)
        self.use_bc_norm = flag("use_bc_norm", use_bc_norm)
        self.use_bc_bias = flag("use_bc_bias", use_bc_bias)
        self.allow_neg_eigval = flag("allow_neg_eigval", allow_neg_eigval)
        if use_rope and d_state % 2:
            raise UserError(f"use_rope rotates pairs of state channels: d_state={d_state} is odd")
        lo, hi = _range("A_init_range", A_init_range)
        check_dt_range(dt_min, dt_max, dt_init_floor)
        self.impl = choice("mamba3 impl", impl, IMPLS)
        self.chunk = positive_int("chunk", chunk)
        self.kernel_path = cuda.PATH_REFERENCE if impl == "reference" else cuda.PATH_TORCH

        self.d_bc = ngroups * self.d_state * self.rank
        self.n_angles = ngroups * (self.d_state // 2) if use_rope else 0
        self.split = [
            self.d_inner,
            self.d_inner,
            self.d_bc,
            self.d_bc,
            self.nheads,
            self.n_angles,
            self.nheads if use_trapezoidal else 0,
        ]  # fmt: skip  z, x, B, C, δ, θ, λ
        self.in_proj = nn.Linear(d_model, sum(self.split), bias=bias)
        self.dt_bias = nn.Parameter(dt_bias_init(self.nheads, dt_min, dt_max, dt_init_floor))
        self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(lo, hi)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        if use_bc_norm:
            self.B_norm = RMSNorm(self.d_state, eps=1e-5)
            self.C_norm = RMSNorm(self.d_state, eps=1e-5)
        if use_bc_bias:
            # Head-specific channel biases, initialised to 1 (the paper's Table 9a).
            self.B_bias = nn.Parameter(torch.ones(self.nheads, self.d_state))
            self.C_bias = nn.Parameter(torch.ones(self.nheads, self.d_state))
            self.B_bias._no_weight_decay = self.C_bias._no_weight_decay = True
        if mimo_rank:
            self.x_mimo_proj = nn.Linear(headdim, headdim * mimo_rank, bias=False)
            self.mimo_out_proj = nn.Linear(headdim * mimo_rank, headdim, bias=False)
        self.norm = RMSNorm(self.d_inner, eps=1e-5)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    # -- shared pieces ----------------------------------------------------------------------------
    def _A(self, dtype: torch.dtype) -> Tensor:
        return -torch.exp(self.A_log.to(dtype))  # (H,)

    def _bc(self, raw: Tensor, norm: str, bias: str) -> Tensor:
        """B or C (.., G·R·N) -> per head (.., H, N, R): RMSNorm over N, head bias."""
        t = raw.unflatten(-1, (self.ngroups, self.rank, self.d_state))  # (.., G, R, N)
        if self.use_bc_norm:
            t = getattr(self, norm)(t)
        t = t.repeat_interleave(self.nheads // self.ngroups, dim=-3)  # (.., H, R, N)
        if self.use_bc_bias:
            t = t + getattr(self, bias)[:, None, :]
        return t.transpose(-1, -2)  # (.., H, N, R)

    def _prepare(self, u: Tensor) -> dict[str, Tensor | None]:
        """Everything before the scan, for (B, L, D) or one step (B, D)."""
        z, x, B, C, dt_raw, theta, lam = self.in_proj(u).split(self.split, dim=-1)
        dtype = scan_dtype(u)
        dt = F.softplus(dt_raw + self.dt_bias).to(dtype)  # (.., H)
        x = x.unflatten(-1, (self.nheads, self.headdim))  # (.., H, P)
        x_r = (
            self.x_mimo_proj(x).unflatten(-1, (self.headdim, self.rank))
            if self.mimo_rank
            else (x[..., None])
        )  # (.., H, P, R)
        lam = torch.sigmoid(lam).to(dtype) if self.use_trapezoidal else None
        return {
            "z": z,
            "x": x_r.to(dtype),
            "a": dt * self._A(dtype),
            "gamma": dt if lam is None else lam * dt,
            "beta": None if lam is None else (1 - lam) * dt,
            "B": self._bc(B, "B_norm", "B_bias").to(dtype),
            "C": self._bc(C, "C_norm", "C_bias").to(dtype),
            "theta": theta.unflatten(-1, (self.ngroups, -1)).to(dtype) if self.use_rope else None,
        }

    def _scan_args(self, p: dict[str, Tensor | None]) -> tuple:
        return p["x"], p["a"], p["gamma"], p["beta"], p["B"], p["C"], p["theta"]

    def _finish(self, y: Tensor, x: Tensor, z: Tensor) -> Tensor:
        """D skip per rank, the rank-r output map, gated RMSNorm and out-proj."""
        y = y + self.D[:, None, None] * x  # (.., H, P, R)
        y = self.mimo_out_proj(y.flatten(-2)) if self.mimo_rank else y[..., 0]  # (.., H, P)
        fused = self.impl == "auto"
        return self.out_proj(self.norm.gated(y.flatten(-2), z, fused))  # (.., d_inner)

    # -- training / prefill -----------------------------------------------------------------------
    def forward(self, u: Tensor) -> Tensor:
        return self._run(u)[0]

    def prefill(self, u: Tensor) -> tuple[Tensor, State]:
        """Forward over a prompt (B, L, D) plus the decode state after it, without stepping."""
        return self._run(u)

    def _run(self, u: Tensor) -> tuple[Tensor, State]:
        p = self._prepare(u)
        kernel = self._cuda_kernel(u)
        if kernel is not None:
            y, state = self._run_cuda(kernel, u, p)
            self.kernel_path = cuda.PATH_MAMBA_SSM
        elif self.impl == "reference":
            y, state = mamba3_ref(*self._scan_args(p), self.allow_neg_eigval)
        else:
            y, state = mamba3_chunked(*self._scan_args(p), self.allow_neg_eigval, self.chunk)
            self.kernel_path = cuda.PATH_TORCH
        out = self._finish(y.to(u.dtype), p["x"].to(u.dtype), p["z"])
        return out, {k: v.to(u.dtype) for k, v in state.items()}

    # -- CUDA (mamba-ssm's Mamba-3 SISO kernel) ----------------------------------------------------
    def _cuda_kernel(self, u: Tensor) -> Callable[..., Any] | None:
        """The kernel when this configuration maps onto it, else None (silent fallback)."""
        if self.impl != "auto" or self.mimo_rank or self.allow_neg_eigval or not u.is_cuda:
            return None
        pow2 = all(n & (n - 1) == 0 for n in (self.d_state, self.headdim))
        if not pow2 or (self.use_rope and self.d_state % 4):
            return None
        return cuda.mamba3_siso_kernel(u)

    def _run_cuda(self, kernel: Callable[..., Any], u: Tensor, p: dict) -> tuple[Tensor, State]:
        """Map our parameterisation onto the kernel's: it adds the biases and rotates inside
        (so B, C go in normalised, before the bias), takes λ as a logit, and accumulates
        angles as Σ θ·Δ (so θ/Δ goes in)."""
        b, L = u.shape[:2]
        *_, B_raw, C_raw, dt_raw, theta_raw, lam_raw = self.in_proj(u).split(self.split, dim=-1)
        bias_off = torch.zeros(self.nheads, self.d_state, device=u.device)

        def qk(raw: Tensor, norm: str) -> Tensor:
            t = raw.unflatten(-1, (self.ngroups, self.d_state)).float()  # (b, L, G, N)
            return getattr(self, norm)(t) if self.use_bc_norm else t

        dt = F.softplus(dt_raw.float() + self.dt_bias.float())  # (b, L, H)
        if self.use_rope:
            theta = theta_raw.float().unflatten(-1, (self.ngroups, -1))  # (b, L, G, N/2)
            angles = theta.repeat_interleave(self.nheads // self.ngroups, dim=2) / dt[..., None]
        else:
            angles = torch.zeros(b, L, self.nheads, 2, device=u.device)
        trap = lam_raw.float() if self.use_trapezoidal else torch.full_like(dt, TRAP_OFF_LOGIT)
        out, angle, ssm, k, v = kernel(
            qk(C_raw, "C_norm"), qk(B_raw, "B_norm"), p["x"][..., 0].float(),
            (dt * self._A(torch.float32)).transpose(1, 2).contiguous(),
            dt.transpose(1, 2).contiguous(), trap.transpose(1, 2).contiguous(),
            self.C_bias.float() if self.use_bc_bias else bias_off,
            self.B_bias.float() if self.use_bc_bias else bias_off,
            angles.contiguous(), None, None, None, CUDA_CHUNK, True,
        )  # fmt: skip
        state: State = {"ssm": ssm}
        if self.use_trapezoidal:
            state["x_prev"] = v[..., None]  # (b, H, P, 1)
            state["B_prev"] = k.reshape(b, self.nheads, -1)[..., None]  # (b, H, N, 1)
        if self.use_rope:
            state["angle"] = angle[:, :: self.nheads // self.ngroups]
        return out[..., None], state

    # -- decoding ---------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> State:
        shape = (self.nheads, self.headdim, self.d_state, self.rank, 0)
        return init_state(
            batch_size, shape, trapezoidal=self.use_trapezoidal,
            rope_groups=self.ngroups if self.use_rope else 0, device=device, dtype=dtype,
        )  # fmt: skip

    def step(self, u_t: Tensor, state: State) -> tuple[Tensor, State]:
        p = self._prepare(u_t)
        y, new = mamba3_step(state, *self._scan_args(p), self.allow_neg_eigval)
        return self._finish(y, p["x"], p["z"]), new
