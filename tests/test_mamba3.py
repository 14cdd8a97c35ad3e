"""Mamba-3: the chunked scan against the sequential reference for every knob combination,
decoding (prefill == steps, fixed state size), the recorded kernel path, presets and errors.

The conformance gate (tests/test_conformance.py) covers shapes, causality, step == forward
and gradients of the registered mixer and of the `mamba3` / `hybrid3` presets.
"""

from __future__ import annotations

import itertools
import math
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from seqbench.architectures.contract import prefill_by_steps, state_bytes
from seqbench.architectures.mamba3 import Mamba3
from seqbench.architectures.scans import cuda, mamba3_scan, native
from seqbench.architectures.scans.mamba3_scan import (
    mamba3_chunked,
    mamba3_native,
    mamba3_ref,
    rotate,
)
from seqbench.errors import UserError

F64 = torch.float64
D_MODEL = 16
SMALL = {"d_state": 8, "headdim": 4, "ngroups": 2, "chunk": 8}
KNOBS = list(itertools.product([True, False], [True, False], [0, 2]))  # trapezoid, rope, rank


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def max_diff(a: Tensor, b: Tensor) -> float:
    return float((a - b).detach().abs().max())


def angle_diff(a: Tensor, b: Tensor) -> float:
    """Largest difference of two angles modulo 2π (a state angle is kept in [0, 2π))."""
    d = torch.remainder((a - b).detach() + torch.pi, 2 * torch.pi) - torch.pi
    return float(d.abs().max())


def state_diff(key: str, a: Tensor, b: Tensor) -> float:
    return angle_diff(a, b) if key == "angle" else max_diff(a, b)


def scan_inputs(
    length: int, trapezoidal: bool, rope: bool, rank: int, b: int = 2, H: int = 4, K: int = 1
) -> list[Tensor | None]:
    """Random scan inputs in float64: x (b, L, H, P, R), a, γ, β (b, L, H), B, C (b, L, H, N, R),
    ω (b, L, H, K) with K of the N/2 = 2 channel pairs rotated; β and ω None when their knob is
    off."""
    g, P, N, R = _gen(0), 3, 4, max(1, rank)
    dt = F.softplus(torch.randn(b, length, H, generator=g, dtype=F64) - 1)
    lam = torch.sigmoid(torch.randn(b, length, H, generator=g, dtype=F64))
    A = -3 * torch.rand(H, generator=g, dtype=F64)
    inputs = [
        torch.randn(b, length, H, P, R, generator=g, dtype=F64),
        dt * A,
        lam * dt if trapezoidal else dt,
        (1 - lam) * dt if trapezoidal else None,
        torch.randn(b, length, H, N, R, generator=g, dtype=F64),
        torch.randn(b, length, H, N, R, generator=g, dtype=F64),
        2 * torch.randn(b, length, H, K, generator=g, dtype=F64) if rope else None,
    ]
    return [None if t is None else t.requires_grad_(True) for t in inputs]


def run_with_grads(fn, inputs: list[Tensor | None]) -> tuple[Tensor, dict, tuple]:
    """y, final state and the gradients of <y, w> + <state, v> for every input."""
    y, state = fn(*inputs)
    loss = (y * torch.randn(y.shape, generator=_gen(1), dtype=F64)).sum()
    for i, key in enumerate(sorted(state)):
        loss = (
            loss
            + (state[key] * torch.randn(state[key].shape, generator=_gen(2 + i), dtype=F64)).sum()
        )
    return y, state, torch.autograd.grad(loss, [t for t in inputs if t is not None])


