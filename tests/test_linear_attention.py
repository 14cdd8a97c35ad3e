"""The linear-attention family: chunked kernels and whole mixers against their sequential
references (float64, 1e-10, outputs and every gradient), decoding, constant state, presets.

Lengths that are not multiples of the chunk, a chunk longer than the sequence and a single
step are included: padding and the last partial chunk are where chunked code goes wrong.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures import MIXERS, LanguageModel, ModelConfig, build_config, state_bytes
from seqbench.architectures.conformance import check_sequence_mixer
from seqbench.architectures.gla import LOG_ALPHA_FLOOR
from seqbench.architectures.linear_parts import feature_map
from seqbench.architectures.model import count_parameters
from seqbench.architectures.retnet import retention_log_decay
from seqbench.architectures.scans.chunked_linear import (
    delta_rule_chunked,
    delta_rule_ref,
    linear_attention_chunked,
    linear_attention_ref,
)
from seqbench.errors import UserError

F64 = torch.float64
FAMILY = ("linear_attention", "retnet", "gla", "deltanet", "gated_deltanet")
SHAPES = [(1, 4), (5, 8), (37, 8), (32, 16)]  # (length, chunk)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _max_err(a: Tensor, b: Tensor) -> float:
    return float((a - b).detach().abs().max())


def _grads(fn, inputs: list[Tensor]) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
    """Output, final state and the gradients of <y, w> + sum(S) for a fixed random w."""
    y, S = fn(*inputs)
    w = torch.randn(y.shape, generator=_gen(1), dtype=y.dtype)
    return y, S, torch.autograd.grad((y * w).sum() + S.sum(), inputs)


def _kernel_inputs(length: int, gate: str | None, beta_max: float = 1.0) -> list[Tensor]:
    g = _gen(0)
    b, h, dk, dv = 2, 3, 5, 4
    q, k = (torch.randn(b, h, length, dk, generator=g, dtype=F64) for _ in range(2))
    v = torch.randn(b, h, length, dv, generator=g, dtype=F64)
    inputs = [q, k, v]
    if gate == "delta":
        inputs.append(beta_max * torch.rand(b, h, length, generator=g, dtype=F64))  # β
    elif gate is not None:
        width = dk if gate == "vector" else 1
        inputs.append(-F.softplus(torch.randn(b, h, length, width, generator=g, dtype=F64)))
    return [t.requires_grad_(True) for t in inputs]


@pytest.mark.parametrize(("length", "chunk"), SHAPES)
@pytest.mark.parametrize("gate", [None, "scalar", "vector"])
def test_linear_attention_kernel_equals_reference(length: int, chunk: int, gate: str) -> None:
    inputs = _kernel_inputs(length, gate)
    y, S, grads = _grads(lambda *a: linear_attention_chunked(*a, chunk=chunk), inputs)
    y_ref, S_ref, grads_ref = _grads(linear_attention_ref, inputs)
    assert _max_err(y, y_ref) <= 1e-10 and _max_err(S, S_ref) <= 1e-10
    for name, a, b in zip("qkvg", grads, grads_ref, strict=False):
        assert _max_err(a, b) <= 1e-10, f"gradient of {name}"


@pytest.mark.parametrize(("length", "chunk"), SHAPES)
@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("beta_max", [1.0, 2.0])  # 2: allow_neg_eigval's range
def test_delta_rule_kernel_equals_reference(
    length: int, chunk: int, gated: bool, beta_max: float
) -> None:
    q, k, v, beta = _kernel_inputs(length, "delta", beta_max)
    if beta_max > 1 and length > 1:
        assert float(beta.detach().max()) > 1  # some steps have a negative eigenvalue
    g = -F.softplus(torch.randn(beta.shape, generator=_gen(3), dtype=F64)).requires_grad_(True)
    inputs = [q, k, v, beta] + ([g] if gated else [])

    def run(kernel, *args):  # keys L2-normalised, as the delta rule needs
        return kernel(args[0], F.normalize(args[1], dim=-1), *args[2:])

    y, S, grads = _grads(lambda *a: run(lambda *b: delta_rule_chunked(*b, chunk=chunk), *a), inputs)
    y_ref, S_ref, grads_ref = _grads(lambda *a: run(delta_rule_ref, *a), inputs)
    assert _max_err(y, y_ref) <= 1e-10 and _max_err(S, S_ref) <= 1e-10
    for name, a, b in zip(["q", "k", "v", "beta", "g"], grads, grads_ref, strict=False):
        assert _max_err(a, b) <= 1e-10, f"gradient of {name}"


def _pair(name: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    """The mixer's chunked and reference paths with identical float64 weights."""
    torch.manual_seed(0)
    cls = MIXERS.get(name)
    fast = cls(16, impl="chunked", **kwargs).double()
    ref = cls(16, impl="reference", **{k: v for k, v in kwargs.items() if k != "chunk"}).double()
    ref.load_state_dict(fast.state_dict())
    return fast, ref


