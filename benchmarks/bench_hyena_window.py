"""Hyena and sliding-window attention, forward+backward on CPU: fast paths against references.

Sections (batch 8, d_model 128, float32, one thread by default):
  conv       Hyena's long convolution alone (128 channels, filter as long as the sequence):
             FFT convolution (ours) vs the direct causal convolution (reference).
  hyena      The whole Hyena layer: impl="fft" vs impl="reference" (same weights).
  window-op  Sliding-window attention alone (8 heads of 16, window 64): the blocked banded SDPA
             (ours) vs the explicit masked softmax over the L x L scores (reference).
  window     The attention layer with window=64: impl="sdpa" vs impl="reference".
Each prints times, ratios measured in this run, max abs errors against the reference (outputs
and every gradient), and the slope of log time vs log L. The operator sections also measure the
extra peak memory of one forward+backward at the longest L, in a fresh subprocess per contender.
The issue-13 targets are checked at the end ([met ]/[MISS] with the measured figure); they are
about the operators, and the same bounds are shown for the whole layers as well.

float64: each row compares ours and the reference with a float64 run of the reference, up to
L 1024 (--float64-max-len): float64 conv1d has no fast CPU kernel (8x float32's time at L 512).

Memory guard: the reference attention materialises B * 8 * L^2 scores (4 GiB per tensor at
B 8, L 4096, a few of them alive at once), too much for a shared machine. The window sections
therefore run at the largest batch (<= --batch) whose score tensor fits --max-scores-mib at the
longest L, the same batch at every L, and print it. Times are CPU seconds of this process, with
contenders interleaved (see bench_recurrent.py for why).

    python benchmarks/bench_hyena_window.py               # L 1024 and 4096
    python benchmarks/bench_hyena_window.py --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recurrent import (  # the sibling script: shared timing, error and memory helpers
    Section,
    compare,
    environment,
    fwd_bwd,
    interleaved_medians,
    outputs_and_grads,
    peak_rss_bytes,
    reset_peak_rss,
)

from seqbench.architectures.attention import Attention, attention_reference, attention_sliding
from seqbench.architectures.hyena import Hyena, direct_causal_conv, fft_causal_conv

SECTIONS = ("conv", "hyena", "window-op", "window")
OPERATORS = ("conv", "window-op")
N_HEADS = 8


@dataclass
class Case:
    """One section at one length: the contenders and what their gradients are taken of."""

    fns: dict[str, Callable[[], Tensor]]
    wrt: dict[str, list[Tensor]]
    exact: Callable[[], Tensor] | None  # the reference in float64, when it fits in memory
    exact_wrt: list[Tensor]


def _inputs(shapes: list[tuple[int, ...]], seed: int = 0) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).requires_grad_(True) for s in shapes]


def _double(tensors: list[Tensor]) -> list[Tensor]:
    return [t.detach().double().requires_grad_(True) for t in tensors]


def make_case(section: str, length: int, batch: int, args: argparse.Namespace) -> Case:
    D, W, hd = args.d_model, args.window, args.d_model // N_HEADS
    # the float64 reference: up to --float64-max-len, and for attention where its scores fit
    scores64 = batch * N_HEADS * length**2 * 8
    run64 = length <= args.float64_max_len and (
        section in ("conv", "hyena") or scores64 <= args.max_scores_mib * 2**20
    )
    if section in OPERATORS:
        if section == "conv":
            inputs = _inputs([(batch, D, length), (D, length)])
            fast, ref = fft_causal_conv, direct_causal_conv
        else:
            inputs = _inputs([(batch, N_HEADS, length, hd)] * 3)
            fast = lambda q, k, v: attention_sliding(q, k, v, W)  # noqa: E731
            ref = lambda q, k, v: attention_reference(q, k, v, window=W)  # noqa: E731
        exact = _double(inputs)
        return Case(
            {"ours": lambda: fast(*inputs), "reference": lambda: ref(*inputs)},
            {"ours": inputs, "reference": inputs},
            (lambda: ref(*exact)) if run64 else None,
            exact,
        )
    torch.manual_seed(0)
    if section == "hyena":
        ours, ref_m = Hyena(D), Hyena(D, impl="reference")
    else:
        ours = Attention(D, n_heads=N_HEADS, window=W)
        ref_m = Attention(D, n_heads=N_HEADS, window=W, impl="reference")
    ref_m.load_state_dict(ours.state_dict())
    exact_m = copy.deepcopy(ref_m).double()
    x = torch.randn(batch, length, D, generator=torch.Generator().manual_seed(2))
    return Case(
        {"ours": lambda: ours(x), "reference": lambda: ref_m(x)},
        {"ours": list(ours.parameters()), "reference": list(ref_m.parameters())},
        (lambda: exact_m(x.double())) if run64 else None,
        list(exact_m.parameters()),
    )


def case_errors(case: Case) -> dict[str, float | None]:
    """Ours vs the float32 reference, and both vs the float64 reference where it was run."""
    ours = outputs_and_grads(case.fns["ours"], case.wrt["ours"])
    ref = outputs_and_grads(case.fns["reference"], case.wrt["reference"])
    y, g = compare(ours, ref)
    out: dict[str, float | None] = {"output": y, "gradients": g}
    out |= dict.fromkeys(("gradients_vs_float64", "reference_gradients_vs_float64"))
    if case.exact is not None:
        exact = outputs_and_grads(case.exact, case.exact_wrt)
        out["gradients_vs_float64"] = compare(ours, exact)[1]
        out["reference_gradients_vs_float64"] = compare(ref, exact)[1]
        out["gradient_scale"] = max(float(t.abs().max()) for t in exact[1])
    return out


class BenchSection(Section):
    """bench_recurrent's Section, printing the float64 comparison only where it was run."""

    def print_row(self, length: int, medians: dict[str, float], errors: dict[str, Any]) -> None:
        cells = [f"L {length:5d}"] + [f"{n} {t:8.3f}s" for n, t in medians.items()]
        ratio = medians["reference"] / medians["ours"]
        errs = f"max|err| vs ref: y {errors['output']:.1e} grads {errors['gradients']:.1e}"
        if errors["gradients_vs_float64"] is not None:
            errs += (
                f" (grads vs float64: ours {errors['gradients_vs_float64']:.1e},"
                f" ref {errors['reference_gradients_vs_float64']:.1e};"
                f" scale {errors['gradient_scale']:.3g})"
            )
        print(f"  {'  '.join(cells)}  reference/ours {ratio:6.1f}x  {errs}", flush=True)


