"""Causal attention at small heads, forward+backward on CPU: our C kernel against PyTorch's.

The attention presets at d_model 64 have 8 heads of 8 numbers. This measures one attention
operator (no projections) at those shapes: batch 16, 8 heads of 8, float32, one thread, for
  c-native   attention_native (architectures/scans/attention_kernels.c), what impl="sdpa" runs;
  torch      scaled_dot_product_attention (PyTorch's CPU flash kernel), what impl="torch" runs;
             with --window, the blocked banded SDPA of attention_sliding;
  reference  the explicit softmax over the materialised L x L scores (up to --reference-max-len).
Prints CPU seconds (medians, contenders interleaved), the ratio torch / c-native measured in
this run, and max abs errors of outputs and every gradient against a float64 reference
(up to --float64-max-len).

    python benchmarks/bench_attention.py                 # L 64, 256, 1024; full causal
    python benchmarks/bench_attention.py --window 64     # sliding window
    python benchmarks/bench_attention.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_recurrent import (  # the sibling script: shared timing and error helpers
    compare,
    fwd_bwd,
    interleaved_medians,
    outputs_and_grads,
)

from seqbench.architectures.attention import (
    attention_reference,
    attention_sdpa,
    attention_sliding,
)
from seqbench.architectures.scans import attention_native, native


def contenders(window: int | None, with_reference: bool) -> dict:
    """name -> fn(q, k, v) for the contenders at this window."""
    runs = {
        "c-native": lambda q, k, v: attention_native.attention_native(q, k, v, window),
        "torch": (
            (lambda q, k, v: attention_sliding(q, k, v, window))
            if window is not None
            else attention_sdpa
        ),
    }
    if with_reference:
        runs["reference"] = lambda q, k, v: attention_reference(q, k, v, window=window)
    return runs


def inputs(args: argparse.Namespace, length: int, dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, args.heads, length, args.head_dim)
    return [torch.randn(shape, generator=g, dtype=dtype).requires_grad_() for _ in range(3)]


def measure(args: argparse.Namespace, length: int) -> dict:
    with_ref = length <= args.reference_max_len
    fns = contenders(args.window, with_ref)
    qkv = inputs(args, length, torch.float32)
    runs = {name: fwd_bwd(lambda fn=fn: fn(*qkv), qkv) for name, fn in fns.items()}
    seconds = interleaved_medians(runs, args.repeats)
    row = {
        "length": length,
        "seconds": seconds,
        "torch_over_native": seconds["torch"] / seconds["c-native"],
    }
    if length <= args.float64_max_len:
        exact_in = [t.detach().double().requires_grad_() for t in qkv]
        exact = outputs_and_grads(
            lambda: attention_reference(*exact_in, window=args.window), exact_in
        )
        row["errors_vs_float64"] = {
            name: compare(outputs_and_grads(lambda fn=fn: fn(*qkv), qkv), exact)
            for name, fn in fns.items()
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=8)
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reference-max-len", type=int, default=1024)
    parser.add_argument("--float64-max-len", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not native.available() or args.head_dim > attention_native.HD:
        sys.exit(f"error: the C kernel cannot run here ({native.INFO.reason or 'head_dim > 8'})")
    print(
        f"B {args.batch}, {args.heads} heads of {args.head_dim}, window {args.window}, "
        f"{args.threads} thread(s), torch {torch.__version__}; CPU seconds, medians"
    )
    rows = []
    for length in args.lengths:
        row = measure(args, length)
        rows.append(row)
        times = "  ".join(f"{name} {s * 1e3:8.1f} ms" for name, s in row["seconds"].items())
        print(f"L {length:5d}  {times}  torch / c-native {row['torch_over_native']:.2f}x")
        for name, (out, grad) in row.get("errors_vs_float64", {}).items():
            print(
                f"          {name:10s} max abs error vs float64: output {out:.1e}, grads {grad:.1e}"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
