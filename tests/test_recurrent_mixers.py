"""Mamba-1, Mamba-2 and LRU as mixers: fast path == reference, decoding, state size, init.

The conformance gate (tests/test_conformance.py) already checks shapes, causality, step ==
forward and gradients for every registered mixer; these tests cover what is specific to the
recurrent ones: the fast training path against the sequential reference with identical
weights, prefill against stepping, constant decode memory, the initialisation ranges the
papers prescribe, the recorded kernel path and the one-line errors.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqbench.architectures.contract import prefill_by_steps, state_bytes
from seqbench.architectures.lru import LRU
from seqbench.architectures.mamba import Mamba
from seqbench.architectures.mamba2 import Mamba2
from seqbench.architectures.scans import cuda, native
from seqbench.architectures.scans.conv import conv_silu
from seqbench.errors import UserError

D_MODEL = 16
SMALL = {
    "mamba": (Mamba, {"d_state": 4, "chunk": 8}),
    "mamba2": (Mamba2, {"d_state": 8, "headdim": 8, "ngroups": 2, "chunk": 8}),
    "lru": (LRU, {"d_state": 8, "chunk": 8}),
}
NAMES = list(SMALL)


def build(name: str, **overrides: object) -> nn.Module:
    cls, kwargs = SMALL[name]
    torch.manual_seed(0)
    return cls(D_MODEL, layer_idx=0, **(kwargs | overrides))


def probe(batch: int, length: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(batch, length, D_MODEL, generator=gen).to(dtype)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max())


@pytest.mark.parametrize("name", NAMES)
def test_fast_path_equals_reference_with_same_weights(name: str) -> None:
    fast, ref = build(name, impl="torch").double(), build(name, impl="reference").double()
    x = probe(2, 21, torch.float64)  # 21: not a multiple of the chunk (8)
    y_fast, y_ref = fast(x), ref(x)
    assert max_diff(y_fast, y_ref) < 1e-10
    w = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (y_fast * w).sum().backward()
    (y_ref * w).sum().backward()
    for (pname, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert max_diff(p.grad, q.grad) < 1e-9, pname


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("length", [2, 13])  # 2 < d_conv - 1: a conv window still zero-padded
def test_prefill_state_equals_stepped_state(name: str, length: int) -> None:
    mixer = build(name)
    x = probe(2, length)
    with torch.no_grad():
        y_fast, state_fast = mixer.prefill(x)
        y_steps, state_steps = prefill_by_steps(mixer, x)
    assert max_diff(y_fast, y_steps) < 1e-5
    assert state_fast.keys() == state_steps.keys()
    for key in state_fast:
        assert state_fast[key].shape == state_steps[key].shape, key
        assert state_fast[key].dtype == state_steps[key].dtype, key
        assert max_diff(state_fast[key], state_steps[key]) < 1e-5, key


@pytest.mark.parametrize("name", NAMES)
def test_decoding_continues_a_prefilled_prompt(name: str) -> None:
    mixer = build(name)
    x = probe(2, 24)
    with torch.no_grad():
        y_full = mixer(x)
        _, state = mixer.prefill(x[:, :10])
        for t in range(10, 24):
            y_t, state = mixer.step(x[:, t], state)
            assert max_diff(y_t, y_full[:, t]) < 1e-5, t


@pytest.mark.parametrize("name", NAMES)
def test_decode_state_bytes_do_not_grow_with_tokens(name: str) -> None:
    mixer = build(name)
    with torch.no_grad():
        sizes = {n: state_bytes(mixer.prefill(probe(1, n))[1]) for n in (64, 1024)}
    assert sizes[64] == sizes[1024] > 0


def test_model_decode_state_is_the_same_after_64_and_1024_tokens() -> None:
    from seqbench.architectures import LanguageModel, build_config

    for preset in ("mamba", "mamba2", "lru"):
        config = build_config(preset, vocab_size=16, overrides={"d_model": 64})
        model = LanguageModel(config).eval()
        with torch.no_grad():
            sizes = {
                n: state_bytes(model.prefill(torch.zeros(1, n, dtype=torch.long))[1])
                for n in (64, 1024)
            }
        assert sizes[64] == sizes[1024] > 0, preset


@pytest.mark.parametrize("name", NAMES)
def test_kernel_path_is_recorded(name: str) -> None:
    fast, ref = build(name), build(name, impl="reference")
    fast(probe(1, 5))
    ref(probe(1, 5))
    # float32 on the CPU: the C kernel where it builds, else the PyTorch scan.
    expected = native.PATH_NATIVE if native.available() else cuda.PATH_TORCH
    assert fast.kernel_path == expected
    assert ref.kernel_path == cuda.PATH_REFERENCE


def test_cuda_kernels_are_not_looked_up_for_cpu_tensors() -> None:
    already = "mamba_ssm" in sys.modules
    x = torch.zeros(1)
    assert cuda.selective_scan_kernel(x) is None
    assert cuda.causal_conv1d_kernel(x) is None
    assert cuda.ssd_kernel(x) is None
    assert ("mamba_ssm" in sys.modules) == already  # nothing was imported


# The mamba-ssm entry point each preset's fast path uses on CUDA.
MAMBA_SSM_KERNELS = {
    "mamba": ("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn"),  # compiled
    "mamba2": ("mamba_ssm.ops.triton.ssd_combined", "mamba_chunk_scan_combined"),  # Triton
}


@pytest.mark.parametrize("name", ["mamba", "mamba2"])
def test_mamba_ssm_kernels_agree_with_the_torch_path(name: str) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    if cuda._import(*MAMBA_SSM_KERNELS[name]) is None:
        pytest.skip(f"needs mamba-ssm's {MAMBA_SSM_KERNELS[name][1]} (docs/gpu.md)")
    kernel, torch_path = build(name).cuda(), build(name, impl="torch").cuda()
    x = probe(2, 64).cuda()
    y_kernel, state_kernel = kernel.prefill(x)
    y_torch, state_torch = torch_path.prefill(x)
    assert kernel.kernel_path == cuda.PATH_MAMBA_SSM
    assert max_diff(y_kernel, y_torch) < 1e-3
    assert max_diff(state_kernel["ssm"], state_torch["ssm"]) < 1e-3


# -- initialisation ------------------------------------------------------------------------------
def test_mamba_init_dt_range_and_s4d_real_a() -> None:
    torch.manual_seed(0)
    mixer = Mamba(64, d_state=8)
    dt = F.softplus(mixer.dt_proj.bias.detach())
    assert float(dt.min()) >= 1e-3 * (1 - 1e-5) and float(dt.max()) <= 1e-1 * (1 + 1e-5)
    assert float(dt.max()) / float(dt.min()) > 10  # spread over the decades, not one value
    A = -torch.exp(mixer.A_log.detach())
    assert torch.allclose(A, -torch.arange(1.0, 9.0).expand(mixer.d_inner, 8))
    assert mixer.dt_rank == math.ceil(64 / 16) and mixer.d_inner == 128
    narrow = Mamba(64, dt_min=0.01, dt_max=0.02)
    dt = F.softplus(narrow.dt_proj.bias.detach())
    assert float(dt.min()) >= 0.01 * (1 - 1e-5) and float(dt.max()) <= 0.02 * (1 + 1e-5)


def test_mamba2_init_dt_and_a_ranges() -> None:
    torch.manual_seed(0)
    mixer = Mamba2(64, headdim=8, A_init_range=(2.0, 4.0))
    dt = F.softplus(mixer.dt_bias.detach())
    assert float(dt.min()) >= 1e-3 * (1 - 1e-5) and float(dt.max()) <= 1e-1 * (1 + 1e-5)
    A = torch.exp(mixer.A_log.detach())
    assert float(A.min()) >= 2.0 - 1e-5 and float(A.max()) <= 4.0 + 1e-5
    assert mixer.nheads == 128 // 8


@pytest.mark.parametrize(
    ("r_min", "r_max", "max_phase"), [(0.9, 0.999, 2 * math.pi), (0.0, 0.5, 0.3)]
)
def test_lru_ring_initialisation(r_min: float, r_max: float, max_phase: float) -> None:
    torch.manual_seed(0)
    mixer = LRU(32, d_state=256, r_min=r_min, r_max=r_max, max_phase=max_phase)
    with torch.no_grad():
        lam = torch.exp(mixer.log_lambda())
        radius, phase = lam.abs(), torch.exp(mixer.theta_log)
        gamma = torch.exp(mixer.gamma_log)
    assert float(radius.min()) >= r_min - 1e-6 and float(radius.max()) <= r_max + 1e-6
    assert float(phase.min()) >= 0 and float(phase.max()) <= max_phase + 1e-6
    assert torch.allclose(gamma, torch.sqrt(1 - radius**2), atol=1e-5)


# -- negative eigenvalues (allow_neg_eigval; Grazzi et al. 2025) on mamba and mamba2 ------------
# Mamba-1's small test size (A = -1..-4, Δ <= 0.1 at init) keeps every α > 0.3, so its Δ
# range is widened here: ΔA then reaches -2 and some α < 0 (asserted below).
SIGNED = {"mamba": {"dt_min": 0.05, "dt_max": 0.5}, "mamba2": {}}
UNSIGNED_KERNELS = {  # name -> (the CUDA kernel lookup in `cuda`, the unsigned C kernel or None)
    "mamba": ("selective_scan_kernel", "selective_scan_native"),
    "mamba2": ("ssd_kernel", None),  # its C kernel takes the transition α itself: either sign
}


def _transitions(mixer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every α_t = 2 exp(Δ_t A) − 1 the signed mixer applies to input x: per head (mamba2) or
    per channel and state (mamba)."""
    if isinstance(mixer, Mamba2):
        _, _, dt_raw = mixer._split_in(x)
        a = F.softplus(dt_raw + mixer.dt_bias) * mixer._A(x.dtype)  # (B, L, H)
    else:
        u_raw, _ = mixer.in_proj(x).chunk(2, dim=-1)
        delta = mixer._ssm_inputs(conv_silu(mixer.conv, u_raw, fused=False))[0]
        a = delta[..., None] * mixer._A(x.dtype)  # (B, L, D, N)
    return 2 * torch.exp(a) - 1