MIXER_CASES = [(n, {}) for n in FAMILY] + [
    ("deltanet", {"allow_neg_eigval": True}),
    ("gated_deltanet", {"allow_neg_eigval": True}),
    ("linear_attention", {"feature_map": "taylor2", "feature_dim": 3}),
    ("linear_attention", {"feature_map": "relu", "normalize": False}),
    ("linear_attention", {"feature_map": "taylor2", "feature_dim": 3, "d_conv": 4}),
    ("linear_attention", {"d_conv": 4}),
]


@pytest.mark.parametrize(("name", "kwargs"), MIXER_CASES, ids=lambda c: str(c))
def test_mixer_chunked_equals_reference_float64(name: str, kwargs: dict) -> None:
    """Outputs, the input's gradient and every parameter's gradient, length 21 with chunk 8."""
    fast, ref = _pair(name, chunk=8, **kwargs)
    x = torch.randn(2, 21, 16, generator=_gen(2), dtype=F64)
    w = torch.randn(2, 21, 16, generator=_gen(3), dtype=F64)
    results = []
    for module in (fast, ref):
        xi = x.clone().requires_grad_(True)
        y = module(xi)
        grads = torch.autograd.grad((y * w).sum(), [xi, *module.parameters()])
        results.append((y, grads))
    (y, grads), (y_ref, grads_ref) = results
    assert _max_err(y, y_ref) <= 1e-10
    names = ["input"] + [n for n, _ in fast.named_parameters()]
    for pname, a, b in zip(names, grads, grads_ref, strict=True):
        assert _max_err(a, b) <= 1e-10, f"gradient of {pname}"
    assert fast.kernel_path == "torch-scan" and ref.kernel_path == "torch-reference"


@pytest.mark.parametrize("prompt", [2, 6])  # 2 < d_conv - 1: a conv window still zero-padded
@pytest.mark.parametrize(("name", "kwargs"), MIXER_CASES, ids=lambda c: str(c))
def test_step_and_prefill_equal_forward(name: str, kwargs: dict, prompt: int) -> None:
    """Decoding token by token after a prefilled prompt continues the forward pass exactly."""
    fast, _ = _pair(name, chunk=4, **kwargs)
    x = torch.randn(2, 13, 16, generator=_gen(4), dtype=F64)
    y = fast(x)
    y_pre, state = fast.prefill(x[:, :prompt])
    outs = [y_pre]
    for t in range(prompt, 13):
        y_t, state = fast.step(x[:, t], state)
        outs.append(y_t[:, None])
    assert _max_err(torch.cat(outs, dim=1), y) <= 1e-10


STATE_CASES = [(n, {}) for n in FAMILY] + [("linear_attention", {"d_conv": 4})]


@pytest.mark.parametrize(("name", "kwargs"), STATE_CASES, ids=lambda c: str(c))
def test_state_bytes_do_not_grow_with_context(name: str, kwargs: dict) -> None:
    mixer = MIXERS.get(name)(16, impl="chunked", **kwargs)
    with torch.no_grad():
        sizes = {n: state_bytes(mixer.prefill(torch.randn(1, n, 16))[1]) for n in (64, 4096)}
    assert sizes[64] == sizes[4096] > 0


