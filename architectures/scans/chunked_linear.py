"""The linear-attention family's kernels: sequential references and the chunked fast path.

Per head, with a state S (d_k x d_v), keys k_t, queries q_t (d_k), values v_t (d_v), a
log-decay g_t (one number, or one per key dimension) and a write strength β_t:

    decayed linear attention   S_t = diag(exp g_t) S_{t-1} + k_t v_tᵀ                y_t = S_tᵀ q_t
    (gated) delta rule         S_t = exp(g_t) (I − β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ

Linear attention is g = 0; RetNet a fixed scalar g per head; GLA a data-dependent g per key
dimension; DeltaNet the delta rule with g = 0; Gated DeltaNet the delta rule with a scalar g.

The chunked form (Yang et al. 2024, "Gated Linear Attention"; "Parallelizing Linear
Transformers with the Delta Rule") splits time into chunks of T steps. Inside a chunk every
step is a masked matmul against the chunk's own keys; across chunks only the state at each
chunk boundary is passed on, by a Python loop over *chunks* (L / T iterations of a few
matmuls), never over time steps. For the delta rule the writes inside a chunk depend on each
other through a unit lower-triangular system, solved once per chunk (the WY/UT form):

    δ_t = β_t (v_t − exp(g_t) S_{t-1}ᵀ k_t)  ⇒  (I + M) δ = β ⊙ (V − γ ⊙ K S_0)
    M_tj = β_t exp(G_t − G_j) k_tᵀ k_j  (j < t),   γ_t = exp(G_t),  G = cumsum of g in the chunk

so δ = U − W S_0 with U = (I + M)⁻¹ diag(β) V, W = (I + M)⁻¹ diag(β γ) K, and then
y = diag(γ) Q S_0 + (Q Kᵀ ⊙ D) δ,  S_T = γ_T S_0 + (D_T ⊙ K)ᵀ δ  with D_tj = exp(G_t − G_j).

Numerics: scalar decays form D from `segsum` (sums of the terms between two steps, accurate in
float32). Per-dimension decays (GLA) cannot form a (T x T) matrix per dimension cheaply, so the
intra-chunk scores factor as (q_i e^{G_i − G_r}) · (k_j e^{G_r − G_j}) around the chunk's middle
step r: exponents stay within (T / 2) · max|g|, which the GLA mixer bounds (see gla.py).
Everything else only ever takes exp of non-positive numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from seqbench.architectures.scans.counting import batched_on_meta
from seqbench.architectures.scans.decay import segsum

DEFAULT_CHUNK = 32  # fastest of 16, 32, 64, 128 on CPU (benchmarks/bench_linear.py)


# -- one step (the decoding path, and the body of the references) ---------------------------------
def linear_step(
    S: Tensor, q: Tensor, k: Tensor, v: Tensor, g: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """S (b, h, dk, dv); q, k (b, h, dk); v (b, h, dv); g (b, h, dk) or (b, h, 1) or None."""
    if g is not None:
        S = torch.exp(g)[..., None] * S
    S = S + k[..., None] * v[..., None, :]  # + k vᵀ
    return (S * q[..., None]).sum(-2), S  # Sᵀ q (b, h, dv)


def delta_step(
    S: Tensor, q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """S (b, h, dk, dv); q, k (b, h, dk); v (b, h, dv); beta (b, h); g (b, h) or None."""
    if g is not None:
        S = torch.exp(g)[..., None, None] * S
    v_old = (S * k[..., None]).sum(-2)  # what S recalls for k: Sᵀ k (b, h, dv)
    S = S + beta[..., None, None] * k[..., None] * (v - v_old)[..., None, :]
    return (S * q[..., None]).sum(-2), S


# -- sequential references (loop over t) ----------------------------------------------------------
def linear_attention_ref(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """q, k (b, h, L, dk); v (b, h, L, dv); g (b, h, L, dk | 1) or None -> y (b, h, L, dv), S_L."""
    b, h, L, dk = q.shape
    S = q.new_zeros(b, h, dk, v.shape[-1])
    ys = []
    for t in range(L):
        g_t = None if g is None else g[:, :, t]
        y_t, S = linear_step(S, q[:, :, t], k[:, :, t], v[:, :, t], g_t)
        ys.append(y_t)
    return torch.stack(ys, dim=2), S


def delta_rule_ref(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """q, k (b, h, L, dk); v (b, h, L, dv); beta, g (b, h, L) -> y (b, h, L, dv), S_L."""
    b, h, L, dk = q.shape
    S = q.new_zeros(b, h, dk, v.shape[-1])
    ys = []
    for t in range(L):
        g_t = None if g is None else g[:, :, t]
        y_t, S = delta_step(S, q[:, :, t], k[:, :, t], v[:, :, t], beta[:, :, t], g_t)
        ys.append(y_t)
    return torch.stack(ys, dim=2), S


# -- chunked fast path ----------------------------------------------------------------------------
def _chunks(t: Tensor, T: int, pad: int) -> Tensor:
    """(b, h, L, ...) -> (b, h, c, T, ...), zero-padded at the end.

    Why zeros are safe: a padded step has k = 0 (writes nothing), β = 0 and g = 0 (decay 1), so
    the state passes through it unchanged; its outputs are cut off.
    """
    if pad:
        t = F.pad(t, (0, 0) * (t.dim() - 3) + (0, pad))
    b, h, n = t.shape[:3]
    return t.reshape(b, h, n // T, T, *t.shape[3:])


def _scalar_decay(g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """g (b, h, c, T) -> D (.., T, T) = exp(G_t − G_j) for j <= t (else 0), γ = exp(G) (.., T),
    and D_T (.., T) = exp(G_T − G_j), the decay from each step to the chunk's end."""
    D = torch.exp(segsum(g))  # (b, h, c, T, T)
    return D, torch.exp(g.cumsum(-1)), D[..., -1, :]


