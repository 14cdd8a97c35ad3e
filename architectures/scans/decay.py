"""Decay matrices of scalar transitions, shared by the chunked scans (SSD, Mamba-3, linear
attention): `segsum` for positive decays exp(a), and the signed transitions of Grazzi et al.
2025 ("Unlocking state-tracking in linear RNNs through negative eigenvalues"), α = 2 exp(a) − 1
in (−1, 1].

A chunked scan needs products of transitions α_{j+1} ... α_i. For positive α they are
exp(segsum(a)). A signed α has no real log, so a product is written as exp(Σ log |α|) times
the parity of the number of negative factors: the magnitudes keep segsum's float32 accuracy
and the sign is an exact integer count. With `signed` off every helper reduces to the plain
exp-of-sums form (log |α| = a, no sign), so unsigned callers compute exactly what they did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def segsum(a: Tensor) -> Tensor:
    """a (..., T) -> (..., T, T) with [i, j] = a_{j+1} + ... + a_i for i >= j, else -inf.

    Differences are sums of the terms between two steps (not differences of two long
    cumulative sums), which keeps exp(segsum) accurate in float32."""
    T = a.shape[-1]
    terms = a[..., :, None].expand(*a.shape, T)  # [k, j] = a_k
    ones = torch.ones(T, T, dtype=torch.bool, device=a.device)
    sums = terms.masked_fill(~ones.tril(-1), 0.0).cumsum(dim=-2)  # [i, j] = Σ_{j<k<=i} a_k
    return sums.masked_fill(~ones.tril(), float("-inf"))


def transition(a: Tensor, signed: bool) -> Tensor:
    """α = exp(a) in (0, 1], or 2 exp(a) − 1 in (−1, 1] when `signed`."""
    return 2 * torch.exp(a) - 1 if signed else torch.exp(a)


def log_transition(a: Tensor, signed: bool) -> tuple[Tensor, Tensor | None]:
    """log |α| and, when `signed`, a 0/1 mask of negative α (its parity gives the sign of a
    product). |α| is floored at the smallest normal number so log stays finite."""
    if not signed:
        return a, None
    alpha = transition(a, True)
    tiny = torch.finfo(alpha.dtype).tiny
    return torch.log(alpha.abs().clamp_min(tiny)), (alpha < 0).to(alpha.dtype)


def _parity_sign(count: Tensor) -> Tensor:
    """±1 from a count of negative factors (exact small integers stored as floats)."""
    return 1 - 2 * torch.remainder(count, 2)


def sign_of_products(neg: Tensor) -> Tensor:
    """neg (.., T) 0/1 -> (.., T, T) with [i, j] = sign of α_{j+1} ... α_i (lower triangle)."""
    count = neg.cumsum(-1)
    return _parity_sign(count[..., :, None] - count[..., None, :])


def decay_matrix(log_abs: Tensor, neg: Tensor | None) -> Tensor:
    """(.., T) -> (.., T, T): [i, j] = α_{j+1} ... α_i for i >= j, else 0."""
    decay = torch.exp(segsum(log_abs))
    return decay if neg is None else decay * sign_of_products(neg)


def suffix_transition(log_abs: Tensor, neg: Tensor | None) -> Tensor:
    """(.., T) -> (.., T): [s] = α_{s+1} ... α_T, the transition from step s to the chunk end."""
    after = F.pad(log_abs.flip(-1).cumsum(-1).flip(-1)[..., 1:], (0, 1))  # Σ_{k>s} log|α_k|
    out = torch.exp(after)
    if neg is not None:
        out = out * _parity_sign(F.pad(neg.flip(-1).cumsum(-1).flip(-1)[..., 1:], (0, 1)))
    return out


def prefix_transition(log_abs: Tensor, neg: Tensor | None) -> Tensor:
    """(.., T) -> (.., T): [t] = α_1 ... α_t, the transition from the chunk start to step t."""
    out = torch.exp(log_abs.cumsum(-1))
    return out if neg is None else out * _parity_sign(neg.cumsum(-1))
