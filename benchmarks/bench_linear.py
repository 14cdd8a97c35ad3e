"""The linear-attention family, forward+backward on CPU: chunked path against the sequential loop.

For each mixer (linear_attention, retnet, gla, deltanet, gated_deltanet) at its preset's
hyper-parameters, batch 8, d_model 128, float32, one thread: the same weights run with
impl="chunked" and impl="reference" (the loop over t). Reported per mixer:
  - CPU seconds of one forward+backward at L 1024 and 4096 (medians, contenders interleaved;
    a contender slower than 4 s is timed once there, so the loop at 4096 runs once),
  - the ratio loop / chunked, and the chunked path's slope of log time vs log L (1024 -> 4096),
  - max abs differences of outputs and gradients against the loop,
  - extra peak RSS and autograd-saved bytes of one forward+backward at L 4096, each contender in
    a fresh subprocess (bench_recurrent's method), for the kernel alone on the mixer's own
    q/k/v/β/g (as bench_recurrent measures the scan alone) and for the whole mixer, whose
    projections, convolutions and norms cost both paths the same.
The targets of issue 13 are checked at the end ([met ]/[MISS] with the measured figure).

    python benchmarks/bench_linear.py                      # all mixers, L 1024 and 4096
    python benchmarks/bench_linear.py --mixers gla --lengths 256 1024 --no-memory
    python benchmarks/bench_linear.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from bench_recurrent import (
    fwd_bwd,
    interleaved_medians,
    outputs_and_grads,
    peak_rss_bytes,
    reset_peak_rss,
    slope,
)
from torch import nn

from seqbench.architectures import MIXERS, PRESETS
from seqbench.architectures.scans.chunked_linear import (
    delta_rule_chunked,
    delta_rule_ref,
    linear_attention_chunked,
    linear_attention_ref,
)

MIXER_NAMES = ("linear_attention", "retnet", "gla", "deltanet", "gated_deltanet")
TARGETS = {"ratio_1024": 5.0, "ratio_4096": 10.0, "slope": 1.15, "memory_share": 0.25}


def make_pair(name: str, d_model: int) -> dict[str, nn.Module]:
    """The mixer at its preset's hyper-parameters, chunked and loop, with identical weights."""
    kwargs = PRESETS.get(name).config.mixer_kwargs.get(name, {})
    torch.manual_seed(0)
    cls = MIXERS.get(name)
    chunked, loop = cls(d_model, impl="chunked", **kwargs), cls(d_model, impl="reference", **kwargs)
    loop.load_state_dict(chunked.state_dict())
    return {"chunked": chunked, "loop": loop}


def inputs(args: argparse.Namespace, length: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(2)
    return torch.randn(args.batch, length, args.d_model, generator=gen)


def kernel_only(module: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], Any]:
    """The mixer's own kernel inputs for x (as leaves) and a call running its kernel on them."""
    with torch.no_grad():
        f = module._features(x, None)
    parts = [f.q, f.k, f.v] + [t for t in (f.beta, f.g) if t is not None]
    leaves = [t.detach().clone().requires_grad_(True) for t in parts]
    if module.delta_rule:
        kernel = delta_rule_ref if module.impl == "reference" else delta_rule_chunked
        args = [*leaves[:4], leaves[4] if len(leaves) > 4 else None]
    else:
        kernel = linear_attention_ref if module.impl == "reference" else linear_attention_chunked
        args = [*leaves[:3], leaves[3] if len(leaves) > 3 else None]
    return leaves, lambda: kernel(*args)[0]


def memory_probe(
    name: str, contender: str, length: int, args: argparse.Namespace, scope: str
) -> dict:
    """In a fresh process: extra peak RSS and autograd-saved bytes of one forward+backward of
    the whole mixer (scope "mixer") or of its kernel alone on the mixer's inputs ("kernel")."""
    module = make_pair(name, args.d_model)[contender]
    x = inputs(args, length)
    module(x[:, :8]).sum().backward()  # warm up allocator and kernels on a short input
    if scope == "kernel":
        _, call = kernel_only(module, x)
        module = lambda _x: call()  # noqa: E731
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    base = reset_peak_rss()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = module(x)
    y.sum().backward()
    return {"peak_rss_extra": peak_rss_bytes() - base, "autograd_saved": saved}


