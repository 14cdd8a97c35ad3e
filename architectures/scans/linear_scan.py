"""The LRU's scan: a complex diagonal, time-invariant linear recurrence, and its reference.

    x_t = λ ⊙ x_{t-1} + v_t        (λ, x_t, v_t complex, one entry per state n)

Because λ does not depend on t, x is a causal convolution of v with the kernel λ^k. The chunked
form evaluates it exactly with two small matmuls: inside a chunk of T steps, x = M v with the
lower-triangular Toeplitz M[i, j] = λ^(i-j) (one T x T matrix per state); across chunks, the
chunk end states are combined by the same construction with λ^T, then decayed into each step.
Powers are exp(k log λ), built from the log parameterisation, so they are exact and smooth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_CHUNK = 64  # cost ~ L * chunk within chunks plus (L / chunk)^2 across them


def linear_step(x: Tensor, lam: Tensor, v_t: Tensor) -> Tensor:
    """x (b, N), λ (N,), v_t (b, N), all complex -> next x."""
    return lam * x + v_t


def linear_scan_ref(log_lam: Tensor, v: Tensor, x0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Sequential reference. log λ (N,), v (b, L, N) complex -> states (b, L, N) and x_L."""
    lam = torch.exp(log_lam)
    x = v.new_zeros(v.shape[0], v.shape[2]) if x0 is None else x0
    xs = []
    for v_t in v.unbind(1):
        x = linear_step(x, lam, v_t)
        xs.append(x)
    return torch.stack(xs, dim=1), x


def _toeplitz_powers(log_lam: Tensor, size: int, stride: int) -> Tensor:
    """(N, size, size) with [n, i, j] = λ_n^(stride (i - j)) for i >= j and 0 above.

    The exponent is clamped at 0 above the diagonal before exp, so no λ^(-k) overflows there.
    """
    k = torch.arange(size, device=log_lam.device)
    diff = k[:, None] - k[None, :]  # (size, size)
    powers = torch.exp(
        (diff.clamp(min=0) * stride)[None].to(log_lam.dtype) * log_lam[:, None, None]
    )
    return powers * (diff >= 0)  # (N, size, size)


def linear_scan_chunked(
    log_lam: Tensor, v: Tensor, chunk: int = DEFAULT_CHUNK
) -> tuple[Tensor, Tensor]:
    """Chunked scan with the signature of `linear_scan_ref` (no x0)."""
    b, L, N = v.shape
    T = min(chunk, L)
    pad = -L % T  # padded steps come after every real one, so they never reach real outputs
    c = (L + pad) // T
    v = F.pad(v, (0, 0, 0, pad)).view(b, c, T, N)
    v_n = v.permute(3, 2, 0, 1).reshape(N, T, b * c)  # (N, T, b c): one matmul per state
    local = (_toeplitz_powers(log_lam, T, 1) @ v_n).view(N, T, b, c)  # zero state in
    ends = local[:, -1].permute(0, 2, 1)  # (N, c, b): each chunk's end state
    carried = _toeplitz_powers(log_lam, c, T) @ ends  # (N, c, b): true state after chunk
    before = F.pad(carried, (0, 0, 1, 0))[:, :-1]  # (N, c, b): state entering each chunk
    rise = torch.exp(torch.arange(1, T + 1, device=v.device).to(log_lam.dtype)[:, None] * log_lam)
    x = local + rise.t()[:, :, None, None] * before.permute(0, 2, 1)[:, None]  # (N, T, b, c)
    x = x.permute(2, 3, 1, 0).reshape(b, c * T, N)[:, :L]
    return x, x[:, -1]  # (b, L, N), (b, N)