@pytest.mark.parametrize("name", list(SIGNED))
def test_negative_eigenvalues_fast_path_equals_reference(name: str) -> None:
    fast = build(name, impl="torch", allow_neg_eigval=True, **SIGNED[name]).double()
    ref = build(name, impl="reference", allow_neg_eigval=True, **SIGNED[name]).double()
    x = probe(2, 21, torch.float64)  # 21: not a multiple of the chunk (8)
    with torch.no_grad():
        alpha = _transitions(fast, x)
    assert bool((alpha < 0).any()), "no negative transition: the test would not see the knob"
    (y_fast, S_fast), (y_ref, S_ref) = fast.prefill(x), ref.prefill(x)
    assert max_diff(y_fast, y_ref) < 1e-10
    assert max_diff(S_fast["ssm"], S_ref["ssm"]) < 1e-10
    w = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (y_fast * w).sum().backward()
    (y_ref * w).sum().backward()
    for (pname, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert max_diff(p.grad, q.grad) < 1e-10, pname
    # same weights, knob off: a different function (the knob is not ignored).
    plain = build(name, impl="torch", **SIGNED[name]).double()
    assert max_diff(plain(x), y_fast) > 1e-3


@pytest.mark.parametrize("name", list(SIGNED))
def test_negative_eigenvalues_decode_equals_forward(name: str) -> None:
    mixer = build(name, allow_neg_eigval=True, **SIGNED[name])
    x = probe(2, 24)
    with torch.no_grad():
        y_full, state_full = mixer.prefill(x)
        y_steps, state_steps = prefill_by_steps(mixer, x)
        _, state = mixer.prefill(x[:, :10])
        for t in range(10, 24):
            y_t, state = mixer.step(x[:, t], state)
            assert max_diff(y_t, y_full[:, t]) < 1e-5, t
    assert max_diff(y_full, y_steps) < 1e-5
    assert max_diff(state_full["ssm"], state_steps["ssm"]) < 1e-5


@pytest.mark.parametrize("name", list(SIGNED))
def test_negative_eigenvalues_never_take_the_unsigned_kernels(name: str, monkeypatch) -> None:
    """mamba-ssm's kernels (and Mamba-1's C kernel) compute exp(ΔA): with the knob, impl="auto"
    must not run them even where they are available. Here they are made "available" and fail
    when called; Mamba-2's C kernel, which takes α itself, is the one kernel left to run."""
    module = sys.modules[SMALL[name][0].__module__]
    cuda_lookup, native_fn = UNSIGNED_KERNELS[name]

    def unsigned_kernel(*args: object, **kwargs: object) -> None:
        raise AssertionError("the unsigned kernel ran with allow_neg_eigval")

    monkeypatch.setattr(module.cuda, cuda_lookup, lambda t: unsigned_kernel)
    x = probe(1, 9)
    with pytest.raises(AssertionError, match="unsigned kernel"):  # the patch does bite
        build(name)(x)
    if native_fn is not None:
        monkeypatch.setattr(module.native, "usable", lambda *t: True)
        monkeypatch.setattr(module, native_fn, unsigned_kernel)
        monkeypatch.setattr(module.cuda, cuda_lookup, lambda t: None)
        with pytest.raises(AssertionError, match="unsigned kernel"):  # the C one too
            build(name)(x)
        monkeypatch.setattr(module.cuda, cuda_lookup, lambda t: unsigned_kernel)
    signed = build(name, allow_neg_eigval=True)
    y = signed(x)
    c_kernel = native_fn is None and native.available()
    assert signed.kernel_path == (native.PATH_NATIVE if c_kernel else cuda.PATH_TORCH)
    monkeypatch.undo()
    ref = build(name, impl="reference", allow_neg_eigval=True)
    assert max_diff(y, ref(x)) < 1e-5


@pytest.mark.skipif(not native.available(), reason=f"{native.INFO.reason}")
def test_signed_mamba2_on_the_c_kernel_equals_reference() -> None:
    """Gradients too: the C kernel's α gradient carried back through 2 exp(ΔA) − 1."""
    fast = build("mamba2", allow_neg_eigval=True, **SIGNED["mamba2"])
    ref = build("mamba2", impl="reference", allow_neg_eigval=True, **SIGNED["mamba2"])
    x = probe(2, 21)
    with torch.no_grad():
        assert bool((_transitions(fast, x) < 0).any()), "no negative transition"
    y_fast, y_ref = fast(x), ref(x)
    assert fast.kernel_path == native.PATH_NATIVE
    assert max_diff(y_fast, y_ref) < 1e-5
    w = torch.randn(y_ref.shape, generator=torch.Generator().manual_seed(5))
    (y_fast * w).sum().backward()
    (y_ref * w).sum().backward()
    for (pname, p), q in zip(fast.named_parameters(), ref.parameters(), strict=True):
        assert max_diff(p.grad, q.grad) < 1e-4 * max(1.0, float(q.grad.abs().max())), pname


@pytest.mark.parametrize("name", list(SIGNED))
def test_negative_eigenvalues_pass_the_conformance_gate(name: str) -> None:
    from seqbench.architectures.conformance import check_sequence_mixer

    cls = SMALL[name][0]
    report = check_sequence_mixer(
        lambda: cls(64, layer_idx=0, allow_neg_eigval=True), f"{name}[allow_neg_eigval]"
    )
    assert report.passed, report.format()
    assert report.state_bytes[64] == report.state_bytes[256] > 0


# -- one-line errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "kwargs", "fragment"),
    [
        (Mamba, {"d_state": 0}, "d_state"),
        (Mamba, {"expand": -1}, "expand"),
        (Mamba, {"dt_min": 0.2, "dt_max": 0.1}, "dt_min"),
        (Mamba, {"dt_rank": 0}, "dt_rank"),
        (Mamba, {"impl": "cuda"}, "impl"),
        (Mamba, {"chunk": 0}, "chunk"),
        (Mamba, {"allow_neg_eigval": "yes"}, "allow_neg_eigval"),
        (Mamba2, {"headdim": 7}, "headdim"),
        (Mamba2, {"ngroups": 3, "headdim": 8}, "ngroups"),
        (Mamba2, {"A_init_range": (0.0, 1.0)}, "A_init_range"),
        (Mamba2, {"A_init_range": "wide"}, "A_init_range"),
        (Mamba2, {"allow_neg_eigval": 1}, "allow_neg_eigval"),
        (LRU, {"r_min": 0.9, "r_max": 0.5}, "r_min"),
        (LRU, {"max_phase": 0.0}, "max_phase"),
        (LRU, {"d_state": -3}, "d_state"),
    ],
)
def test_bad_hyper_parameters_fail_in_one_line(cls: type, kwargs: dict, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        cls(32, layer_idx=0, **kwargs)
    message = str(info.value)
    assert fragment in message and "\n" not in message


# -- presets -------------------------------------------------------------------------------------
def test_recurrent_presets_are_sized_like_mha() -> None:
    from seqbench.architectures import LanguageModel, build_config

    def params(name: str) -> int:
        return LanguageModel(build_config(name, vocab_size=64)).parameter_counts()["total"]

    mha = params("mha")
    for name in ("mamba", "mamba2", "lru", "hybrid"):
        assert abs(params(name) / mha - 1) < 0.1, name


def test_recurrent_preset_layouts() -> None:
    from seqbench.architectures import build_config

    hybrid = build_config("hybrid", vocab_size=64)
    assert hybrid.n_layers == 3
    assert [hybrid.mixer_for_layer(i) for i in range(3)] == ["mamba", "mamba", "attention"]
    assert build_config("mamba", vocab_size=64).ffn == "none"  # as in the Mamba papers
    assert build_config("mamba2", vocab_size=64).ffn == "none"
    assert build_config("lru", vocab_size=64).ffn == "swiglu"  # the LRU paper's MLP
    with pytest.raises(UserError, match="d_state"):
        build_config("mamba", vocab_size=64, overrides={"mamba.d_stat": 4})