@pytest.mark.parametrize(("trapezoidal", "rope", "rank"), KNOBS)
@pytest.mark.parametrize("signed", [False, True])
def test_chunked_scan_equals_reference_float64(
    trapezoidal: bool, rope: bool, rank: int, signed: bool
) -> None:
    inputs = scan_inputs(13, trapezoidal, rope, rank)  # 13: not a multiple of the chunk (4)
    y, state, grads = run_with_grads(lambda *a: mamba3_chunked(*a, signed, 4), inputs)
    y_ref, state_ref, grads_ref = run_with_grads(lambda *a: mamba3_ref(*a, signed), inputs)
    assert max_diff(y, y_ref) < 1e-10
    assert state.keys() == state_ref.keys()
    for key in state:
        assert state_diff(key, state[key], state_ref[key]) < 1e-10, key
    for i, (g, g_ref) in enumerate(zip(grads, grads_ref, strict=True)):
        assert max_diff(g, g_ref) < 1e-10, f"gradient of input {i}"


@pytest.mark.parametrize(("length", "chunk"), [(1, 4), (5, 16), (16, 8), (45, 4)])
def test_chunked_scan_edge_lengths(
    length: int, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Includes groups of chunks recomputed in the backward (45 steps: 12 chunks, 5 groups)."""
    monkeypatch.setattr(mamba3_scan, "CHECKPOINT_TOKENS", 2 * chunk)
    inputs = scan_inputs(length, True, True, 2, K=2)  # every pair rotated
    y, state, grads = run_with_grads(lambda *a: mamba3_chunked(*a, False, chunk), inputs)
    y_ref, state_ref, grads_ref = run_with_grads(lambda *a: mamba3_ref(*a, False), inputs)
    assert max_diff(y, y_ref) < 1e-10 and max_diff(state["ssm"], state_ref["ssm"]) < 1e-10
    assert max(max_diff(g, r) for g, r in zip(grads, grads_ref, strict=True)) < 1e-10


def test_rotary_state_is_a_complex_diagonal_transition() -> None:
    """Rotating B and C by the running angle equals a complex state turning by θ per step: the
    readout C̃_tᵀ B̃_s sees only the relative angle φ_t − φ_s."""
    g = _gen(4)
    B, C = torch.randn(6, 1, generator=g, dtype=F64), torch.randn(6, 1, generator=g, dtype=F64)
    phi_s, phi_t = torch.randn(3, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64)
    rotated = (rotate(C, phi_t).T @ rotate(B, phi_s)).item()
    b, c = torch.complex(B[0::2, 0], B[1::2, 0]), torch.complex(C[0::2, 0], C[1::2, 0])
    complex_readout = (c.conj() * b * torch.exp(1j * (phi_s - phi_t))).real.sum().item()
    assert abs(rotated - complex_readout) < 1e-12
    # with fewer angles than pairs (rope_fraction 0.5) the channels past them are untouched
    partial = rotate(B, phi_s[:1])
    assert torch.equal(partial[2:], B[2:]) and torch.equal(partial[:2], rotate(B[:2], phi_s[:1]))
    assert max_diff(partial[:2], B[:2]) > 1e-3


# -- the mixer -----------------------------------------------------------------------------------
# This code's earlier, unofficial parameterisation, kept as knobs for ablations.
EARLIER = {
    "angle_rate": "raw",
    "rope_fraction": 1.0,
    "data_dependent_A": False,
    "outproj_norm": True,
}
FORMS = {"official": {}, "earlier": EARLIER}


needs_kernels = pytest.mark.skipif(not native.available(), reason=f"{native.INFO.reason}")


@needs_kernels
@pytest.mark.parametrize(("trapezoidal", "rope"), list(itertools.product([True, False], repeat=2)))
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("length", [1, 37])  # 37: past two of the kernel's checkpoints (16)
def test_native_scan_equals_reference(
    trapezoidal: bool, rope: bool, signed: bool, length: int
) -> None:
    """The C kernel's form (float32) against the sequential loop (float64), outputs, every
    final-state entry and every input's gradient."""
    inputs = scan_inputs(length, trapezoidal, rope, 0, K=2)
    as32 = [None if t is None else t.detach().float().requires_grad_(True) for t in inputs]
    y, state, grads = run_with_grads(lambda *a: mamba3_native(*a, signed), as32)
    y_ref, state_ref, grads_ref = run_with_grads(lambda *a: mamba3_ref(*a, signed), inputs)
    assert max_diff(y.double(), y_ref) < 1e-4
    assert state.keys() == state_ref.keys()
    for key in state:
        assert state_diff(key, state[key].double(), state_ref[key]) < 1e-4, key
    for i, (g, g_ref) in enumerate(zip(grads, grads_ref, strict=True)):
        assert max_diff(g.double(), g_ref) < 1e-4 * max(1.0, float(g_ref.abs().max())), i


def build(trapezoidal: bool = True, rope: bool = True, rank: int = 0, **kw: object) -> Mamba3:
    torch.manual_seed(0)
    knobs = {"use_trapezoidal": trapezoidal, "use_rope": rope, "mimo_rank": rank}
    return Mamba3(D_MODEL, layer_idx=0, **(SMALL | knobs | kw))


def probe(batch: int, length: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(batch, length, D_MODEL, generator=_gen(3)).to(dtype)


@pytest.mark.parametrize(("trapezoidal", "rope", "rank"), KNOBS)
@pytest.mark.parametrize("form", sorted(FORMS))
def test_mixer_fast_path_equals_reference_with_same_weights(
    trapezoidal: bool, rope: bool, rank: int, form: str
) -> None:
    fast = build(trapezoidal, rope, rank, impl="torch", **FORMS[form]).double()
    ref = build(trapezoidal, rope, rank, impl="reference", **FORMS[form]).double()
    x = probe(2, 21, F64)  # 21: not a multiple of the chunk (8)
    (y_fast, s_fast), (y_ref, s_ref) = fast.prefill(x), ref.prefill(x)
    assert max_diff(y_fast, y_ref) < 1e-10
    for key in s_ref:
        assert state_diff(key, s_fast[key], s_ref[key]) < 1e-10, key
    w = torch.randn(y_ref.shape, generator=_gen(5), dtype=F64)
    (y_fast * w).sum().backward()
    (y_ref * w).sum().backward()
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert max_diff(p.grad, q.grad) < 1e-10, name


@needs_kernels
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("signed", [False, True])
def test_mixer_takes_the_c_kernel_for_siso_float32(form: str, signed: bool) -> None:
    """impl="auto" on the CPU: SISO float32 runs the C kernel (either sign of transition) and
    equals the reference loop with the same weights; MIMO stays on the PyTorch scan."""
    fast = build(impl="auto", allow_neg_eigval=signed, **FORMS[form])
    ref = build(impl="reference", allow_neg_eigval=signed, **FORMS[form])
    x = probe(2, 21)
    (y_fast, s_fast), (y_ref, s_ref) = fast.prefill(x), ref.prefill(x)
    assert fast.kernel_path == native.PATH_NATIVE
    assert max_diff(y_fast, y_ref) < 1e-4
    for key in s_ref:
        assert state_diff(key, s_fast[key], s_ref[key]) < 1e-4, key
    w = torch.randn(y_ref.shape, generator=_gen(5))
    (y_fast * w).sum().backward()
    (y_ref * w).sum().backward()
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert max_diff(p.grad, q.grad) < 1e-4 * max(1.0, float(q.grad.abs().max())), name
    mimo = build(rank=2, impl="auto", allow_neg_eigval=signed, **FORMS[form])
    mimo(x)
    assert mimo.kernel_path == cuda.PATH_TORCH


# -- the official recurrence, re-derived ---------------------------------------------------------
def official_mamba3(m: Mamba3, u: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """mamba-ssm's Mamba-3 layer (`modules/mamba3.py` with its step reference
    `mamba3_siso_step_ref` / `mamba3_MIMO_step_ref`), written out again from their equations
    as one plain loop over time, on `m`'s weights. Only the slicing of in_proj follows `m`'s
    layout; nothing else of our code is used. Knobs that the official layer lacks are read as
    their ablation: no trapezoid is λ ≡ 1, no rope is no rotation.

    Per token: A = −max(f(a), A_floor), Δ = softplus(δ + b); q, k = RMSNorm(C), RMSNorm(B) +
    biases; angle ← (angle + π tanh(θ) Δ) mod 2π; rotate pairs (2i, 2i+1), i < K, of q and k;
    S ← e^{AΔ} S + (1 − λ) Δ e^{AΔ} k_prev v_prevᵀ + λ Δ k vᵀ; y_r = S q_r + D v_r;
    SISO: y ⊙ SiLU(z); MIMO: v_r = x ⊙ w_x[r], Σ_r y_r ⊙ SiLU(z ⊙ w_z[r]) ⊙ w_o[r]."""
    assert m.angle_rate == "tanh_dt" and m.data_dependent_A and not m.outproj_norm
    b, L, _ = u.shape
    H, P, N, G, R, K = m.nheads, m.headdim, m.d_state, m.ngroups, m.rank, m.n_angles
    proj = u @ m.in_proj.weight.T
    if m.in_proj.bias is not None:
        proj = proj + m.in_proj.bias
    names = ["z", "x", "B", "C", "dt", "A", "angle", "trap"]
    parts = dict(zip(names, proj.split(m.split, dim=-1), strict=True))
    head_group = [h // (H // G) for h in range(H)]

    def rms(v: Tensor, weight: Tensor) -> Tensor:
        return v / torch.sqrt(v.pow(2).mean(-1, keepdim=True) + 1e-5) * weight

    def qk(raw: Tensor, norm: str, bias: str) -> Tensor:  # (b, G·R·N) -> (b, H, R, N)
        v = raw.reshape(b, G, R, N)
        if m.use_bc_norm:
            v = rms(v, getattr(m, norm).weight)
        v = v[:, head_group]
        return v + getattr(m, bias) if m.use_bc_bias else v

    def rot(v: Tensor, angle: Tensor) -> Tensor:  # v (b, H, R, N), angle (b, H, K)
        out = v.clone()
        for i in range(K):
            c, s_ = torch.cos(angle[:, :, i, None]), torch.sin(angle[:, :, i, None])
            out[..., 2 * i] = v[..., 2 * i] * c - v[..., 2 * i + 1] * s_
            out[..., 2 * i + 1] = v[..., 2 * i] * s_ + v[..., 2 * i + 1] * c
        return out

    angle = torch.zeros(b, H, K, dtype=u.dtype)
    S = torch.zeros(b, H, P, N, dtype=u.dtype)
    k_prev = torch.zeros(b, H, R, N, dtype=u.dtype)
    v_prev = torch.zeros(b, H, R, P, dtype=u.dtype)
    outs = []
    for t in range(L):
        dt = F.softplus(parts["dt"][:, t] + m.dt_bias)  # (b, H)
        a_in = parts["A"][:, t]
        A = -torch.clamp(torch.where(a_in >= 0, 1 + a_in, 1 / (1 - a_in)), min=m.A_floor)
        alpha = torch.exp(A * dt)
        lam = torch.sigmoid(parts["trap"][:, t]) if m.use_trapezoidal else torch.ones_like(dt)
        x = parts["x"][:, t].reshape(b, H, P)
        z = parts["z"][:, t].reshape(b, H, P)
        v = x[:, :, None, :] * m.mimo_x if m.mimo_rank else x[:, :, None, :]  # (b, H, R, P)
        q = qk(parts["C"][:, t], "C_norm", "C_bias")
        k = qk(parts["B"][:, t], "B_norm", "B_bias")
        if K:
            rate = torch.tanh(parts["angle"][:, t]) * math.pi  # (b, K), shared by the heads
            angle = torch.remainder(angle + rate[:, None, :] * dt[..., None], 2 * math.pi)
            q, k = rot(q, angle), rot(k, angle)
        prev = torch.einsum("bhrn,bhrp->bhpn", k_prev, v_prev)
        curr = torch.einsum("bhrn,bhrp->bhpn", k, v)
        S = (
            alpha[..., None, None] * S
            + ((1 - lam) * dt * alpha)[..., None, None] * prev
            + (lam * dt)[..., None, None] * curr
        )
        y = torch.einsum("bhpn,bhrn->bhrp", S, q) + m.D[None, :, None, None] * v
        if m.mimo_rank:
            y = (y * F.silu(z[:, :, None, :] * m.mimo_z) * m.mimo_o).sum(2)
        else:
            y = y[:, :, 0] * F.silu(z)
        outs.append(y.reshape(b, H * P))
        k_prev, v_prev = k, v
    y = torch.stack(outs, dim=1) @ m.out_proj.weight.T
    if m.out_proj.bias is not None:
        y = y + m.out_proj.bias
    state = {"ssm": S, "angle": angle, "k": k_prev, "v": v_prev}
    return y, state


@pytest.mark.parametrize(("trapezoidal", "rope", "rank"), KNOBS)
@pytest.mark.parametrize("impl", ["torch", "reference"])
def test_mixer_equals_the_official_recurrence_float64(
    trapezoidal: bool, rope: bool, rank: int, impl: str
) -> None:
    """Our chunked path and our step loop both equal the re-derived official layer in float64,
    on the same weights and inputs (groups < heads, half the pairs rotated). Weights are
    perturbed off their init (biases, D, MIMO maps) so that every term is exercised."""
    mixer = build(trapezoidal, rope, rank, impl=impl, bias=True).double()
    with torch.no_grad():
        for name, p in mixer.named_parameters():
            if "in_proj" not in name and "out_proj" not in name:
                p.add_(0.3 * torch.randn(p.shape, generator=_gen(7), dtype=F64))
    x = probe(2, 21, F64)
    y, state = mixer.prefill(x)
    y_ref, ref = official_mamba3(mixer, x)
    assert max_diff(y, y_ref) < 1e-10
    assert max_diff(state["ssm"], ref["ssm"]) < 1e-10
    if rope:
        assert angle_diff(state["angle"], ref["angle"]) < 1e-10
        assert float(ref["angle"].detach().abs().max()) > 0.1  # it did turn
    if trapezoidal:  # our x_prev / B_prev hold the official v / k state, rank last
        assert max_diff(state["B_prev"], ref["k"].transpose(-1, -2)) < 1e-10
        assert max_diff(state["x_prev"], ref["v"].transpose(-1, -2)) < 1e-10


def test_the_earlier_form_is_not_the_official_layer() -> None:
    """The re-derivation separates the forms: with the earlier knobs on the same weights where
    they coincide (in_proj rows, biases), the outputs differ, so the test above can fail."""
    official = build().double()
    earlier = build(**EARLIER).double()
    x = probe(2, 21, F64)
    y_ref, _ = official_mamba3(official, x)
    assert max_diff(official(x), y_ref) < 1e-10
    assert max_diff(earlier(x), y_ref) > 1e-3


@pytest.mark.parametrize(("trapezoidal", "rope", "rank"), KNOBS)
def test_decode_state_holds_exactly_what_the_knobs_need(
    trapezoidal: bool, rope: bool, rank: int
) -> None:
    mixer = build(trapezoidal, rope, rank)
    x = probe(2, 13)
    with torch.no_grad():
        y_fast, state_fast = mixer.prefill(x)
        y_steps, state_steps = prefill_by_steps(mixer, x)
    expected = {"ssm"} | ({"x_prev", "B_prev"} if trapezoidal else set())
    assert set(state_fast) == expected | ({"angle"} if rope else set())
    assert max_diff(y_fast, y_steps) < 1e-5
    for key in state_fast:
        assert state_fast[key].shape == state_steps[key].shape, key
        assert state_diff(key, state_fast[key], state_steps[key]) < 1e-5, key
    if rope:  # one angle per head and rotated pair: d_state 8 at rope_fraction 0.5 -> 2
        assert state_fast["angle"].shape == (2, mixer.nheads, 2)


def test_decoding_continues_a_prefilled_prompt() -> None:
    mixer = build(rank=2, allow_neg_eigval=True)
    x = probe(2, 24)
    with torch.no_grad():
        y_full = mixer(x)
        _, state = mixer.prefill(x[:, :10])
        for t in range(10, 24):
            y_t, state = mixer.step(x[:, t], state)
            assert max_diff(y_t, y_full[:, t]) < 1e-5, t


def test_decode_state_bytes_are_the_same_after_64_and_4096_tokens() -> None:
    from seqbench.architectures import LanguageModel, build_config

    mixer = build(rank=2)
    with torch.no_grad():
        sizes = {n: state_bytes(mixer.prefill(probe(1, n))[1]) for n in (64, 4096)}
    assert sizes[64] == sizes[4096] > 0
    for preset in ("mamba3", "hybrid3"):  # the hybrid's attention cache grows; its SSMs do not
        model = LanguageModel(build_config(preset, vocab_size=16, overrides={"d_model": 64}))
        with torch.no_grad():
            states = {
                n: model.eval().prefill(torch.zeros(1, n, dtype=torch.long))[1] for n in (64, 1024)
            }
        layers = range(model.config.n_layers)
        ssm = [i for i in layers if model.config.mixer_for_layer(i) == "mamba3"]
        sizes = {n: [state_bytes(s[i]) for i in ssm] for n, s in states.items()}
        assert sizes[64] == sizes[1024], preset


def test_negative_eigenvalues_reach_below_zero() -> None:
    """With allow_neg_eigval, α = 2 exp(ΔA) − 1: a large Δ|A| gives α near −1, so a state can
    flip sign each step (what parity needs); without it α stays in (0, 1]."""
    from seqbench.architectures.scans.mamba3_scan import transition

    a = torch.tensor([-20.0, -0.5, 0.0])
    assert torch.allclose(transition(a, True), torch.tensor([-1.0, 2 * torch.exp(a[1]) - 1, 1.0]))
    assert bool((transition(a, False) > 0).all())


def test_initialisation() -> None:
    mixer = build(rank=2)
    assert torch.equal(mixer.B_bias.detach(), torch.ones(mixer.nheads, 2, 8))
    assert torch.equal(mixer.C_bias.detach(), torch.ones(mixer.nheads, 2, 8))
    assert mixer.B_bias._no_weight_decay and mixer.C_bias._no_weight_decay
    # MIMO maps as mamba-ssm initialises them: x copies scaled 1/R, gates 1, output mean
    assert torch.equal(mixer.mimo_x.detach(), torch.full((mixer.nheads, 2, 4), 0.5))
    assert torch.equal(mixer.mimo_z.detach(), torch.ones(mixer.nheads, 2, 4))
    assert torch.equal(mixer.mimo_o.detach(), torch.full((mixer.nheads, 2, 4), 0.5))
    dt = F.softplus(mixer.dt_bias.detach())
    assert float(dt.min()) >= 1e-3 * (1 - 1e-5) and float(dt.max()) <= 1e-1 * (1 + 1e-5)
    bare = build(use_bc_norm=False, use_bc_bias=False)
    names = {n for n, _ in bare.named_parameters()}
    assert not names & {"B_bias", "C_bias", "B_norm.weight", "C_norm.weight"}
    assert not any("conv" in n for n in names)  # no short convolution in Mamba-3
    # official defaults: A from the input (no A_log), no output norm, half the pairs rotated
    assert not names & {"A_log", "norm.weight"} and bare.n_angles == 2
    earlier = {n for n, _ in build(**EARLIER).named_parameters()}
    assert {"A_log", "norm.weight"} <= earlier and build(**EARLIER).n_angles == 4


def test_data_dependent_A_is_heavy_tailed_and_floored() -> None:
    """A = −f(v), f(v) = 1 + v for v ≥ 0 and 1/(1 − v) below, never above −A_floor."""
    mixer = build(A_floor=0.01)
    v = torch.tensor([-1000.0, -3.0, -1.0, 0.0, 1.0, 2.5], dtype=F64)
    A = mixer._A(v, F64)
    expected = torch.tensor([-0.01, -0.25, -0.5, -1.0, -2.0, -3.5], dtype=F64)
    assert max_diff(A, expected) < 1e-12


def test_official_angle_is_bounded_by_pi_dt_and_the_earlier_one_is_raw() -> None:
    """π tanh(θ) Δ: a step turns by at most π Δ (none where Δ → 0); "raw" turns by θ."""
    theta = torch.tensor([[-50.0, 0.3], [2.0, 50.0]], dtype=F64)  # (2 tokens, K = 2)
    dt = torch.tensor([[0.5, 1e-6], [1.0, 2.0]], dtype=F64)  # (2 tokens, H = 2)
    omega = build()._omega(theta, dt)  # (2, H, K)
    assert omega.shape == (2, 2, 2)
    assert bool((omega.abs() <= torch.pi * dt[..., None] + 1e-12).all())
    assert abs(float(omega[1, 1, 1]) - 2 * torch.pi) < 1e-9  # saturated, Δ = 2: a full turn
    assert float(omega[0, 1].abs().max()) < 1e-5  # Δ ≈ 0: (almost) no turn
    raw = build(angle_rate="raw")._omega(theta, dt)
    assert torch.equal(raw, theta[:, None, :].expand(2, 2, 2))


def test_kernel_path_is_recorded_and_cuda_is_not_imported_for_cpu_tensors() -> None:
    already = "mamba_ssm" in sys.modules
    fast, ref = build(), build(impl="reference")
    fast(probe(1, 5))
    ref(probe(1, 5))
    # float32 on the CPU: the C kernel where it builds, else the PyTorch scan.
    expected = native.PATH_NATIVE if native.available() else cuda.PATH_TORCH
    assert fast.kernel_path == expected and ref.kernel_path == cuda.PATH_REFERENCE
    assert cuda.mamba3_siso_kernel(torch.zeros(1)) is None
    assert ("mamba_ssm" in sys.modules) == already


def test_cuda_kernel_is_chosen_only_where_it_computes_our_recurrence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mamba-ssm's SISO kernel turns by π tanh(θ) Δ itself and knows no signed transition or
    MIMO: only the official SISO form maps onto it; everything else falls back silently."""
    monkeypatch.setattr(cuda, "mamba3_siso_kernel", lambda u: "kernel")
    on_gpu = SimpleNamespace(is_cuda=True)  # all _cuda_kernel reads of its input
    assert build()._cuda_kernel(on_gpu) == "kernel"
    assert build(trapezoidal=False, rope=False, angle_rate="raw")._cuda_kernel(on_gpu) == "kernel"
    assert build(**EARLIER)._cuda_kernel(on_gpu) is None  # the raw angle
    for kw in ({"allow_neg_eigval": True}, {"rank": 2}, {"impl": "torch"}, {"d_state": 6}):
        assert build(**kw)._cuda_kernel(on_gpu) is None, kw
    assert build()._cuda_kernel(SimpleNamespace(is_cuda=False)) is None


def _mamba3_kernel_importable() -> bool:
    path = "mamba_ssm.ops.triton.mamba3.mamba3_siso_combined"
    return cuda._import(path, "mamba3_siso_combined") is not None


@pytest.mark.skipif(
    not torch.cuda.is_available() or not _mamba3_kernel_importable(),
    reason="needs CUDA and mamba-ssm with its Mamba-3 kernels (pip install -e '.[mamba]')",
)
@pytest.mark.parametrize(("trapezoidal", "rope"), [(True, True), (False, False)])
def test_mamba_ssm_kernel_agrees_with_the_torch_path(trapezoidal: bool, rope: bool) -> None:
    knobs = {"d_state": 16, "headdim": 16, "ngroups": 1, "chunk": 64}
    kernel = build(trapezoidal, rope, **knobs).cuda()
    torch_path = build(trapezoidal, rope, impl="torch", **knobs).cuda()
    x = probe(2, 128).cuda()
    y_kernel, state_kernel = kernel.prefill(x)
    y_torch, state_torch = torch_path.prefill(x)
    assert kernel.kernel_path == cuda.PATH_MAMBA_SSM
    assert max_diff(y_kernel, y_torch) < 1e-2
    for key in state_torch:
        assert max_diff(state_kernel[key], state_torch[key]) < 1e-2, key


# -- errors and presets --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"mimo_rank": -1}, "mimo_rank"),
        ({"mimo_rank": True}, "mimo_rank"),
        ({"use_rope": "yes"}, "use_rope"),
        ({"d_state": 1}, "d_state"),
        ({"rope_fraction": 0.25}, "rope_fraction"),
        ({"angle_rate": "linear"}, "angle_rate"),
        ({"A_floor": 0.0}, "A_floor"),
        ({"headdim": 5}, "headdim"),
        ({"impl": "cuda"}, "impl"),
        ({"A_init_range": (0.0, 1.0)}, "A_init_range"),
    ],
)
def test_bad_hyper_parameters_fail_in_one_line(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        Mamba3(32, layer_idx=0, **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("d_model", [64, 128])
def test_presets_are_within_5_percent_of_mha_at_every_suite_width(d_model: int) -> None:
    from seqbench.architectures import LanguageModel, build_config

    def params(name: str) -> int:
        config = build_config(name, vocab_size=64, overrides={"d_model": d_model})
        return LanguageModel(config).parameter_counts()["total"]

    mha = params("mha")
    for name in ("mamba3", "hybrid3"):
        assert abs(params(name) / mha - 1) <= 0.05, (name, params(name) / mha)


def test_preset_layouts() -> None:
    from seqbench.architectures import build_config

    hybrid = build_config("hybrid3", vocab_size=64)
    assert [hybrid.mixer_for_layer(i) for i in range(3)] == ["mamba3", "mamba3", "attention"]
    assert build_config("mamba3", vocab_size=64).ffn == "none" == hybrid.ffn
    ablated = build_config("mamba3", vocab_size=64, overrides={"mamba3.use_rope": False})
    assert ablated.mixer_kwargs["mamba3"]["use_rope"] is False


def test_the_official_form_is_part_of_every_run_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The presets write the knobs that changed from the earlier form into their recipe, so the
    resolved config (hashed into run_id, docs/records.md) differs from the earlier preset's:
    a record of the earlier model is never skipped-to as this one's."""
    from seqbench.architectures import PRESETS, build_config
    from seqbench.architectures.presets import MAMBA3_FORM
    from seqbench.harness.prepare import prepare
    from seqbench.harness.spec import RunSpec

    assert set(MAMBA3_FORM) == set(EARLIER)
    for preset in ("mamba3", "hybrid3"):
        kwargs = build_config(preset, vocab_size=64).mixer_kwargs["mamba3"]
        assert MAMBA3_FORM.items() <= kwargs.items(), preset
        built = Mamba3(64, **kwargs)  # the recorded values are the ones the mixer runs
        assert all(getattr(built, k) == v for k, v in MAMBA3_FORM.items())
    spec = RunSpec.from_dict({"arch": "mamba3", "task": "parity", "seq_len": 8, "steps": 1})
    now = prepare(spec).run_id
    earlier_recipe = {"mamba3": {"expand": 3.0, "d_state": 64}}  # the preset before issue 24
    monkeypatch.setattr(PRESETS.get("mamba3").config, "mixer_kwargs", earlier_recipe)
    assert prepare(spec).run_id != now


def test_state_tracking_suite_matches_the_issue() -> None:
    """parity and modular; mamba2, mamba3, mamba3 without rope, lru, mha; tested at 4x the
    training length; >= 3 seeds and >= 2 lrs per architecture (best lr chosen on validation)."""
    from seqbench.harness.suites import load_builtin

    specs = load_builtin("state_tracking").specs
    variants = {(s.arch, s.overrides.get("mamba3.use_rope", True)) for s in specs}
    assert variants == {
        ("mamba2", True), ("mamba3", True), ("mamba3", False), ("lru", True), ("mha", True),
    }  # fmt: skip
    assert {s.task for s in specs} == {"parity", "modular"}
    assert all(s.eval_lengths == [4 * s.seq_len] for s in specs)
    assert len({s.seed for s in specs}) >= 3 and len({s.lr for s in specs}) >= 2
