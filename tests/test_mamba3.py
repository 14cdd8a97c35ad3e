"""Mamba-3: the chunked scan against the sequential reference for every knob combination,
decoding (prefill == steps, fixed state size), the recorded kernel path, presets and errors.

The conformance gate (tests/test_conformance.py) covers shapes, causality, step == forward
and gradients of the registered mixer and of the `mamba3` / `hybrid3` presets.
"""

from __future__ import annotations

import itertools
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from seqbench.architectures.contract import prefill_by_steps, state_bytes
from seqbench.architectures.mamba3 import Mamba3
from seqbench.architectures.scans import cuda, mamba3_scan
from seqbench.architectures.scans.mamba3_scan import mamba3_chunked, mamba3_ref, rotate
from seqbench.errors import UserError

F64 = torch.float64
D_MODEL = 16
SMALL = {"d_state": 8, "headdim": 4, "ngroups": 2, "chunk": 8}
KNOBS = list(itertools.product([True, False], [True, False], [0, 2]))  # trapezoid, rope, rank


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def max_diff(a: Tensor, b: Tensor) -> float:
    return float((a - b).detach().abs().max())


def scan_inputs(
    length: int, trapezoidal: bool, rope: bool, rank: int, b: int = 2, H: int = 4, G: int = 2
) -> list[Tensor | None]:
    """Random scan inputs in float64: x (b, L, H, P, R), a, γ, β (b, L, H), B, C (b, L, H, N, R),
    θ (b, L, G, N/2); β and θ None when their knob is off."""
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
        2 * torch.randn(b, length, G, N // 2, generator=g, dtype=F64) if rope else None,
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
        assert max_diff(state[key], state_ref[key]) < 1e-10, key
    for i, (g, g_ref) in enumerate(zip(grads, grads_ref, strict=True)):
        assert max_diff(g, g_ref) < 1e-10, f"gradient of input {i}"


@pytest.mark.parametrize(("length", "chunk"), [(1, 4), (5, 16), (16, 8), (45, 4)])
def test_chunked_scan_edge_lengths(
    length: int, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Includes groups of chunks recomputed in the backward (45 steps: 12 chunks, 5 groups)."""
    monkeypatch.setattr(mamba3_scan, "CHECKPOINT_TOKENS", 2 * chunk)
    inputs = scan_inputs(length, True, True, 2)
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


# -- the mixer -----------------------------------------------------------------------------------
def build(trapezoidal: bool = True, rope: bool = True, rank: int = 0, **kw: object) -> Mamba3:
    torch.manual_seed(0)
    knobs = {"use_trapezoidal": trapezoidal, "use_rope": rope, "mimo_rank": rank}
    return Mamba3(D_MODEL, layer_idx=0, **(SMALL | knobs | kw))


def probe(batch: int, length: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(batch, length, D_MODEL, generator=_gen(3)).to(dtype)


@pytest.mark.parametrize(("trapezoidal", "rope", "rank"), KNOBS)
def test_mixer_fast_path_equals_reference_with_same_weights(
    trapezoidal: bool, rope: bool, rank: int
) -> None:
    fast = build(trapezoidal, rope, rank, impl="torch").double()
    ref = build(trapezoidal, rope, rank, impl="reference").double()
    x = probe(2, 21, F64)  # 21: not a multiple of the chunk (8)
    (y_fast, s_fast), (y_ref, s_ref) = fast.prefill(x), ref.prefill(x)
    assert max_diff(y_fast, y_ref) < 1e-10
    for key in s_ref:
        assert max_diff(s_fast[key], s_ref[key]) < 1e-10, key
    w = torch.randn(y_ref.shape, generator=_gen(5), dtype=F64)
    (y_fast * w).sum().backward()
    (y_ref * w).sum().backward()
    for (name, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert max_diff(p.grad, q.grad) < 1e-10, name


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
        assert max_diff(state_fast[key], state_steps[key]) < 1e-5, key


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
    assert torch.equal(mixer.B_bias.detach(), torch.ones(mixer.nheads, 8))
    assert torch.equal(mixer.C_bias.detach(), torch.ones(mixer.nheads, 8))
    assert mixer.B_bias._no_weight_decay and mixer.C_bias._no_weight_decay
    dt = F.softplus(mixer.dt_bias.detach())
    assert float(dt.min()) >= 1e-3 * (1 - 1e-5) and float(dt.max()) <= 1e-1 * (1 + 1e-5)
    bare = build(use_bc_norm=False, use_bc_bias=False)
    names = {n for n, _ in bare.named_parameters()}
    assert not names & {"B_bias", "C_bias", "B_norm.weight", "C_norm.weight"}
    assert not any("conv" in n for n in names)  # no short convolution in Mamba-3


def test_kernel_path_is_recorded_and_cuda_is_not_imported_for_cpu_tensors() -> None:
    already = "mamba_ssm" in sys.modules
    fast, ref = build(), build(impl="reference")
    fast(probe(1, 5))
    ref(probe(1, 5))
    assert fast.kernel_path == cuda.PATH_TORCH and ref.kernel_path == cuda.PATH_REFERENCE
    assert cuda.mamba3_siso_kernel(torch.zeros(1)) is None
    assert ("mamba_ssm" in sys.modules) == already


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
        ({"d_state": 7}, "d_state"),
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