def measure_memory(name: str, length: int, args: argparse.Namespace) -> dict[str, dict]:
    """{"mixer chunked": {...}, "mixer loop": ..., "kernel chunked": ..., "kernel loop": ...}."""
    out = {}
    for scope in ("kernel", "mixer"):
        for contender in ("chunked", "loop"):
            cmd = [sys.executable, __file__, "--memory-probe", name, contender, scope]
            cmd += ["--length", str(length), "--batch", str(args.batch)]
            cmd += ["--d-model", str(args.d_model)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            key = f"{scope} {contender}"
            if done.returncode:
                out[key] = {"error": done.stderr.strip().splitlines()[-1:]}
            else:
                out[key] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def run_mixer(name: str, args: argparse.Namespace) -> dict[str, Any]:
    pair = make_pair(name, args.d_model)
    result: dict[str, Any] = {"lengths": [], "seconds": {"chunked": [], "loop": []}, "errors": []}
    print(f"\n{name}: B {args.batch}, d_model {args.d_model}", flush=True)
    for length in args.lengths:
        x = inputs(args, length)
        runs = {n: fwd_bwd(lambda m=m, x=x: m(x), list(m.parameters())) for n, m in pair.items()}
        medians = interleaved_medians(runs, args.repeats)
        result["lengths"].append(length)
        for n, t in medians.items():
            result["seconds"][n].append(t)
        errors = "(errors not measured at this length)"
        if length <= args.errors_up_to:  # the loop's extra run costs most at the longest L
            ours, ref = (
                outputs_and_grads(lambda m=m, x=x: m(x), list(m.parameters()))
                for m in pair.values()
            )
            y_err = float((ours[0] - ref[0]).abs().max())
            g_err = max(float((a - b).abs().max()) for a, b in zip(ours[1], ref[1], strict=True))
            result["errors"].append({"length": length, "output": y_err, "gradients": g_err})
            errors = f"max|err| y {y_err:.1e} grads {g_err:.1e}"
        print(
            f"  L {length:5d}  chunked {medians['chunked']:8.3f}s  loop {medians['loop']:8.3f}s"
            f"  loop/chunked {medians['loop'] / medians['chunked']:6.1f}x  {errors}",
            flush=True,
        )
    if len(args.lengths) > 1:
        result["slope_chunked"] = slope(args.lengths, result["seconds"]["chunked"])
        result["slope_loop"] = slope(args.lengths, result["seconds"]["loop"])
        print(
            f"  slope log t / log L: chunked {result['slope_chunked']:.2f},"
            f" loop {result['slope_loop']:.2f}"
        )
    if not args.no_memory:
        longest = max(args.lengths)
        result["memory"] = measure_memory(name, longest, args)
        for contender, m in result["memory"].items():
            if "error" in m:
                print(f"  memory {contender} at L {longest}: probe failed: {m['error']}")
                continue
            print(
                f"  memory at L {longest} ({contender}): peak RSS +"
                f"{m['peak_rss_extra'] / 2**20:8.1f} MiB, autograd-saved"
                f" {m['autograd_saved'] / 2**20:8.1f} MiB"
            )
    return result


def verdicts(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 13's targets per mixer, each with the figure measured in this run."""
    rows = []
    for name, r in results.items():
        checks: list[tuple[str, float | None, float, str]] = []
        for length, key in ((1024, "ratio_1024"), (4096, "ratio_4096")):
            value = None
            if length in r["lengths"]:
                i = r["lengths"].index(length)
                value = r["seconds"]["loop"][i] / r["seconds"]["chunked"][i]
            checks.append((f"loop/chunked at L {length}", value, TARGETS[key], ">="))
        checks.append(
            ("chunked slope 1024 -> 4096", r.get("slope_chunked"), TARGETS["slope"], "<=")
        )
        mem = r.get("memory", {})
        for scope in ("kernel", "mixer"):
            pair = [mem.get(f"{scope} {c}", {}) for c in ("chunked", "loop")]
            share = None
            if all("peak_rss_extra" in m for m in pair):
                share = pair[0]["peak_rss_extra"] / max(1, pair[1]["peak_rss_extra"])
            what = f"extra peak RSS chunked/loop, {scope}"
            checks.append((what, share, TARGETS["memory_share"], "<="))
        for what, value, bound, op in checks:
            met = None if value is None else (value >= bound if op == ">=" else value <= bound)
            label = " n/a " if met is None else ("met " if met else "MISS")
            shown = "not measured" if value is None else f"{value:.3g}"
            print(f"  [{label}] {name}: {what}: {shown} (target {op} {bound:g})")
            rows.append({"mixer": name, "target": what, "value": value, "bound": bound, "met": met})
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixers", nargs="+", choices=MIXER_NAMES, default=list(MIXER_NAMES))
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds")
    parser.add_argument(
        "--errors-up-to", type=int, default=1024, help="compare outputs/gradients up to this L"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    parser.add_argument("--memory-probe", nargs=3, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--length", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    if args.memory_probe:
        name, contender, scope = args.memory_probe
        print(json.dumps(memory_probe(name, contender, args.length, args, scope)))
        return
    print(
        f"torch {torch.__version__}, 1 thread, float32, CPU seconds (process_time),"
        f" load average {os.getloadavg()}"
    )
    results = {name: run_mixer(name, args) for name in args.mixers}
    print("\ntargets")
    rows = verdicts(results)
    if args.json:
        from seqbench.harness.records import atomic_write_json

        payload = {"load_average_end": os.getloadavg(), "mixers": results, "targets": rows}
        atomic_write_json(args.json, payload)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
