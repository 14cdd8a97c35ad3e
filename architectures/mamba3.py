"""Mamba-3 (Lahoti, Li, Chen, Wang, Bick, Kolter, Dao, Gu; ICLR 2026): Mamba-2's block with three
changes, each a knob so it can be ablated, and no short convolution. By default it follows the
official module, mamba-ssm's `mamba_ssm/modules/mamba3.py` (docs/recurrent.md compares the two
point by point):

    [z, x, B, C, δ, a, θ, λ] = W_in u;   Δ = softplus(δ + b_Δ);   A_t = −max(f(a), A_floor)
    B, C ← RMSNorm(B), RMSNorm(C) (use_bc_norm), + per-head biases initialised to 1 (use_bc_bias)
    φ_t = φ_{t-1} + π tanh(θ_t) Δ_t  (per head);   B̃, C̃ = B, C with pairs rotated by φ_t
    per head:  S_t = α_t S_{t-1} + λ_t Δ_t x_t B̃_tᵀ + (1 − λ_t) Δ_t α_t x_{t-1} B̃_{t-1}ᵀ,
               α_t = exp(Δ_t A_t),   y_t = S_t C̃_t + D_h x_t
    out = W_out(y ⊙ SiLU(z))

- `use_trapezoidal`: λ_t = σ(·) per head blends the current and the previous input term
  (exponential-trapezoidal rule); off, λ ≡ 1 and this is Mamba-2's Euler rule.
- `use_rope`: B̃, C̃ are B, C rotated pairwise by the cumulative angle φ_t; equivalent to a
  complex diagonal transition: the state can turn, not only shrink, which is what lets a
  recurrence track parity. `rope_fraction` 0.5 rotates the first half of the state channels
  (d_state/4 angles, shared by all heads), 1.0 all of them. `angle_rate`: "tanh_dt" turns by
  π tanh(θ_t) Δ_t per step (mamba-ssm: at most π Δ_t, and not at all when Δ_t → 0); "raw" by
  θ_t itself (this code's earlier, unofficial form).
- `data_dependent_A`: A_t per token and head from the input, f(v) = 1 + v (v ≥ 0), 1/(1 − v)
  (v < 0), floored at A_floor (mamba-ssm); off, one learned A_h = −exp(A_log) per head (Mamba-2).
- `outproj_norm`: off (mamba-ssm's default), the output is y ⊙ SiLU(z); on, RMSNorm(y ⊙ SiLU(z))
  over d_inner (Mamba-2's gated norm, this code's earlier form).
- `mimo_rank` r > 0: per head and rank, x_r = x ⊙ w_x[r] and B, C carry r columns (with their own
  biases); the state update is rank r; y_r = S C_r + D x_r is gated by SiLU(z ⊙ w_z[r]) and the
  ranks summed with weights w_o[r] (mamba-ssm's mimo_x, mimo_z, mimo_o). 0 is SISO.
- `allow_neg_eigval`: α_t = 2 exp(Δ_t A_t) − 1 in (−1, 1] instead of (0, 1] (Grazzi et al. 2025,
  "negative eigenvalues"); default off.

Kernel paths (`kernel_path`, updated by every forward): "mamba-ssm-cuda" (mamba-ssm's Triton
`mamba3_siso_combined` on CUDA when importable, for SISO with positive transitions and the
official angle), "c-native" (`scans.mamba3_scan.mamba3_native`: SISO, float32 on the CPU with
impl="auto" where a C compiler is found; either sign of transition), "torch-scan"
(`scans.mamba3_scan.mamba3_chunked`), "torch-reference"
(impl="reference": the sequential loop of the decode step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.mamba2 import _range
from seqbench.architectures.norm import RMSNorm
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.scans import cuda, native
from seqbench.architectures.scans.mamba3_scan import (
    State,
    init_state,
    mamba3_chunked,
    mamba3_native,
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
    no_weight_decay,
    positive_int,
    scan_dtype,
)
from seqbench.errors import UserError

IMPLS = ("auto", "torch", "reference")
ANGLE_RATES = ("tanh_dt", "raw")
ROPE_FRACTIONS = (0.5, 1.0)
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
        rope_fraction: float = 0.5,
        angle_rate: str = "tanh_dt",
        data_dependent_A: bool = True,
        A_floor: float = 1e-4,
        outproj_norm: bool = False,
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
        self.angle_rate = choice("mamba3 angle_rate", angle_rate, ANGLE_RATES)
        self.data_dependent_A = flag("data_dependent_A", data_dependent_A)
        self.outproj_norm = flag("outproj_norm", outproj_norm)
        self.use_bc_norm = flag("use_bc_norm", use_bc_norm)
        self.use_bc_bias = flag("use_bc_bias", use_bc_bias)
        self.allow_neg_eigval = flag("allow_neg_eigval", allow_neg_eigval)
        if isinstance(rope_fraction, bool) or rope_fraction not in ROPE_FRACTIONS:
            raise UserError(f"rope_fraction must be 0.5 or 1.0 (as mamba-ssm), got {rope_fraction}")
        self.rope_fraction = float(rope_fraction)
        rotated = int(self.d_state * rope_fraction) // 2 * 2  # channels rotated, made even
        if use_rope and rotated < 2:
            raise UserError(f"use_rope needs a pair of state channels to rotate: d_state={d_state}")
        self.n_angles = rotated // 2 if use_rope else 0  # K, shared by every head
        if isinstance(A_floor, bool) or not isinstance(A_floor, (int, float)) or A_floor <= 0:
            raise UserError(f"A_floor must be a positive number, got {A_floor!r}")
        self.A_floor = float(A_floor)
        lo, hi = _range("A_init_range", A_init_range)
        check_dt_range(dt_min, dt_max, dt_init_floor)
        self.impl = choice("mamba3 impl", impl, IMPLS)
        self.chunk = positive_int("chunk", chunk)
        self.kernel_path = cuda.PATH_REFERENCE if impl == "reference" else cuda.PATH_TORCH

        self.d_bc = ngroups * self.d_state * self.rank
        self.split = [
            self.d_inner,
            self.d_inner,
            self.d_bc,
            self.d_bc,
            self.nheads,
            self.nheads if data_dependent_A else 0,
            self.n_angles,
            self.nheads if use_trapezoidal else 0,
        ]  # fmt: skip  z, x, B, C, δ, A, θ, λ
        self.in_proj = nn.Linear(d_model, sum(self.split), bias=bias)
        self.dt_bias = nn.Parameter(dt_bias_init(self.nheads, dt_min, dt_max, dt_init_floor))
        if not data_dependent_A:
            self.A_log = nn.Parameter(torch.log(torch.empty(self.nheads).uniform_(lo, hi)))
        self.D = nn.Parameter(torch.ones(self.nheads))
        if use_bc_norm:
            self.B_norm = RMSNorm(self.d_state, eps=1e-5)
            self.C_norm = RMSNorm(self.d_state, eps=1e-5)
        if use_bc_bias:
            # Head- and rank-specific channel biases, initialised to 1 (the paper's Table 9a).
            ones = torch.ones(self.nheads, self.rank, self.d_state)
            self.B_bias = no_weight_decay(nn.Parameter(ones.clone()))
            self.C_bias = no_weight_decay(nn.Parameter(ones.clone()))
        if mimo_rank:
            # Per head and rank, elementwise over the head dim (mamba-ssm's mimo_x / z / o):
            # x_r = x ⊙ w_x[r], gate_r = SiLU(z ⊙ w_z[r]), out = Σ_r y_r ⊙ w_o[r]. At init the
            # R copies of x are x/R and the output is their mean: a SISO layer's scale.
            # With outproj_norm the gate acts once, after the ranks are summed: no w_z.
            shape = (self.nheads, mimo_rank, self.headdim)
            self.mimo_x = nn.Parameter(torch.full(shape, 1.0 / mimo_rank))
            if not outproj_norm:
                self.mimo_z = nn.Parameter(torch.ones(shape))
            self.mimo_o = nn.Parameter(torch.full(shape, 1.0 / mimo_rank))
        if outproj_norm:
            self.norm = RMSNorm(self.d_inner, eps=1e-5)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    # -- shared pieces ----------------------------------------------------------------------------
    def _A(self, A_raw: Tensor | None, dtype: torch.dtype) -> Tensor:
        """A < 0: per head and token, −max(f(A_raw), A_floor) with mamba-ssm's heavy-tailed f
        (1 + v for v ≥ 0, 1/(1 − v) below), or the learned constant −exp(A_log) per head."""
        if A_raw is None:
            return -torch.exp(self.A_log.to(dtype))  # (H,)
        v = A_raw.to(dtype)
        f = v.clamp(min=0) + 1 / (1 - v.clamp(max=0))
        return -f.clamp(min=self.A_floor)  # (.., H)

    def _bc(self, raw: Tensor, norm: str, bias: str) -> Tensor:
        """B or C (.., G·R·N) -> per head (.., H, N, R): RMSNorm over N, head bias."""
        t = raw.unflatten(-1, (self.ngroups, self.rank, self.d_state))  # (.., G, R, N)
        if self.use_bc_norm:
            t = getattr(self, norm)(t)
        t = t.repeat_interleave(self.nheads // self.ngroups, dim=-3)  # (.., H, R, N)
        if self.use_bc_bias:
            t = t + getattr(self, bias)
        return t.transpose(-1, -2)  # (.., H, N, R)

    def _omega(self, theta: Tensor, dt: Tensor) -> Tensor:
        """Per-head angle increments (.., H, K) from the K projected angles (.., K): mamba-ssm's
        π tanh(θ) Δ_h (`tanh_dt`: bounded, and zero wherever Δ is), or θ itself (`raw`)."""
        theta = theta[..., None, :].to(dt.dtype)  # (.., 1, K)
        if self.angle_rate == "raw":
            return theta.expand(*dt.shape, self.n_angles)
        return math.pi * torch.tanh(theta) * dt[..., None]

    def _prepare(self, u: Tensor) -> dict[str, Tensor | None]:
        """Everything before the scan, for (B, L, D) or one step (B, D)."""
        z, x, B, C, dt_raw, A_raw, theta, lam = self.in_proj(u).split(self.split, dim=-1)
        dtype = scan_dtype(u)
        dt = F.softplus(dt_raw + self.dt_bias).to(dtype)  # (.., H)
        A = self._A(A_raw if self.data_dependent_A else None, dtype)  # (.., H) or (H,)
        x = x.unflatten(-1, (self.nheads, self.headdim))  # (.., H, P)
        x_r = x[..., None] * self.mimo_x.transpose(-1, -2) if self.mimo_rank else x[..., None]
        lam = torch.sigmoid(lam).to(dtype) if self.use_trapezoidal else None
        return {
            "z": z,
            "x": x_r.to(dtype),  # (.., H, P, R)
            "a": dt * A,
            "gamma": dt if lam is None else lam * dt,
            "beta": None if lam is None else (1 - lam) * dt,
            "B": self._bc(B, "B_norm", "B_bias").to(dtype),
            "C": self._bc(C, "C_norm", "C_bias").to(dtype),
            "omega": self._omega(theta, dt) if self.use_rope else None,
        }

    def _scan_args(self, p: dict[str, Tensor | None]) -> tuple:
        return p["x"], p["a"], p["gamma"], p["beta"], p["B"], p["C"], p["omega"]

    def _finish(self, y: Tensor, x: Tensor, z: Tensor) -> Tensor:
        """D skip per rank, the SiLU(z) gate (per rank for MIMO), the rank-r output map, then
        the optional gated RMSNorm and the out-proj. y, x (.., H, P, R); z (.., d_inner)."""
        y = y + self.D[:, None, None] * x  # (.., H, P, R)
        if self.outproj_norm:
            y = (y * self.mimo_o.transpose(-1, -2)).sum(-1) if self.mimo_rank else y[..., 0]
            fused = self.impl == "auto"
            return self.out_proj(self.norm.gated(y.flatten(-2), z, fused))
        z = z.unflatten(-1, (self.nheads, self.headdim))  # (.., H, P)
        if self.mimo_rank:
            gate = F.silu(z[..., None] * self.mimo_z.transpose(-1, -2))  # (.., H, P, R)
            y = (y * gate * self.mimo_o.transpose(-1, -2)).sum(-1)
        else:
            y = y[..., 0] * F.silu(z)
        return self.out_proj(y.flatten(-2))  # (.., d_model)

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
        elif self._native_scan(p["x"]):
            y, state = mamba3_native(*self._scan_args(p), self.allow_neg_eigval)
            self.kernel_path = native.PATH_NATIVE
        else:
            y, state = mamba3_chunked(*self._scan_args(p), self.allow_neg_eigval, self.chunk)
            self.kernel_path = cuda.PATH_TORCH
        out = self._finish(y.to(u.dtype), p["x"].to(u.dtype), p["z"])
        return out, {k: v.to(u.dtype) for k, v in state.items()}

    def _native_scan(self, x: Tensor) -> bool:
        """The C kernel takes SISO float32 on the CPU (it has no rank axis)."""
        return (
            self.impl == "auto"
            and not self.mimo_rank
            and x.dtype == torch.float32
            and native.usable(x)
        )

    # -- CUDA (mamba-ssm's Mamba-3 SISO kernel) ----------------------------------------------------
    def _cuda_kernel(self, u: Tensor) -> Callable[..., Any] | None:
        """The kernel when this configuration maps onto it, else None (silent fallback). It
        computes the angle as π tanh(θ) Δ itself, so `angle_rate="raw"` cannot use it."""
        if self.impl != "auto" or self.mimo_rank or self.allow_neg_eigval or not u.is_cuda:
            return None
        if self.use_rope and self.angle_rate != "tanh_dt":
            return None
        pow2 = all(n & (n - 1) == 0 for n in (self.d_state, self.headdim))
        return cuda.mamba3_siso_kernel(u) if pow2 else None

    def _run_cuda(self, kernel: Callable[..., Any], u: Tensor, p: dict) -> tuple[Tensor, State]:
        """Map our tensors onto the kernel's arguments: it adds the biases and rotates inside
        (so B, C go in normalised, before the bias), takes λ as a logit and the raw angle
        projection θ (it applies π tanh(θ) Δ and the cumulative sum); D and the gate stay
        with `_finish`."""
        b, L = u.shape[:2]
        _, _, B_raw, C_raw, dt_raw, A_raw, theta, lam_raw = self.in_proj(u).split(self.split, -1)
        bias_off = torch.zeros(self.nheads, self.d_state, device=u.device)

        def qk(raw: Tensor, norm: str) -> Tensor:
            t = raw.unflatten(-1, (self.ngroups, self.d_state)).float()  # (b, L, G, N)
            return getattr(self, norm)(t) if self.use_bc_norm else t

        def bias(name: str) -> Tensor:
            return getattr(self, name)[:, 0].float() if self.use_bc_bias else bias_off

        dt = F.softplus(dt_raw.float() + self.dt_bias.float())  # (b, L, H)
        A = self._A(A_raw if self.data_dependent_A else None, torch.float32)
        if self.use_rope:
            angles = theta.float()[:, :, None, :].expand(b, L, self.nheads, self.n_angles)
        else:
            angles = torch.zeros(b, L, self.nheads, 1, device=u.device)
        trap = lam_raw.float() if self.use_trapezoidal else torch.full_like(dt, TRAP_OFF_LOGIT)
        out, angle, ssm, k, v = kernel(
            qk(C_raw, "C_norm"), qk(B_raw, "B_norm"), p["x"][..., 0].float(),
            (dt * A).transpose(1, 2).contiguous(), dt.transpose(1, 2).contiguous(),
            trap.transpose(1, 2).contiguous(), bias("C_bias"), bias("B_bias"),
            angles.contiguous(), None, None, None, CUDA_CHUNK, True,
        )  # fmt: skip
        state: State = {"ssm": ssm}
        if self.use_trapezoidal:
            state["x_prev"] = v[..., None]  # (b, H, P, 1)
            state["B_prev"] = k.reshape(b, self.nheads, -1)[..., None]  # (b, H, N, 1)
        if self.use_rope:
            state["angle"] = angle  # (b, H, K)
        return out[..., None], state

    # -- decoding ---------------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> State:
        shape = (self.nheads, self.headdim, self.d_state, self.rank, self.n_angles)
        return init_state(
            batch_size, shape, trapezoidal=self.use_trapezoidal, device=device, dtype=dtype
        )

    def step(self, u_t: Tensor, state: State) -> tuple[Tensor, State]:
        p = self._prepare(u_t)
        y, new = mamba3_step(state, *self._scan_args(p), self.allow_neg_eigval)
        return self._finish(y, p["x"], p["z"]), new
