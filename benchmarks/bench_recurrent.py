"""Recurrent mixers, forward+backward on CPU: our fast paths against references and mambapy.

Sections (batch 8, d_model 128, d_state 16, float32, one thread by default):
  scan      Mamba-1 selective scan alone (2 * d_model = 256 channels): ours (chunked autograd
            function) vs the sequential reference, a plain autograd loop, mambapy's parallel scan.
  mamba     The whole Mamba-1 block: ours vs impl="reference" (same weights) vs mambapy's
            MambaBlock (its parallel scan).
  mamba2    Mamba-2 block: chunked SSD vs the sequential reference.
  mamba3    Mamba-3 block (trapezoidal, rotary, SISO): chunked scan vs impl="reference" (the
            step loop), plus the extra peak memory of each at the longest L (issue 12's
            targets: >= 5x at L 1024, >= 8x at 4096, slope <= 1.15, memory <= 1/4).
  lru-scan  LRU scan alone (d_state complex states): chunked scan vs the sequential loop.
  lru       LRU block (the B and C projections, identical in both paths, included).
Each prints times, ratios measured in this run, max abs errors against the reference (outputs
and every gradient), and the slope of log time vs log L. Section 1 also measures the extra peak
memory of one forward+backward at the longest L in a fresh subprocess per contender.
The targets of issue 3 are checked at the end ([met ]/[MISS] with the measured figure).

Why CPU time and interleaving: the machine is shared. Times are the process's CPU seconds
(`time.process_time`, user + system, one thread), so the seconds other processes take from us
do not count, while page faults and cache misses still do; contenders run round-robin (A, B, C,
A, B, C, ...) and each time is a median, so a burst of load hits all of them alike.

    python benchmarks/bench_recurrent.py             # L 256, 1024, 4096 (several minutes)
    python benchmarks/bench_recurrent.py --quick     # L 256, 1024, fewer repeats
    python benchmarks/bench_recurrent.py --json out.json
    python benchmarks/bench_recurrent.py --sections mamba3 --lengths 1024 4096   # Mamba-3 only
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.architectures.lru import LRU
from seqbench.architectures.mamba import Mamba
from seqbench.architectures.mamba2 import Mamba2
from seqbench.architectures.mamba3 import Mamba3
from seqbench.architectures.scans import native
from seqbench.architectures.scans.linear_scan import (
    linear_scan_chunked,
    linear_scan_native,
    linear_scan_ref,
)
from seqbench.architectures.scans.selective import (
    selective_scan,
    selective_scan_native,
    selective_scan_ref,
)
from seqbench.architectures.ssm_parts import dt_bias_init

try:
    from mambapy.mamba import MambaBlock, MambaConfig
    from mambapy.pscan import pscan as mambapy_pscan
except ImportError:
    MambaBlock = MambaConfig = mambapy_pscan = None

MAMBAPY_MISSING = (
    "mambapy is NOT installed, so its columns are skipped "
    "(pip install -e '.[bench]' or pip install mambapy)"
)
SECTIONS = ("scan", "mamba", "mamba2", "mamba3", "lru-scan", "lru")
SLOW_RUN_S = 4.0  # a contender slower than this at some L is timed once there


# -- inputs and contenders --------------------------------------------------------------------
def scan_inputs(batch: int, length: int, channels: int, d_state: int, seed: int = 0) -> list:
    """Realistic Mamba-1 scan inputs: Δ around the layer's init range, S4D-real A."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, length, channels, generator=gen)
    torch.manual_seed(seed)
    bias = dt_bias_init(channels, 1e-3, 1e-1, 1e-4)
    delta = F.softplus(0.5 * torch.randn(batch, length, channels, generator=gen) + bias)
    A = -torch.arange(1, d_state + 1, dtype=torch.float32).repeat(channels, 1)
    B = torch.randn(batch, length, d_state, generator=gen)
    C = torch.randn(batch, length, d_state, generator=gen)
    return [t.requires_grad_(True) for t in (u, delta, A, B, C)]


