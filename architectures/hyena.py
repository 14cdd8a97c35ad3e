"""Hyena (Poli et al. 2023, "Hyena Hierarchy"): gated implicit long convolutions, order 2.

    u = in_proj(x)                          3 streams of width D        (B, L, 3D)
    x0, x1, v = short_conv(u)               causal depthwise conv, kernel 3
    z = v * x1                              first gate
    y = (h * z) + bias * z                  long causal conv, one filter per channel
    out = out_proj(y * x0)                  second gate

The long filter h (D, L) is *implicit*: a small MLP with sine activations maps positional
features of each lag i (t = i / scale_len, cos/sin of 2 pi f i / scale_len) to D values, then
an exponential decay window exp(-t |delta_c|) (one rate per channel, from fast to slow) shapes
it. Positions are absolute, not normalised by the sequence length, so the filter for any L is
generated on the fly and its first n taps never depend on L: decoding one token at a time sees
exactly the filter the full forward used.

Fast path: FFT convolution, O(L log L). Reference (impl="reference"): the direct causal
convolution sum_{j<=t} h[j] z[t-j] (a depthwise `conv1d` with the flipped filter, O(L^2)).

Decode state: the last `short_kernel - 1` projected inputs for the short conv, and every past
z for the long conv. The second grows with the context (D values per token): a filter as long
as the sequence, produced by an MLP, is not the impulse response of any finite-state linear
system in general, so no fixed-size state can replace the history (distilling it into one is
the separate "Laughing Hyena" step, Massaroli et al. 2023, not done here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.precision import no_autocast
from seqbench.architectures.registry import MIXERS
from seqbench.architectures.ssm_parts import no_weight_decay
from seqbench.errors import UserError

IMPLS = ("fft", "reference")
# On the CPU the FFT path is memory-bound: at B 8, D 128, L 4096 its spectra are 8.4M complex
# values, far past the caches, and it ran 6.6x slower than at L 1024 (slope 1.37). Channels in
# groups of about 2^20 padded values (B * group * n) keep each group's transforms in cache:
# 2-2.6x faster at L 4096, slope ~1.2 (measured in bench_hyena_window.py's conditions).
CPU_CHUNK_ELEMENTS = 1 << 20


def fft_causal_conv(z: Tensor, h: Tensor, *, chunk_elements: int = CPU_CHUNK_ELEMENTS) -> Tensor:
    """Causal convolution y[:, c, t] = sum_{j<=t} h[c, j] z[:, c, t-j] by FFT.

    z (B, D, L), h (D, L) -> (B, D, L). Zero-padding to n >= 2L-1 makes the FFT's circular
    convolution equal the linear one on the first L outputs; n is a power of two.
    Half-precision inputs (bf16 autocast on CUDA) are transformed in float32: cuFFT has no
    bf16, and a half-precision FFT over thousands of taps would lose the filter's tail.
    On the CPU, channels go in groups of ~`chunk_elements` padded values (cache blocking).
    """
    B, D, L = z.shape
    n = 1 << (2 * L - 1).bit_length()
    group = max(1, chunk_elements // (B * n)) if z.device.type == "cpu" else D
    if group >= D:
        return _fft_conv(z, h, n)
    parts = [_fft_conv(z[:, c : c + group], h[c : c + group], n) for c in range(0, D, group)]
    return torch.cat(parts, dim=1)  # (B, D, L)


def _fft_conv(z: Tensor, h: Tensor, n: int) -> Tensor:
    """One group of channels: z (B, d, L), h (d, L), FFT size n -> (B, d, L)."""
    work = torch.promote_types(torch.promote_types(z.dtype, h.dtype), torch.float32)
    spectrum = torch.fft.rfft(z.to(work), n=n) * torch.fft.rfft(h.to(work), n=n)  # (B, d, n/2+1)
    return torch.fft.irfft(spectrum, n=n)[..., : z.shape[-1]].to(z.dtype)


def direct_causal_conv(z: Tensor, h: Tensor) -> Tensor:
    """The same convolution computed directly, O(L^2): the reference for `fft_causal_conv`.

    conv1d correlates, so the filter is flipped; left padding by L-1 makes it causal.
    """
    D, L = h.shape
    return F.conv1d(F.pad(z, (L - 1, 0)), h.flip(-1)[:, None, :], groups=D)  # (B, D, L)


class Sin(nn.Module):
    """sin(freq * x) with a learnable frequency per unit (the Hyena filter's activation)."""

    def __init__(self, dim: int, w: float) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.full((dim,), float(w)))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.freq * x)


