"""The fused C scan kernels against the PyTorch scans (their oracle), and the fallback.

Equal within float32 resolution in outputs, final states and every gradient, for channel
counts that are not multiples of the kernel's block, lengths that are not multiples of its
checkpoint interval, and a single step. Skipped where no C compiler is found; the fallback
tests run everywhere.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqbench.architectures.scans import native
from seqbench.architectures.scans.conv import conv_silu
from seqbench.architectures.scans.linear_scan import linear_scan_chunked, linear_scan_native
from seqbench.architectures.scans.selective import (
    NATIVE_CHECKPOINT,
    selective_scan,
    selective_scan_native,
)
from seqbench.architectures.scans.ssd import NATIVE_CHECKPOINT as SSD_CHECKPOINT
from seqbench.architectures.scans.ssd import ssd_chunked, ssd_native
from seqbench.architectures.ssm_parts import CausalConv1d

needs_kernels = pytest.mark.skipif(not native.available(), reason=f"{native.INFO.reason}")


def selective_inputs(batch: int, length: int, channels: int, n: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(length * 31 + channels)
    u = torch.randn(batch, length, channels, generator=gen)
    delta = torch.nn.functional.softplus(torch.randn(batch, length, channels, generator=gen) - 2)
    A = -torch.rand(channels, n, generator=gen) * n - 0.5
    B = torch.randn(batch, length, n, generator=gen)
    C = torch.randn(batch, length, n, generator=gen)
    return [t.requires_grad_(True) for t in (u, delta, A, B, C)]


def run(fn, inputs: list[torch.Tensor], cotangent: torch.Tensor) -> list[torch.Tensor]:
    xs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*xs)
    (out[0] * cotangent).sum().backward()
    return [out[0], out[1], *(x.grad for x in xs)]


@needs_kernels
@pytest.mark.parametrize(
    ("batch", "length", "channels", "n"),
    [(2, 1, 16, 4), (2, 37, 40, 16), (1, 2 * NATIVE_CHECKPOINT + 5, 7, 3), (3, 64, 32, 16)],
)
def test_selective_kernel_equals_the_torch_scan(batch, length, channels, n) -> None:
    inputs = selective_inputs(batch, length, channels, n)
    cot = torch.randn(batch, length, channels, generator=torch.Generator().manual_seed(1))
    fast = run(selective_scan_native, inputs, cot)
    oracle = run(selective_scan, inputs, cot)
    names = ["y", "h_last", "du", "ddelta", "dA", "dB", "dC"]
    for name, a, b in zip(names, fast, oracle, strict=True):
        assert a.shape == b.shape, name
        scale = max(1.0, float(b.detach().abs().max()))
        assert float((a - b).detach().abs().max()) <= 2e-5 * scale * max(1, length) ** 0.5, name


@needs_kernels
def test_selective_kernel_leaves_inputs_alone() -> None:
    inputs = selective_inputs(2, 20, 24, 4)
    copies = [t.detach().clone() for t in inputs]
    run(selective_scan_native, inputs, torch.ones(2, 20, 24))
    for before, after in zip(copies, inputs, strict=True):
        assert torch.equal(before, after.detach())


@needs_kernels
@pytest.mark.parametrize(("length", "n"), [(1, 5), (9, 16), (130, 33)])
def test_lru_kernel_equals_the_torch_scan(length: int, n: int) -> None:
    gen = torch.Generator().manual_seed(length)
    log_lam = torch.complex(-torch.rand(n, generator=gen) * 0.2, torch.rand(n, generator=gen) * 6)
    v = torch.randn(3, length, n, dtype=torch.complex64, generator=gen)
    cot = torch.randn(3, length, n, dtype=torch.complex64, generator=gen)
    results = []
    for fn in (linear_scan_native, lambda lam, x: linear_scan_chunked(lam, x, chunk=8)):
        lam, x = log_lam.clone().requires_grad_(True), v.clone().requires_grad_(True)
        states, last = fn(lam, x)
        (states * cot.conj()).real.sum().backward()
        results.append([states, last, lam.grad, x.grad])
    for a, b in zip(*results, strict=True):
        scale = max(1.0, float(b.detach().abs().max()))
        assert float((a - b).detach().abs().max()) <= 1e-5 * scale * max(1, length) ** 0.5


@needs_kernels
@pytest.mark.parametrize(
    ("batch", "length", "heads", "headdim", "groups", "n"),
    [(2, 37, 4, 8, 2, 8), (2, 2 * SSD_CHECKPOINT + 3, 2, 32, 1, 64), (1, 1, 3, 16, 3, 4)],
)
@pytest.mark.parametrize("signed", [False, True])
def test_ssd_kernel_equals_the_torch_scan(batch, length, heads, headdim, groups, n, signed) -> None:
    """Gradients of <y, w> + <S_L, v>: the kernel's adjoint starts from the final state's."""
    gen = torch.Generator().manual_seed(length)
    x = torch.randn(batch, length, heads, headdim, generator=gen)
    dt = torch.nn.functional.softplus(torch.randn(batch, length, heads, generator=gen) - 2)
    A = -torch.rand(heads, generator=gen) * 8 - 0.5
    B = torch.randn(batch, length, groups, n, generator=gen)
    C = torch.randn(batch, length, groups, n, generator=gen)
    cot = torch.randn(batch, length, heads, headdim, generator=gen)
    cot_S = torch.randn(batch, heads, headdim, n, generator=gen)
    results = []
    for fn in (ssd_native, lambda *a, **k: ssd_chunked(*a, chunk=8, **k)):
        xs = [t.clone().requires_grad_(True) for t in (x, dt, A, B, C)]
        y, S = fn(*xs, signed=signed)
        ((y * cot).sum() + (S * cot_S).sum()).backward()
        results.append([y, S, *(t.grad for t in xs)])
    fast, oracle = results
    for name, a, b in zip(["y", "S", "dx", "ddt", "dA", "dB", "dC"], fast, oracle, strict=True):
        assert a.shape == b.shape, name
        scale = max(1.0, float(b.detach().abs().max()))
        assert float((a - b).detach().abs().max()) <= 2e-5 * scale * max(1, length) ** 0.5, name


@needs_kernels
@pytest.mark.parametrize(
    ("channels", "length", "bias"), [(7, 1, True), (40, 33, False), (48, 9, True)]
)
def test_conv_silu_kernel_equals_the_torch_conv(channels: int, length: int, bias: bool) -> None:
    torch.manual_seed(channels)
    conv = CausalConv1d(channels, 4, bias=bias)
    x = torch.randn(3, length, channels)
    cot = torch.randn(3, length, channels)
    results = []
    for fused in (True, False):
        conv.zero_grad()
        xx = x.clone().requires_grad_(True)
        (conv_silu(conv, xx, fused) * cot).sum().backward()
        grads = [conv.conv.weight.grad.clone()] + ([conv.conv.bias.grad.clone()] if bias else [])
        results.append([conv_silu(conv, x, fused).detach(), xx.grad, *grads])
    for a, b in zip(*results, strict=True):
        assert a.shape == b.shape
        scale = max(1.0, float(b.abs().max()))
        assert float((a - b).abs().max()) <= 1e-5 * scale


def test_no_compiler_means_no_library_and_the_torch_path(monkeypatch, tmp_path: Path) -> None:
    """A compiler that fails (or none at all) leaves library() None and the mixers on PyTorch."""
    fake = tmp_path / "fakecc"
    fake.write_text("#!/bin/sh\necho 'fakecc: cannot compile' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv(native.ENV_CACHE, str(tmp_path / "cache"))
    native.library.cache_clear()
    try:
        if sys.platform != "win32":
            assert native.library() is None
            assert "fakecc" in (native.INFO.reason or "")
        monkeypatch.setattr(native, "_compiler", lambda: None)
        native.library.cache_clear()
        assert native.library() is None and "no C compiler" in (native.INFO.reason or "")
        from seqbench.architectures.lru import LRU
        from seqbench.architectures.mamba import Mamba
        from seqbench.architectures.mamba2 import Mamba2

        for mixer in (Mamba(16, d_state=4), LRU(16, d_state=4), Mamba2(16, headdim=8)):
            mixer(torch.randn(1, 5, 16)).sum().backward()
            assert mixer.kernel_path == "torch-scan"
    finally:
        native.library.cache_clear()
        native.INFO.reason = None


def test_the_switch_turns_the_kernels_off() -> None:
    code = (
        "import torch; from seqbench.architectures.mamba import Mamba; m = Mamba(16); "
        "m(torch.randn(1, 5, 16)); print(m.kernel_path)"
    )
    env = {**os.environ, native.ENV_SWITCH: "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "torch-scan"