def plain_loop_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """The plain autograd loop most people write: batch exp(ΔA) and ΔBu, loop the recurrence."""
    decay = torch.exp(delta[..., None] * A)  # (B, L, D, N)
    drive = (delta * u)[..., None] * B[:, :, None, :]  # (B, L, D, N)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for a_t, b_t, c_t in zip(decay.unbind(1), drive.unbind(1), C.unbind(1), strict=True):
        h = a_t * h + b_t
        ys.append((h @ c_t[:, :, None])[..., 0])  # (B, D)
    return torch.stack(ys, dim=1)


def mambapy_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor) -> Tensor:
    """mambapy's parallel (Blelloch) scan exactly as its MambaBlock.selective_scan uses it."""
    decay = torch.exp(delta.unsqueeze(-1) * A)  # (B, L, D, N)
    drive = delta.unsqueeze(-1) * B.unsqueeze(2) * u.unsqueeze(-1)
    hs = mambapy_pscan(decay, drive)
    return (hs @ C.unsqueeze(-1)).squeeze(3)  # (B, L, D)


# "ours" is what a mixer with impl="auto" runs on the CPU: the C kernel where it builds, else
# the chunked PyTorch scan; "torch-chunked" is that PyTorch scan (impl="torch") either way.
SCANS: dict[str, Callable[..., Tensor]] = {
    "ours": lambda *a: (selective_scan_native if native.available() else selective_scan)(*a)[0],
    "torch-chunked": lambda *a: selective_scan(*a)[0],
    "reference": lambda *a: selective_scan_ref(*a)[0],
    "loop": plain_loop_scan,
}
if mambapy_pscan is not None:
    SCANS["mambapy"] = mambapy_scan


def lru_scan_inputs(batch: int, length: int, d_state: int, seed: int = 0) -> list[Tensor]:
    """log λ on the LRU's default ring (|λ| in [0.9, 0.999]) and a drive v, complex leaves.

    The scan is timed on its own complex inputs and outputs: the LRU's real parameterisation
    (ν, θ) and a real<->complex packing around the scan would be timed as part of every
    contender and, at 33 MB per (B, L, N) tensor, outweigh the C kernel itself."""
    gen = torch.Generator().manual_seed(seed)
    radius_sq = torch.rand(d_state, generator=gen) * (0.999**2 - 0.9**2) + 0.9**2
    theta = 2 * math.pi * torch.rand(d_state, generator=gen)
    log_lam = torch.complex(0.5 * torch.log(radius_sq), theta)  # (N,)
    v = torch.complex(*torch.randn(2, batch, length, d_state, generator=gen))  # (B, L, N)
    return [t.requires_grad_(True) for t in (log_lam, v)]


def lru_scan(scan: Callable[..., tuple[Tensor, Tensor]]) -> Callable[..., Tensor]:
    """A contender: the states x (B, L, N), complex."""
    return lambda log_lam, v: scan(log_lam, v)[0]


LRU_SCANS = {
    "ours": lru_scan(linear_scan_native if native.available() else linear_scan_chunked),
    "torch-chunked": lru_scan(linear_scan_chunked),
    "reference": lru_scan(linear_scan_ref),
}


def block_contenders(kind: str, d_model: int, d_state: int) -> dict[str, nn.Module]:
    """Our block in its fast and reference paths with identical weights (+ mambapy's)."""
    torch.manual_seed(0)
    if kind == "mamba":
        make = lambda impl: Mamba(d_model, d_state=d_state, expand=2, impl=impl)  # noqa: E731
    elif kind == "mamba2":
        make = lambda impl: Mamba2(d_model, d_state=d_state, expand=2, impl=impl)  # noqa: E731
    elif kind == "mamba3":
        make = lambda impl: Mamba3(d_model, d_state=d_state, expand=2, impl=impl)  # noqa: E731
    else:
        make = lambda impl: LRU(d_model, d_state=d_state, impl=impl)  # noqa: E731
    ours, chunked, ref = make("auto"), make("torch"), make("reference")
    chunked.load_state_dict(ours.state_dict())
    ref.load_state_dict(ours.state_dict())
    modules: dict[str, nn.Module] = {"ours": ours, "torch-chunked": chunked, "reference": ref}
    if kind == "mamba" and MambaBlock is not None:
        modules["mambapy"] = MambaBlock(
            MambaConfig(d_model=d_model, n_layers=1, d_state=d_state, expand_factor=2)
        )
    return modules