def linear_attention_chunked(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None = None, chunk: int = DEFAULT_CHUNK
) -> tuple[Tensor, Tensor]:
    """Chunked form of `linear_attention_ref`, same signature and results."""
    L = q.shape[2]
    T = min(chunk, L)
    pad = -L % T
    qc, kc, vc = _chunks(q, T, pad), _chunks(k, T, pad), _chunks(v, T, pad)  # (b, h, c, T, d)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    if g is None:  # plain linear attention: no decay
        scores = (qc @ kc.transpose(-1, -2)).masked_fill(~causal, 0.0)  # (b, h, c, T, T)
        q_in, k_out, decay = qc, kc, None
    elif g.shape[-1] == 1:  # one decay per head and step (RetNet)
        D, gamma, D_T = _scalar_decay(_chunks(g, T, pad)[..., 0])
        scores = (qc @ kc.transpose(-1, -2)) * D
        q_in, k_out = qc * gamma[..., None], kc * D_T[..., None]
        decay = gamma[..., -1, None, None]  # (b, h, c, 1, 1)
    else:  # one decay per key dimension (GLA)
        G = _chunks(g, T, pad).cumsum(-2)  # (b, h, c, T, dk), non-increasing in t
        G_mid = G[..., T // 2 : T // 2 + 1, :]
        scores = (qc * torch.exp(G - G_mid)) @ (kc * torch.exp(G_mid - G)).transpose(-1, -2)
        scores = scores.masked_fill(~causal, 0.0)
        q_in, k_out = qc * torch.exp(G), kc * torch.exp(G[..., -1:, :] - G)
        decay = torch.exp(G[..., -1, :, None])  # (b, h, c, dk, 1)
    S_in, S = _state_pass(decay, k_out.transpose(-1, -2) @ vc)  # (b, h, c, dk, dv)
    y = q_in @ S_in + scores @ vc  # (b, h, c, T, dv)
    return y.flatten(2, 3)[:, :, :L], S


def delta_rule_chunked(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    g: Tensor | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[Tensor, Tensor]:
    """Chunked (WY/UT) form of `delta_rule_ref`, same signature and results."""
    L, dk = q.shape[2:]
    T = min(chunk, L)
    pad = -L % T
    qc, kc, vc = _chunks(q, T, pad), _chunks(k, T, pad), _chunks(v, T, pad)  # (b, h, c, T, d)
    bc = _chunks(beta[..., None], T, pad)  # (b, h, c, T, 1)
    if g is None:
        D = torch.ones(T, T, dtype=q.dtype, device=q.device).tril()
        gamma = D_T = decay = None
    else:
        D, gamma, D_T = _scalar_decay(_chunks(g[..., None], T, pad)[..., 0])
        decay = gamma[..., -1, None, None]  # (b, h, c, 1, 1)
    kk = (kc @ kc.transpose(-1, -2)) * D  # (b, h, c, T, T): exp(G_t − G_j) k_tᵀ k_j
    M = (bc * kk).tril(-1)
    k_w = kc if gamma is None else kc * gamma[..., None]
    rhs = torch.cat([bc * vc, bc * k_w], dim=-1)  # (b, h, c, T, dv + dk)
    # (I + M) X = rhs with I + M unit lower-triangular: the WY/UT representation of the chunk.
    X = torch.linalg.solve_triangular(M, rhs, upper=False, unitriangular=True)
    U, W = X.split([v.shape[-1], dk], dim=-1)
    scores = (qc @ kc.transpose(-1, -2)) * D
    q_in = qc if gamma is None else qc * gamma[..., None]
    k_out = kc if D_T is None else kc * D_T[..., None]
    # With S entering a chunk: δ = U − W S, y = q_in S + scores δ, S' = decay S + k_outᵀ δ.
    # So each chunk maps S -> A S + B, and y = (q_in − scores W) S + scores U.
    k_outT = k_out.transpose(-1, -2)  # (b, h, c, dk, T)
    eye = torch.eye(dk, dtype=q.dtype, device=q.device)
    A = (eye if decay is None else decay * eye) - k_outT @ W  # (b, h, c, dk, dk)
    S_in, S = _state_pass(A, k_outT @ U, matrix=True)
    y = (q_in - scores @ W) @ S_in + scores @ U
    return y.flatten(2, 3)[:, :, :L], S


def _state_pass(A: Tensor | None, B: Tensor, matrix: bool = False) -> tuple[Tensor, Tensor]:
    """The inter-chunk pass, one iteration per chunk (never per step): S_{i+1} = A_i S_i + B_i.

    A (b, h, c, dk, dk) multiplies when `matrix` (delta rule), else scales elementwise
    ((b, h, c, dk | 1, 1) decays; None is the identity); B (b, h, c, dk, dv). Returns the
    state entering each chunk (b, h, c, dk, dv) and the final state (b, h, dk, dv).

    The first chunk starts from the zero state, so it needs no product (S_1 = B_0). The other
    chunks' transitions are taken chunk-major (`_later`), so that autograd saves views of one
    storage, in the loop and in `_state_pass_on_meta` alike (on meta the loop is batched).
    """
    S = B.new_zeros(B.shape[0], B.shape[1], *B.shape[3:])
    if B.shape[2] > 2 and batched_on_meta(B):
        return _state_pass_on_meta(S, _later(A, matrix), B, matrix)
    later = _later(A, matrix)
    # unbind once: indexing chunk i inside the loop would make autograd build a zero tensor of
    # the full size per chunk in backward (quadratic in the number of chunks).
    first, *rest = B.unbind(2)
    steps = [None] * len(rest) if later is None else later.unbind(0)
    entering = [S]
    S = S + first  # a new tensor, not a view of B: saved by itself, as on meta
    for A_i, B_i in zip(steps, rest, strict=True):
        entering.append(S)
        if A_i is not None:
            S = A_i @ S if matrix else A_i * S
        S = S + B_i
    return torch.stack(entering, dim=2), S


def _later(A: Tensor | None, matrix: bool) -> Tensor | None:
    """The transitions of chunks 1.., chunk-major (c - 1, b, h, ..): contiguous for matmuls,
    whose batched reshape would otherwise copy a slice over chunks; a view for decays, which
    are only broadcast."""
    if A is None:
        return None
    later = A.movedim(2, 0)[1:]
    return later.contiguous() if matrix else later


def _state_pass_on_meta(
    S0: Tensor, later: Tensor | None, B: Tensor, matrix: bool
) -> tuple[Tensor, Tensor]:
    """`_state_pass`'s ops batched over chunks (meta only: values are never computed), so that
    FLOPs and held storages equal the loop's: the products of chunks 1 .. c-2, whose states
    enter later chunks, in one op; the last chunk's, which makes only the final state (and is
    dropped with it in training), in another, on a state of its own."""
    chunks = B.movedim(2, 0)  # (c, b, h, dk, dv)
    states = chunks[:-2].clone()  # stands in for S_1 .. S_{c-2}, inputs of the inner products
    if later is None:
        inner = states
    elif matrix:
        inner = later[:-1] @ states
    else:
        inner = later[:-1] * states
    after = inner + chunks[1:-1]  # S_2 .. S_{c-1}
    last = after[-1].clone()  # S_{c-1}, the last product's own input, as in the loop
    if later is not None:
        last = later[-1] @ last if matrix else later[-1] * last
    entering = torch.cat([S0[None], states[:1], after])  # S_0, S_1, S_2 .. S_{c-1}
    return entering.movedim(0, 2), last + chunks[-1]