class ImplicitFilter(nn.Module):
    """Positional MLP + exponential decay window -> a causal filter of any length (D, L)."""

    def __init__(
        self,
        d_model: int,
        *,
        order: int,
        emb_dim: int,
        n_inner: int,
        w: float,
        scale_len: int,
        fast_decay_pct: float,
        slow_decay_pct: float,
        decay_target: float,
    ) -> None:
        super().__init__()
        self.scale_len = scale_len
        bands = (emb_dim - 1) // 2
        # band frequencies as in Hyena's positional embedding: 1e-4 .. bands-1 cycles per scale
        self.register_buffer("bands", torch.linspace(1e-4, bands - 1, bands), persistent=False)
        layers: list[nn.Module] = [nn.Linear(emb_dim, order), Sin(order, w)]
        for _ in range(n_inner):
            layers += [nn.Linear(order, order), Sin(order, w)]
        layers.append(nn.Linear(order, d_model, bias=False))
        self.mlp = nn.Sequential(*layers)
        # Hyena's code trains the implicit filter without weight decay: decaying the MLP would
        # shrink the whole filter (every tap) towards zero, not just a weight.
        for param in self.mlp.parameters():
            no_weight_decay(param)
        # decay rates from slow (reaches `decay_target` at t = slow_decay_pct) to fast
        slowest = math.log(decay_target) / slow_decay_pct
        fastest = math.log(decay_target) / fast_decay_pct
        self.register_buffer(
            "deltas", torch.linspace(slowest, fastest, d_model).abs(), persistent=False
        )

    def features(self, length: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """(length, emb_dim): [t, cos(2 pi f_k i / S) ..., -sin(2 pi f_k i / S) ...]."""
        i = torch.arange(length, device=device, dtype=dtype)[:, None]  # (L, 1)
        t = i / self.scale_len
        angle = 2 * math.pi * i * self.bands.to(dtype) / self.scale_len  # (L, bands)
        return torch.cat([t, torch.cos(angle), -torch.sin(angle)], dim=-1)

    def forward(self, length: int) -> Tensor:
        """The filter's first `length` taps, (D, length), in the parameters' dtype.

        Autocast is off here: in bf16, sin(w * a) with w = 10 loses most of its digits (the
        layer's output was 17% off float32's), and the filter costs L * order * D, nothing.
        """
        weight = self.mlp[0].weight
        with no_autocast(weight.device.type):
            z = self.features(length, weight.device, weight.dtype)  # (L, emb_dim)
            h = self.mlp(z)  # (L, D)
            decay = torch.exp(-z[:, :1] * self.deltas.to(weight.dtype))  # (L, D)
            return (h * decay).transpose(0, 1)  # (D, L)


@MIXERS.register("hyena", family="convolution")
class Hyena(nn.Module):
    """Order-2 Hyena operator: projections, short conv, implicit long conv, two gates."""

    def __init__(
        self,
        d_model: int,
        *,
        layer_idx: int = 0,
        filter_order: int | None = None,
        emb_dim: int = 5,
        n_inner: int = 2,
        w: float = 10.0,
        scale_len: int = 256,
        short_kernel: int = 3,
        fast_decay_pct: float = 0.3,
        slow_decay_pct: float = 1.5,
        decay_target: float = 1e-2,
        bias: bool = False,
        impl: str = "fft",
    ) -> None:
        super().__init__()
        # Why d_model // 8: the paper's MLP width 64 is negligible at d_model 768, but would give
        # the 2-layer preset 25% more parameters than mha at d_model 64 (9% at 128); d_model // 8
        # keeps it within 5% of mha at both and reaches the paper's 64 at d_model 512.
        order = max(8, d_model // 8) if filter_order is None else filter_order
        validate(
            impl=impl,
            order=order,
            emb_dim=emb_dim,
            n_inner=n_inner,
            scale_len=scale_len,
            short_kernel=short_kernel,
            decays=(fast_decay_pct, slow_decay_pct, decay_target),
        )
        self.layer_idx = layer_idx
        self.d_model = d_model
        self.impl = impl
        self.short_kernel = short_kernel
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)
        # depthwise causal conv over the 3 streams; weight (3D, 1, k)
        self.short_conv = nn.Conv1d(3 * d_model, 3 * d_model, short_kernel, groups=3 * d_model)
        self.filter = ImplicitFilter(
            d_model,
            order=order,
            emb_dim=emb_dim,
            n_inner=n_inner,
            w=w,
            scale_len=scale_len,
            fast_decay_pct=fast_decay_pct,
            slow_decay_pct=slow_decay_pct,
            decay_target=decay_target,
        )
        self.skip = nn.Parameter(torch.randn(d_model))  # the long conv's direct term ("bias")
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    # -- training path ------------------------------------------------------------------------
    def _streams(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Projected inputs u (B, 3D, L) and the short-conv outputs (B, 3D, L)."""
        u = self.in_proj(x).transpose(1, 2)  # (B, 3D, L)
        uc = self.short_conv(F.pad(u, (self.short_kernel - 1, 0)))  # (B, 3D, L), causal
        return u, uc

    def _mix(self, uc: Tensor) -> tuple[Tensor, Tensor]:
        """Gates and long conv: output (B, L, D) and the long conv's input z (B, D, L)."""
        x0, x1, v = uc.split(self.d_model, dim=1)  # (B, D, L) each
        z = v * x1
        h = self.filter(z.shape[-1])  # (D, L)
        conv = fft_causal_conv if self.impl == "fft" else direct_causal_conv
        y = conv(z, h) + self.skip[:, None] * z  # (B, D, L)
        return self.out_proj((y * x0).transpose(1, 2)), z

    def forward(self, x: Tensor) -> Tensor:
        _, uc = self._streams(x)
        return self._mix(uc)[0]

    # -- decoding -----------------------------------------------------------------------------
    def init_state(
        self, batch_size: int, *, device: torch.device | str, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        D, k = self.d_model, self.short_kernel
        return {
            "short": torch.zeros(batch_size, 3 * D, k - 1, device=device, dtype=dtype),
            "history": torch.zeros(batch_size, D, 0, device=device, dtype=dtype),
        }

    def step(self, x_t: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        u_t = self.in_proj(x_t)[:, :, None]  # (B, 3D, 1)
        window = torch.cat([state["short"], u_t], dim=2)  # (B, 3D, k)
        uc_t = (window * self.short_conv.weight[:, 0]).sum(-1) + self.short_conv.bias  # (B, 3D)
        x0, x1, v = uc_t.split(self.d_model, dim=1)  # (B, D) each
        z_t = v * x1
        history = torch.cat([state["history"], z_t[:, :, None]], dim=2)  # (B, D, t+1)
        h = self.filter(history.shape[-1])  # (D, t+1): the same taps forward uses
        y_t = (history.flip(-1) * h).sum(-1) + self.skip * z_t  # (B, D)
        out = self.out_proj(y_t * x0)
        return out, {"short": window[:, :, 1:], "history": history}

    def prefill(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Forward over a prompt; the state is its last k-1 projected inputs and every z."""
        u, uc = self._streams(x)
        out, z = self._mix(uc)
        short = F.pad(u, (self.short_kernel - 1, 0))[:, :, u.shape[-1] :]  # (B, 3D, k-1)
        return out, {"short": short.contiguous(), "history": z.contiguous()}


def validate(
    *,
    impl: str,
    order: int,
    emb_dim: int,
    n_inner: int,
    scale_len: int,
    short_kernel: int,
    decays: tuple[float, float, float],
) -> None:
    """One-line errors for knobs that cannot build a Hyena layer."""
    if impl not in IMPLS:
        raise UserError(f"hyena impl must be one of {IMPLS}, got {impl!r}")
    for name, value, low in (
        ("filter_order", order, 1),
        ("n_inner", n_inner, 0),
        ("scale_len", scale_len, 1),
        ("short_kernel", short_kernel, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"hyena {name} must be an integer >= {low}, got {value!r}")
    if isinstance(emb_dim, bool) or not isinstance(emb_dim, int) or emb_dim < 3 or emb_dim % 2 == 0:
        raise UserError(
            f"hyena emb_dim must be an odd integer >= 3 (t + sin/cos bands), got {emb_dim!r}"
        )
    fast, slow, target = decays
    if not 0 < target < 1:
        raise UserError(f"hyena decay_target must lie in (0, 1), got {target!r}")
    if not 0 < fast <= slow:
        raise UserError(
            f"hyena needs 0 < fast_decay_pct <= slow_decay_pct, got {fast!r} and {slow!r}"
        )