def section_batch(section: str, args: argparse.Namespace) -> int:
    """The batch for a section: --batch, or less where the reference's scores would not fit."""
    if section in ("conv", "hyena"):
        return args.batch
    per_sample = N_HEADS * max(args.lengths) ** 2 * 4
    return max(1, min(args.batch, args.max_scores_mib * 2**20 // per_sample))


TITLES = {
    "conv": "Hyena long convolution: FFT (ours) vs direct causal conv (reference)",
    "hyena": "Hyena layer: impl=fft (ours) vs impl=reference",
    "window-op": "sliding-window attention op: blocked banded SDPA (ours) vs masked softmax",
    "window": "attention layer, window: impl=sdpa (ours) vs impl=reference",
}


def run_section(section: str, args: argparse.Namespace) -> BenchSection:
    batch = section_batch(section, args)
    extra = f", {N_HEADS} heads, window {args.window}" if section.startswith("window") else ""
    result = BenchSection(f"{TITLES[section]}: B {batch}, d_model {args.d_model}{extra}")
    print(result.title, flush=True)
    if batch < args.batch:
        print(
            f"  (B {batch}, not {args.batch}: at L {max(args.lengths)} the reference's scores"
            f" need {args.batch * N_HEADS * max(args.lengths) ** 2 * 4 / 2**30:.1f} GiB per"
            f" tensor at B {args.batch}; --max-scores-mib {args.max_scores_mib})"
        )
    for length in args.lengths:
        case = make_case(section, length, batch, args)
        runs = {name: fwd_bwd(fn, case.wrt[name]) for name, fn in case.fns.items()}
        medians = interleaved_medians(runs, args.repeats)
        result.add(length, medians, case_errors(case))
    if section in OPERATORS and not args.no_memory:
        longest = max(args.lengths)
        result.memory = measure_memory(section, longest, batch, args)
        for name, m in result.memory.items():
            if "error" in m:
                print(f"  memory {name} at L {longest}: probe failed: {m['error']}")
                continue
            print(
                f"  memory at L {longest} ({name}): peak RSS +{m['peak_rss_extra'] / 2**20:7.1f}"
                f" MiB, autograd-saved {m['autograd_saved'] / 2**20:7.1f} MiB"
            )
    return result


# -- memory (fresh subprocess per contender) ----------------------------------------------------
def memory_probe(section: str, name: str, length: int, args: argparse.Namespace) -> dict:
    """In a fresh process: extra peak RSS and autograd-saved bytes of one forward+backward."""
    warm = make_case(section, 64, 1, args)  # load kernels and allocator pools at a small size
    fwd_bwd(warm.fns[name], warm.wrt[name])()
    case = make_case(section, length, args.batch, args)
    saved = 0

    def pack(t: Tensor) -> Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    base = reset_peak_rss()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = case.fns[name]()
    y.sum().backward()
    return {"peak_rss_extra": peak_rss_bytes() - base, "autograd_saved": saved}


def measure_memory(section: str, length: int, batch: int, args: argparse.Namespace) -> dict:
    results = {}
    for name in ("ours", "reference"):
        cmd = [sys.executable, __file__, "--memory-probe", f"{section}:{name}"]
        cmd += ["--length", str(length), "--batch", str(batch), "--d-model", str(args.d_model)]
        cmd += ["--window", str(args.window), "--threads", str(args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            results[name] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# -- verdicts ----------------------------------------------------------------------------------
def verdicts(sections: dict[str, BenchSection], args: argparse.Namespace) -> list[dict]:
    """Issue 13's targets, each with the figure measured in this run."""
    checks: list[tuple[str, float | None, float, str]] = []
    longest = max(args.lengths)
    for name, section in sections.items():
        what = name if name in OPERATORS else f"{name} (layer; the targets are the operator's)"
        for length, bound in ((1024, 5.0), (4096, 10.0)):
            checks.append(
                (
                    f"{what}: reference/ours at L {length}",
                    section.ratio("reference", length),
                    bound,
                    ">=",
                )
            )
        checks.append(
            (
                f"{what}: slope of log time vs log L from 1024 (ours)",
                section.slopes(1024).get("ours"),
                1.15,
                "<=",
            )
        )
        mem = section.memory
        if all("peak_rss_extra" in mem.get(n, {}) for n in ("ours", "reference")):
            share = mem["ours"]["peak_rss_extra"] / max(1, mem["reference"]["peak_rss_extra"])
            checks.append(
                (f"{what}: extra peak memory ours/reference at L {longest}", share, 0.25, "<=")
            )
    out = []
    print("\ntargets")
    for what, value, bound, op in checks:
        if value is None:
            print(f"  [ n/a ] {what}: not measured in this run")
            out.append({"target": what, "value": None, "bound": bound, "met": None})
            continue
        met = value >= bound if op == ">=" else value <= bound
        print(f"  [{'met ' if met else 'MISS'}] {what}: {value:.3g} (target {op} {bound:g})")
        out.append({"target": what, "value": value, "bound": bound, "met": met})
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-scores-mib", type=int, default=512, help="see 'Memory guard'")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument(
        "--float64-max-len",
        type=int,
        default=1024,
        help="float64 reference only up to this L (float64 conv1d has no fast CPU kernel: "
        "8x float32's time at L 512, minutes at 4096; tests hold float64 equality anyway)",
    )
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_probe:
        section, name = args.memory_probe.split(":")
        print(json.dumps(memory_probe(section, name, args.length, args)))
        return
    env = environment(args)
    print(f"torch {env['torch']}, {args.threads} thread(s), float32, load {env['load_average']}")
    print("(shared machine: absolute times are noisy; ratios are measured in one interleaved run)")
    sections: dict[str, BenchSection] = {}
    for name in args.sections:
        print()
        sections[name] = run_section(name, args)
        for n, s in sections[name].slopes(1024).items():
            print(f"  slope log t / log L from 1024: {n} {s:.2f}")
    results = {
        "environment": env | {"load_average_end": os.getloadavg()},
        "sections": {n: s.to_dict() for n, s in sections.items()},
        "targets": verdicts(sections, args),
    }
    if args.json:
        from seqbench.harness.records import atomic_write_json

        atomic_write_json(args.json, results)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