def test_short_convs_are_optional_and_carried_in_the_decode_state() -> None:
    """d_conv 0 is the plain layer (no conv parameters, S only); d_conv 4 adds three depthwise
    convs and their windows of the last 3 inputs, and makes the layer order-aware: a causal sum
    of φ(k) vᵀ alone cannot tell which of two tokens came first."""
    plain, conv = (MIXERS.get("linear_attention")(16, d_conv=w).double() for w in (0, 4))
    extra = sum(p.numel() for p in conv.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == 3 * 16 * 4  # q, k, v: 16 channels each, width 4, no bias
    assert set(plain.init_state(2, device="cpu", dtype=F64)) == {"S"}
    state = conv.init_state(2, device="cpu", dtype=F64)
    assert set(state) == {"S", "conv_q", "conv_k", "conv_v"}
    assert state["conv_k"].shape == (2, 16, 3)
    x = torch.randn(1, 6, 16, generator=_gen(9), dtype=F64)
    swapped = x[:, [1, 0, 2, 3, 4, 5]]  # the first two tokens swapped
    with torch.no_grad():
        assert _max_err(plain(x)[:, 2:], plain(swapped)[:, 2:]) <= 1e-12
        assert _max_err(conv(x)[:, 2:], conv(swapped)[:, 2:]) > 1e-3


def test_linear_attention_with_short_convs_passes_the_conformance_gate() -> None:
    cls = MIXERS.get("linear_attention")
    report = check_sequence_mixer(lambda: cls(64, layer_idx=0, d_conv=4), "linear_attention")
    assert report.passed, report.format()
    assert report.state_bytes[64] == report.state_bytes[256] > 0


def test_taylor2_feature_map_is_second_order_exp() -> None:
    q, k = torch.randn(2, 10, 6, generator=_gen(5), dtype=F64).unbind(0)
    s = (q * k).sum(-1) / 6**0.5
    dot = (feature_map("taylor2", q) * feature_map("taylor2", k)).sum(-1)
    assert _max_err(dot, 1 + s + s**2 / 2) <= 1e-12
    assert feature_map("taylor2", q).shape[-1] == 1 + 6 + 36


def test_retnet_decays_are_the_papers() -> None:
    gamma = torch.exp(retention_log_decay(4))
    assert torch.allclose(
        gamma, torch.tensor([1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128, 1 - 1 / 256], dtype=F64)
    )


def test_gla_float32_stays_finite_at_the_decay_floor() -> None:
    """The strongest decays the gate allows keep the chunked path's exponentials in range."""
    gla = MIXERS.get("gla")(16, chunk=32)
    with torch.no_grad():
        gla.gk_up.bias.fill_(-1e4)  # log α at the floor everywhere
    x = torch.randn(2, 70, 16, generator=_gen(6), requires_grad=True)
    y = gla(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    alpha = F.logsigmoid(gla.gk_up(gla.gk_down(x))) / gla.temperature
    assert float(alpha.detach().min()) < LOG_ALPHA_FLOOR
    ref = copy.deepcopy(gla)
    ref.impl = "reference"
    assert _max_err(gla(x), ref(x)) <= 1e-4


def test_float32_chunked_close_to_reference() -> None:
    cases = [(n, {}) for n in FAMILY] + [
        (n, {"allow_neg_eigval": True}) for n in ("deltanet", "gated_deltanet")
    ]
    for name, kwargs in cases:
        torch.manual_seed(0)
        fast = MIXERS.get(name)(32, **kwargs)
        ref = copy.deepcopy(fast)
        ref.impl = "reference"
        x = torch.randn(2, 100, 32, generator=_gen(7))
        assert _max_err(fast(x), ref(x)) <= 1e-4, (name, kwargs)


@pytest.mark.parametrize("chunk", [4, 64])
def test_delta_rule_with_beta_two_reflects_the_state_across_chunks(chunk: int) -> None:
    """β = 2 makes I − β k kᵀ the reflection through k's orthogonal plane (eigenvalue −1 along
    k, Grazzi et al.): a value written once along k at t = 0 is read back with sign (−1)^t,
    through every chunk boundary of the WY/UT form, never decaying."""
    L, dk, dv = 23, 4, 3
    k = F.normalize(torch.randn(dk, generator=_gen(8), dtype=F64), dim=0)
    keys = k.expand(1, 1, L, dk)
    v = torch.zeros(1, 1, L, dv, dtype=F64)
    v[..., 0, :] = torch.randn(dv, generator=_gen(9), dtype=F64)
    beta = torch.full((1, 1, L), 2.0, dtype=F64)
    y, S = delta_rule_chunked(keys, keys, v, beta, chunk=chunk)
    signs = torch.tensor([(-1.0) ** t for t in range(L)], dtype=F64)
    expected = 2 * signs[:, None] * v[0, 0, 0]  # S_1 = β k v₀ᵀ, then reflected every step
    assert _max_err(y[0, 0], expected) <= 1e-10
    assert _max_err(S[0, 0], signs[-1] * 2 * torch.outer(k, v[0, 0, 0])) <= 1e-10
    y_ref, _ = delta_rule_ref(keys, keys, v, beta)
    assert _max_err(y, y_ref) <= 1e-10


@pytest.mark.parametrize("name", ["deltanet", "gated_deltanet"])
def test_allow_neg_eigval_doubles_beta_and_passes_the_gate(name: str) -> None:
    """β = 2 σ(W_β x) ∈ (0, 2) with the knob, σ(W_β x) without; same parameters either way;
    and the mixer with the knob on passes the conformance gate."""
    torch.manual_seed(0)
    plain = MIXERS.get(name)(16)
    torch.manual_seed(0)
    signed = MIXERS.get(name)(16, allow_neg_eigval=True)
    assert signed.state_dict().keys() == plain.state_dict().keys()
    with torch.no_grad():
        signed.b_proj.bias.fill_(3.0)  # σ = 0.95: β near 2, eigenvalue 1 − β near −1
        plain.load_state_dict(signed.state_dict())
        x = torch.randn(2, 9, 16, generator=_gen(10))
        beta_signed = signed._qkv_beta(x, None, {})[3]
        beta_plain = plain._qkv_beta(x, None, {})[3]
    assert _max_err(beta_signed, 2 * beta_plain) <= 1e-6
    assert float(beta_signed.min()) > 1  # every 1 − β < 0 here
    assert _max_err(signed(x), plain(x)) > 1e-3
    report = check_sequence_mixer(
        lambda: MIXERS.get(name)(64, layer_idx=0, allow_neg_eigval=True),
        f"{name}[allow_neg_eigval]",
    )
    assert report.passed, report.format()


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize("d_model", [64, 128])
def test_presets_match_mha_parameters_at_every_width(name: str, d_model: int) -> None:
    def params(preset: str) -> int:
        config = build_config(preset, vocab_size=64, overrides={"d_model": d_model})
        return count_parameters(LanguageModel(config))

    assert abs(params(name) / params("mha") - 1) <= 0.05


def test_taylor2_linear_attention_composes_with_attention_layers() -> None:
    """The Based preset's shape: taylor2 linear attention beside softmax-attention layers."""
    config = ModelConfig(
        vocab_size=16,
        d_model=32,
        n_layers=2,
        layer_pattern=("linear_attention", "attention"),
        mixer_kwargs={
            "linear_attention": {"feature_map": "taylor2", "feature_dim": 8},
            "attention": {"n_heads": 4},
        },
    )
    torch.manual_seed(0)
    model = LanguageModel(config).double().eval()
    tokens = torch.randint(0, 16, (2, 11), generator=_gen(8))
    with torch.no_grad():
        logits = model(tokens)
        state = model.init_state(2, device="cpu", dtype=F64)
        for t in range(11):
            step_logits, state = model.step(tokens[:, t], state)
            # 1e-6: attention decodes through its explicit softmax, which runs in float32
            assert _max_err(step_logits, logits[:, t]) <= 1e-6


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("linear_attention", {"feature_map": "softmax"}, "feature_map must be one of"),
        ("linear_attention", {"d_conv": -1}, "d_conv must be a non-negative integer"),
        ("linear_attention", {"d_conv": 2.5}, "d_conv must be a non-negative integer"),
        ("gla", {"chunk": 64}, "chunk must be at most 32"),
        ("retnet", {"n_heads": 3}, "do not split"),
        ("deltanet", {"impl": "loop"}, "impl must be one of"),
        ("gated_deltanet", {"A_init_range": (0, 1)}, "A_init_range"),
    ],
)
def test_bad_knobs_fail_in_one_line(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        MIXERS.get(name)(16, **kwargs)
