"""Hyena: FFT path equals the direct causal convolution (float64, outputs and every gradient),
decoding equals forward, the filter is length-independent, and the state grows as documented."""

from __future__ import annotations

import pytest
import torch

from seqbench.architectures import LanguageModel, build_config
from seqbench.architectures.contract import prefill, state_bytes
from seqbench.architectures.hyena import Hyena, direct_causal_conv, fft_causal_conv
from seqbench.errors import UserError


def _pair(d_model: int = 16, **kwargs: object) -> tuple[Hyena, Hyena]:
    torch.manual_seed(0)
    fast = Hyena(d_model, **kwargs).double()
    ref = Hyena(d_model, impl="reference", **kwargs).double()
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def _grads(y: torch.Tensor, wrt: list[torch.Tensor]) -> list[torch.Tensor]:
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(5), dtype=y.dtype)
    return list(torch.autograd.grad((y * w).sum(), wrt))


def test_convolutions_equal_the_plain_double_sum() -> None:
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 11, generator=gen, dtype=torch.float64)
    h = torch.randn(3, 11, generator=gen, dtype=torch.float64)
    plain = torch.zeros_like(z)
    for t in range(11):
        for j in range(t + 1):
            plain[:, :, t] += h[:, j] * z[:, :, t - j]
    assert (direct_causal_conv(z, h) - plain).abs().max() < 1e-12
    assert (fft_causal_conv(z, h) - plain).abs().max() < 1e-12


@pytest.mark.parametrize("chunk_elements", [64, 1000, 1 << 20])
def test_channel_groups_do_not_change_the_fft_convolution(chunk_elements: int) -> None:
    """Groups of 1 channel, of 3 channels (the last one short) and no grouping: same result."""
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(2, 7, 45, generator=gen, dtype=torch.float64, requires_grad=True)
    h = torch.randn(7, 45, generator=gen, dtype=torch.float64, requires_grad=True)
    fast = fft_causal_conv(z, h, chunk_elements=chunk_elements)
    ref = direct_causal_conv(z, h)
    assert (fast - ref).abs().max() < 1e-10
    for a, b in zip(_grads(fast, [z, h]), _grads(ref, [z, h]), strict=True):
        assert (a - b).abs().max() < 1e-10


@pytest.mark.parametrize("length", [1, 7, 37, 100, 300])
def test_fft_equals_direct_reference_float64(length: int) -> None:
    """Outputs and every parameter's and the input's gradient, lengths not powers of two."""
    fast, ref = _pair(scale_len=64)
    x = torch.randn(2, length, 16, dtype=torch.float64, requires_grad=True)
    y_fast, y_ref = fast(x), ref(x)
    assert (y_fast - y_ref).abs().max() < 1e-10
    g_fast = _grads(y_fast, [x, *fast.parameters()])
    g_ref = _grads(y_ref, [x, *ref.parameters()])
    assert len(g_fast) == 2 + len(list(fast.parameters())) - 1
    for a, b in zip(g_fast, g_ref, strict=True):
        assert a.abs().max() > 0
        assert (a - b).abs().max() < 1e-10 * max(1.0, float(b.abs().max()))


def test_filter_taps_do_not_depend_on_length() -> None:
    """Positions are absolute: the first n taps of a length-L filter are the length-n filter."""
    layer = Hyena(32).double()
    long = layer.filter(500)
    assert long.shape == (32, 500)
    assert (long[:, :37] - layer.filter(37)).abs().max() < 1e-14  # same taps, any L
    # the decay window: fast channels die out, the filter is not constant
    assert long[-1].abs()[-50:].max() < 1e-3 * long[-1].abs()[:5].max()


@pytest.mark.parametrize("short_kernel", [3, 1, 4])
def test_step_and_prefill_equal_forward(short_kernel: int) -> None:
    fast, _ = _pair(short_kernel=short_kernel)
    x = torch.randn(2, 19, 16, dtype=torch.float64)
    with torch.no_grad():
        full = fast(x)
        state = fast.init_state(2, device="cpu", dtype=torch.float64)
        for t in range(19):
            y_t, state = fast.step(x[:, t], state)
            assert (y_t - full[:, t]).abs().max() < 1e-12
        for cut in (1, 2, 12):
            y, state = fast.prefill(x[:, :cut])
            assert (y - full[:, :cut]).abs().max() < 1e-12
            for t in range(cut, 19):
                y_t, state = fast.step(x[:, t], state)
                assert (y_t - full[:, t]).abs().max() < 1e-12


def test_state_grows_with_context() -> None:
    """(k-1) projected inputs of 3D channels + one D-vector per token seen, float32."""
    d_model = 32
    layer = Hyena(d_model)
    with torch.no_grad():
        sizes = {n: state_bytes(prefill(layer, torch.randn(1, n, d_model))[1]) for n in (64, 256)}
    for n, size in sizes.items():
        assert size == 4 * (3 * d_model * 2 + d_model * n)
    assert sizes[256] > sizes[64]


@pytest.mark.parametrize("d_model", [64, 128])
def test_hyena_preset_matches_mha_parameters(d_model: int) -> None:
    def params(name: str) -> int:
        config = build_config(name, vocab_size=64, overrides={"d_model": d_model})
        return LanguageModel(config).parameter_counts()["total"]

    assert abs(params("hyena") / params("mha") - 1) <= 0.05


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"impl": "cuda"}, "impl must be one of"),
        ({"filter_order": 0}, "filter_order"),
        ({"emb_dim": 4}, "emb_dim"),
        ({"scale_len": 0}, "scale_len"),
        ({"short_kernel": 0}, "short_kernel"),
        ({"decay_target": 2.0}, "decay_target"),
        ({"fast_decay_pct": 2.0, "slow_decay_pct": 1.0}, "fast_decay_pct"),
    ],
)
def test_bad_knobs_fail_in_one_line(kwargs: dict, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        Hyena(32, **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_bf16_autocast_runs_the_fft_in_float32() -> None:
    """bf16 autocast (the harness's CUDA default): FFT and filter stay float32, output within 5%."""
    torch.manual_seed(0)
    layer = Hyena(32)
    x = torch.randn(2, 300, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16
    reference = layer(x)
    assert (y.float() - reference).abs().max() < 0.05 * reference.abs().max()


def test_the_implicit_filter_trains_without_weight_decay() -> None:
    from seqbench.harness.train import no_decay

    layer = Hyena(32)
    assert all(no_decay(p) for p in layer.filter.parameters())
    assert not no_decay(layer.in_proj.weight) and not no_decay(layer.out_proj.weight)


def test_runs_on_the_meta_device_for_counting() -> None:
    """`seqbench profile` counts FLOPs and state bytes on meta tensors."""
    layer = Hyena(32).to("meta")
    y, state = layer.prefill(torch.zeros(1, 40, 32, device="meta"))
    assert y.shape == (1, 40, 32) and state_bytes(state) == 4 * (3 * 32 * 2 + 32 * 40)