# -- timing ----------------------------------------------------------------------------------
def cotangent(y: Tensor) -> Tensor:
    """A fixed unit-scale random cotangent shaped and typed like y (complex: both parts)."""
    gen = torch.Generator().manual_seed(1)
    if y.is_complex():
        return torch.complex(*torch.randn(2, *y.shape, generator=gen)).to(y.dtype)
    return torch.randn(y.shape, generator=gen).to(y.dtype)


def wide(t: Tensor) -> Tensor:
    """float64 (complex128) copy: the precision errors are measured in."""
    return t.detach().to(torch.complex128 if t.is_complex() else torch.float64)


def fwd_bwd(fn: Callable[[], Tensor], grads_of: list[Tensor]) -> Callable[[], None]:
    """A closure running one forward+backward with a fixed random cotangent.

    The cotangent goes straight into backward(): a (y * w).sum() loss would time an extra
    multiply and sum (and their backward) over the whole output as part of every contender."""
    weight: dict[str, Tensor] = {}

    def run() -> None:
        for t in grads_of:
            t.grad = None
        y = fn()
        if "w" not in weight:
            weight["w"] = cotangent(y)
        y.backward(weight["w"])

    return run


def interleaved_medians(runs: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds per contender, running them round-robin; slow ones run fewer times."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_idx in range(repeats):
        for name, run in runs.items():
            if round_idx and times[name][0] > SLOW_RUN_S:
                continue
            start = time.process_time()
            run()
            times[name].append(time.process_time() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def slope(lengths: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(time) against log(L)."""
    xs, ys = [math.log(v) for v in lengths], [math.log(v) for v in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


# -- errors ------------------------------------------------------------------------------------
def outputs_and_grads(fn: Callable[[], Tensor], wrt: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """Output and the gradients of <y, w> for a fixed unit-scale random cotangent w."""
    y = fn()
    grads = torch.autograd.grad(y, wrt, cotangent(y))
    return wide(y), [wide(g) for g in grads]


def compare(a: tuple[Tensor, list[Tensor]], b: tuple[Tensor, list[Tensor]]) -> tuple[float, float]:
    """Max abs difference of the outputs, and of the gradients (worst over all of them)."""
    grads = max(float((x - y).abs().max()) for x, y in zip(a[1], b[1], strict=True))
    return float((a[0] - b[0]).abs().max()), grads


Result = tuple[Tensor, list[Tensor]]


def error_report(ours: Result, reference: Result, exact: Result) -> dict[str, float]:
    """Ours against the float32 reference, and both against a float64 reference (the truth).

    Why the float64 line: gradients summed over B * L steps reach hundreds, where one float32
    ulp is ~3e-5, so the float32 reference is itself off the truth by more than 1e-4; comparing
    each with float64 shows whether the fast path is as accurate as the reference.
    """
    y_err, g_err = compare(ours, reference)
    y64, g64 = compare(ours, exact)
    ry64, rg64 = compare(reference, exact)
    return {
        "output": y_err,
        "gradients": g_err,
        "output_vs_float64": y64,
        "gradients_vs_float64": g64,
        "reference_output_vs_float64": ry64,
        "reference_gradients_vs_float64": rg64,
        "gradient_scale": max(float(g.abs().max()) for g in exact[1]),
    }


def scan_errors(scans: dict[str, Callable[..., Tensor]], inputs: list[Tensor]) -> dict[str, float]:
    exact = [wide(t).requires_grad_(True) for t in inputs]
    return error_report(
        outputs_and_grads(lambda: scans["ours"](*inputs), inputs),
        outputs_and_grads(lambda: scans["reference"](*inputs), inputs),
        outputs_and_grads(lambda: scans["reference"](*exact), exact),
    )


def block_errors(modules: dict[str, nn.Module], x: Tensor) -> dict[str, float]:
    exact = copy.deepcopy(modules["reference"]).double()

    def run(m: nn.Module, inp: Tensor) -> tuple[Tensor, list[Tensor]]:
        return outputs_and_grads(lambda: m(inp), list(m.parameters()))

    return error_report(
        run(modules["ours"], x), run(modules["reference"], x), run(exact, x.double())
    )


# -- memory (fresh subprocess per contender) ----------------------------------------------------
def _status_kib(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); return it in bytes.

    Why: ru_maxrss keeps the peak of the whole process life (imports, input construction), which
    can hide a later, smaller allocation; after the reset, VmHWM is the peak from here on.
    """
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return _status_kib("VmRSS") * 1024


def peak_rss_bytes() -> int:
    return _status_kib("VmHWM") * 1024


def memory_probe(name: str, length: int, args: argparse.Namespace) -> dict[str, int]:
    """Run in a fresh process: extra peak RSS and autograd-saved bytes of one forward+backward.

    `name` is a scan contender ("ours", "reference", ...) or "BLOCK:contender" for a block
    section (e.g. "mamba3:reference"): its input is (batch, length, d_model)."""
    torch.set_num_threads(args.threads)
    if ":" in name:
        kind, contender = name.split(":")
        module = block_contenders(kind, args.d_model, args.d_state)[contender]
        x = torch.randn(args.batch, length, args.d_model)
        params = list(module.parameters())
        fwd_bwd(lambda: module(x[:, :8]), params)()  # warm-up: allocator, lazy init
        run, inputs = (lambda: module(x)), params
    else:
        inputs = scan_inputs(args.batch, length, 2 * args.d_model, args.d_state)
        fwd_bwd(lambda: SCANS[name](*(t[:, :8] if t.dim() == 3 else t for t in inputs)), inputs)()
        run = lambda: SCANS[name](*inputs)  # noqa: E731
    saved = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    base = reset_peak_rss()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = run()
    y.sum().backward()
    extra = peak_rss_bytes() - base
    return {"peak_rss_extra": extra, "autograd_saved": saved}


def measure_memory(names: list[str], length: int, args: argparse.Namespace) -> dict[str, dict]:
    results = {}
    for name in names:
        cmd = [sys.executable, __file__, "--memory-probe", name, "--length", str(length)]
        cmd += ["--batch", str(args.batch), "--d-model", str(args.d_model)]
        cmd += ["--d-state", str(args.d_state), "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            results[name] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# -- the sections ------------------------------------------------------------------------------
@dataclass
class Section:
    title: str
    lengths: list[int] = field(default_factory=list)
    times: dict[str, list[float]] = field(default_factory=dict)
    errors: list[dict[str, float]] = field(default_factory=list)
    memory: dict[str, dict] = field(default_factory=dict)

    def add(self, length: int, medians: dict[str, float], errors: dict[str, float]) -> None:
        self.lengths.append(length)
        for name, t in medians.items():
            self.times.setdefault(name, []).append(t)
        self.errors.append(errors)
        self.print_row(length, medians, errors)

    def print_row(self, length: int, medians: dict[str, float], errors: dict[str, float]) -> None:
        cells = [f"L {length:5d}"] + [f"{n} {t:8.3f}s" for n, t in medians.items()]
        ratios = [
            f"{n}/ours {t / medians['ours']:6.1f}x" for n, t in medians.items() if n != "ours"
        ]
        errs = (
            f"max|err| vs ref: y {errors['output']:.1e} grads {errors['gradients']:.1e}"
            f" (vs float64: ours {errors['gradients_vs_float64']:.1e},"
            f" ref {errors['reference_gradients_vs_float64']:.1e};"
            f" scale {errors['gradient_scale']:.3g})"
        )
        print("  " + "  ".join(cells + ratios) + "  " + errs, flush=True)

    def slopes(self, since: int) -> dict[str, float]:
        keep = [i for i, n in enumerate(self.lengths) if n >= since]
        if len(keep) < 2:
            return {}
        lengths = [self.lengths[i] for i in keep]
        return {n: slope(lengths, [ts[i] for i in keep]) for n, ts in self.times.items()}

    def ratio(self, name: str, length: int) -> float | None:
        if name not in self.times or length not in self.lengths:
            return None
        i = self.lengths.index(length)
        return self.times[name][i] / self.times["ours"][i]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "lengths": self.lengths,
            "seconds": self.times,
            "errors": self.errors,
            "slopes_from_1024": self.slopes(1024),
            "slopes_all": self.slopes(0),
            "memory": self.memory,
        }


def run_scan_section(kind: str, args: argparse.Namespace) -> Section:
    """Scan alone: Mamba-1's (kind "scan") or the LRU's (kind "lru-scan")."""
    channels = 2 * args.d_model
    if kind == "scan":
        title = f"Mamba-1 selective scan: B {args.batch}, {channels} channels, N {args.d_state}"
        scans, make = SCANS, lambda n: scan_inputs(args.batch, n, channels, args.d_state)
    else:
        title = f"LRU scan: B {args.batch}, {args.d_state} complex states"
        scans, make = LRU_SCANS, lambda n: lru_scan_inputs(args.batch, n, args.d_state)
    section = Section(title)
    print(section.title, flush=True)
    for length in args.lengths:
        inputs = make(length)
        runs = {n: fwd_bwd(lambda f=f, i=inputs: f(*i), inputs) for n, f in scans.items()}
        medians = interleaved_medians(runs, args.repeats)
        section.add(length, medians, scan_errors(scans, inputs))
    if kind == "scan" and not args.no_memory:
        longest = max(args.lengths)
        section.memory = measure_memory(list(SCANS), longest, args)
        print_memory(section, longest)
    return section


def print_memory(section: Section, length: int) -> None:
    for name, m in section.memory.items():
        if "error" in m:
            print(f"  memory {name} at L {length}: probe failed: {m['error']}")
            continue
        print(
            f"  memory at L {length} ({name}):"
            f" peak RSS +{m['peak_rss_extra'] / 2**20:7.1f} MiB"
            f", autograd-saved {m['autograd_saved'] / 2**20:7.1f} MiB"
        )


def run_block_section(kind: str, args: argparse.Namespace) -> Section:
    title = {
        "mamba": "Mamba-1 block",
        "mamba2": "Mamba-2 block",
        "mamba3": "Mamba-3 block (trapezoidal, rotary, SISO)",
        "lru": "LRU block",
    }[kind]
    section = Section(f"{title}: B {args.batch}, d_model {args.d_model}, d_state {args.d_state}")
    print(section.title, flush=True)
    modules = block_contenders(kind, args.d_model, args.d_state)
    for length in args.lengths:
        x = torch.randn(
            args.batch, length, args.d_model, generator=torch.Generator().manual_seed(2)
        )
        runs = {n: fwd_bwd(lambda m=m, x=x: m(x), list(m.parameters())) for n, m in modules.items()}
        medians = interleaved_medians(runs, args.repeats)
        section.add(length, medians, block_errors(modules, x))
    if kind == "mamba3" and not args.no_memory:
        longest = max(args.lengths)
        section.memory = measure_memory([f"mamba3:{n}" for n in modules], longest, args)
        print_memory(section, longest)
    return section


# -- verdicts ----------------------------------------------------------------------------------
def verdicts(sections: dict[str, Section], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The issue's targets, each with the figure measured in this run."""
    scan, lru = sections["scan"], sections["lru-scan"]
    checks: list[tuple[str, float | None, float, str]] = []  # (what, value, bound, ">=" or "<=")
    for length, bound in ((1024, 8.0), (4096, 12.0)):
        checks.append(
            (f"scan: mambapy/ours at L {length}", scan.ratio("mambapy", length), bound, ">=")
        )
    for length in (1024, 4096):
        for loop in ("loop", "reference"):
            checks.append((f"scan: {loop}/ours at L {length}", scan.ratio(loop, length), 2.5, ">="))
    for key in ("output", "gradients"):
        worst = max((e[key] for e in scan.errors), default=None)
        checks.append((f"scan: max abs {key} error vs reference, all L", worst, 1e-4, "<="))
    worst_rel = max(
        (
            e["gradients_vs_float64"] / max(e["reference_gradients_vs_float64"], 1e-30)
            for e in scan.errors
        ),
        default=None,
    )
    checks.append(
        ("scan (not an issue target): ours' float64 error / reference's", worst_rel, 2.0, "<=")
    )
    mem = scan.memory
    if "mambapy" in mem and "peak_rss_extra" in mem.get("mambapy", {}) and "ours" in mem:
        share = mem["ours"]["peak_rss_extra"] / max(1, mem["mambapy"]["peak_rss_extra"])
        checks.append(
            (f"scan: extra peak memory ours/mambapy at L {max(args.lengths)}", share, 0.25, "<=")
        )
    checks.append(("lru-scan: reference/ours at L 4096", lru.ratio("reference", 4096), 10.0, ">="))
    # Issue 17's targets (its LRU one, at 128 states, is in lru_states_verdict).
    checks.append(("17: scan mambapy/ours at L 4096", scan.ratio("mambapy", 4096), 25.0, ">="))
    bound = traffic_bound_s(args, 4096)
    if bound is not None and 4096 in scan.lengths:
        ours = scan.times["ours"][scan.lengths.index(4096)]
        what = f"17: scan ours / memory-traffic bound ({1e3 * bound:.1f} ms) at L 4096"
        checks.append((what, ours / bound, 3.0, "<="))
    if "mamba2" in sections:
        ratio = sections["mamba2"].ratio("reference", 1024)
        checks.append(("17: mamba2 block reference/ours at L 1024", ratio, 4.0, ">="))
    for name, section in sections.items():
        if name == "mamba3":  # its own targets (issue 12), in mamba3_verdicts
            continue
        s = section.slopes(1024).get("ours")
        checks.append((f"{name}: slope of log time vs log L from 1024 (ours)", s, 1.2, "<="))
    return print_checks("targets", checks)


def lru_states_verdict(section: Section, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Issue 17's LRU target, which is at 128 complex states (`--sections lru-scan --d-state
    128`); at other state counts there is nothing to check."""
    if args.d_state != 128:
        return []
    ratio = section.ratio("reference", 4096)
    return print_checks(
        "targets", [("17: lru-scan reference/ours at L 4096, 128 states", ratio, 5.0, ">=")]
    )


def mamba3_verdicts(section: Section, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Issue 12's targets for the Mamba-3 block, each with the figure measured in this run."""
    checks: list[tuple[str, float | None, float, str]] = [
        ("mamba3: reference/ours at L 1024", section.ratio("reference", 1024), 5.0, ">="),
        ("mamba3: reference/ours at L 4096", section.ratio("reference", 4096), 8.0, ">="),
        (
            "mamba3: slope of log time vs log L from 1024 (ours)",
            section.slopes(1024).get("ours"),
            1.15,
            "<=",
        ),
    ]
    mem, longest = section.memory, max(args.lengths)
    ours, ref = mem.get("mamba3:ours", {}), mem.get("mamba3:reference", {})
    if "peak_rss_extra" in ours and "peak_rss_extra" in ref:
        share = ours["peak_rss_extra"] / max(1, ref["peak_rss_extra"])
        what = f"mamba3: extra peak memory ours/reference at L {longest}"
        checks.append((what, share, 0.25, "<="))
    return print_checks("mamba3 targets", checks)


def print_checks(title: str, checks: list[tuple[str, float | None, float, str]]) -> list[dict]:
    out = []
    print(f"\n{title}")
    for what, value, bound, op in checks:
        if value is None:
            print(f"  [ n/a ] {what}: not measured in this run")
            out.append({"target": what, "value": None, "bound": bound, "met": None})
            continue
        met = value >= bound if op == ">=" else value <= bound
        print(f"  [{'met ' if met else 'MISS'}] {what}: {value:.3g} (target {op} {bound:g})")
        out.append({"target": what, "value": value, "bound": bound, "met": met})
    return out


def stream_bandwidth() -> float:
    """Bytes/s one thread moves in a large copy (read + write): the memory roofline."""
    src, dst = torch.ones(64 * 2**20), torch.empty(64 * 2**20)  # 256 MiB each
    dst.copy_(src)
    best = math.inf
    for _ in range(3):
        start = time.process_time()
        dst.copy_(src)
        best = min(best, time.process_time() - start)
    return 2 * src.numel() * 4 / best


def traffic_bound_s(args: argparse.Namespace, length: int) -> float | None:
    """Least memory traffic of one scan forward+backward, at the measured copy bandwidth.

    Forward reads u, Δ (B·L·D floats each) and B, C (B·L·N) and writes y (B·L·D); backward
    reads u, Δ, B, C and y' and writes u', Δ', B', C'. That is 8·B·L·D + 6·B·L·N floats:
    everything else (states, decays, adjoints) can stay in cache, as it does in the C kernel.
    """
    if length not in args.lengths:
        return None
    channels = 2 * args.d_model
    floats = 8 * args.batch * length * channels + 6 * args.batch * length * args.d_state
    bandwidth = BANDWIDTH.setdefault("bytes_per_s", stream_bandwidth())
    return floats * 4 / bandwidth


BANDWIDTH: dict[str, float] = {}


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "mambapy": mambapy_pscan is not None,
        "load_average": os.getloadavg(),
        "native_kernels": native.INFO.reason or str(native.INFO.path),
        "copy_bandwidth_bytes_per_s": BANDWIDTH.get("bytes_per_s"),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L 256 and 1024 only, 2 repeats")
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="what to run"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lengths is None:
        args.lengths = [256, 1024] if args.quick else [256, 1024, 4096]
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.length, args)))
        return
    env = environment(args)
    print(
        f"torch {env['torch']}, {args.threads} thread(s), float32,"
        f" load average {env['load_average']}"
    )
    print("(shared machine: absolute times are noisy; ratios are measured in one interleaved run)")
    if mambapy_pscan is None:
        print(MAMBAPY_MISSING)
    sections: dict[str, Section] = {}
    for name in args.sections:
        print()
        scan_like = name in ("scan", "lru-scan")
        sections[name] = (run_scan_section if scan_like else run_block_section)(name, args)
        for n, s in sections[name].slopes(1024).items():
            print(f"  slope log t / log L from 1024: {n} {s:.2f}")
    results = {
        "environment": env | {"load_average_end": os.getloadavg()},
        "sections": {n: s.to_dict() for n, s in sections.items()},
        "targets": verdicts(sections, args) if {"scan", "lru-scan"} <= set(sections) else [],
    }
    if "lru-scan" in sections:
        results["targets"] += lru_states_verdict(sections["lru-scan"], args)
    if "mamba3" in sections:
        results["targets"] += mamba3_verdicts(sections["mamba3"], args)
    if args.json:
        from seqbench.harness.records import atomic_write_json

        atomic_write_json(args.json, results)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
