"""Every preset trains in bf16 on the CPU: the stand-in for gpu_check's bf16 step (docs/gpu.md).

The GPU run found bf16-only failures (the LRU's complex scan, the MoE's index_add, the LRU in
the profiler's bf16 copy) that no float32 test could see. The harness uses bf16 two ways, and
both are run here for every registered preset, forward and backward:
- "autocast": training on CUDA (`harness/train.py`), float32 weights, bf16 matmuls;
- "bf16-weights": the profiler's `--dtype bfloat16` (`harness/profile/points.py`), the model
  itself cast to bf16.

CPU autocast is not CUDA autocast: it runs a few ops in float32 that CUDA autocast leaves
alone, among them `view_as_complex` and every `torch.fft` function, which have no bf16
kernel on CUDA (the LRU failed there with "view_as_complex is only supported for half, float
and double tensors, but got BFloat16"). `CudaOnlyBf16Ops` makes those calls fail here too.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from seqbench.architectures import PRESETS, LanguageModel, build_config
from seqbench.architectures.lru import LRU
from seqbench.architectures.moe import MoE

VOCAB, BATCH, LENGTH = 16, 2, 24
TRANSFORMS = ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft")  # and their 2-D / n-D forms
NO_BF16_ON_CUDA = {torch.view_as_complex} | {
    getattr(torch.fft, name + dims) for name in TRANSFORMS for dims in ("", "2", "n")
}


class CudaOnlyBf16Ops(TorchFunctionMode):
    """Fail when an op without a CUDA bf16 kernel receives a bf16 or fp16 tensor."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in NO_BF16_ON_CUDA:
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, torch.Tensor) and arg.dtype in (torch.bfloat16, torch.float16):
                    raise AssertionError(f"{func.__name__} on {arg.dtype}: no such CUDA kernel")
        return func(*args, **kwargs)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a loaded 2-core machine two spinning
    threads made this file 8x slower (45 s against 6 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def loss_and_grads(name: str, mode: str) -> tuple[float, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = LanguageModel(build_config(name, vocab_size=VOCAB, overrides={"d_model": 32}))
    if mode == "bf16-weights":
        model = model.to(torch.bfloat16)
    inputs = torch.randint(0, VOCAB, (BATCH, LENGTH), generator=torch.Generator().manual_seed(1))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "autocast")
    with CudaOnlyBf16Ops(), autocast:
        logits = model(inputs[:, :-1])  # (B, L-1, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), inputs[:, 1:].flatten())
        loss = loss + model.aux_loss()
    loss.backward()
    return loss.item(), {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize("mode", ["autocast", "bf16-weights"])
@pytest.mark.parametrize("name", PRESETS.names())
def test_every_preset_trains_in_bf16_with_finite_loss_and_gradients(name: str, mode: str) -> None:
    loss, grads = loss_and_grads(name, mode)
    reference, _ = loss_and_grads(name, "float32")
    assert math.isfinite(loss)
    # bf16 keeps ~3 significant digits: the initial loss (~ln 16) moves by far less than 5%
    assert loss == pytest.approx(reference, rel=0.05)
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"no gradient reached {missing}"
    bad = [n for n, g in grads.items() if not torch.isfinite(g).all()]
    assert not bad, f"non-finite gradients in {bad}"
    assert any(g.abs().sum() > 0 for g in grads.values())


def test_lru_recurrence_ignores_autocast() -> None:
    """The LRU leaves autocast: its output under bf16 autocast is its float32 output."""
    torch.manual_seed(0)
    lru = LRU(32, d_state=16)
    x = torch.randn(2, 64, 32)  # (B, L, D)
    with torch.no_grad():
        reference = lru(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = lru(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, reference, rtol=1e-6, atol=1e-6)


def test_moe_routes_in_float32_under_autocast() -> None:
    """Only the experts' matmuls are bf16: the same input picks the same experts, so the
    output stays within bf16's rounding (a bf16 router swapped experts: 40% off, measured)."""
    torch.manual_seed(0)
    moe = MoE(64)
    x = torch.randn(2, 512, 64)  # (B, L, D)
    with torch.no_grad():
        reference = moe(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = moe(x)
    assert (y - reference).abs().max() < 0.03 * reference.abs().max()
