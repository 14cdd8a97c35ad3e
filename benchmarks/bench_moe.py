"""MoE top-k-of-E forward+backward against a dense SwiGLU with the same active width.

Why this reference: an MoE's promise is k experts' worth of compute per token whatever E is.
The dense SwiGLU whose hidden width equals k * d_expert does exactly the useful arithmetic of
the active experts, so the ratio MoE / dense is the price of routing (router, sort, gather,
scatter). Target: <= 1.5x. Also sweeps E at fixed k to show the time stays flat.

    python benchmarks/bench_moe.py [--tokens 4096] [--d-model 256] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_seconds

from seqbench.architectures.mlp import SwiGLU
from seqbench.architectures.moe import MoE


def fwd_bwd_time(module: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    def step() -> None:
        module.zero_grad(set_to_none=True)
        y = module(x)
        loss = y.pow(2).mean()
        if hasattr(module, "aux_loss"):
            loss = loss + module.aux_loss()
        loss.backward()

    return median_seconds(step, repeats=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--sweep-experts", type=int, nargs="*", default=[4, 8, 16, 32])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    x = torch.randn(args.batch, args.seq_len, args.d_model)  # (B, L, D)
    moe = MoE(args.d_model, n_experts=args.experts, top_k=args.top_k)
    dense = SwiGLU(args.d_model, d_hidden=args.top_k * moe.d_expert)
    t_dense = fwd_bwd_time(dense, x, args.repeats)
    t_moe = fwd_bwd_time(moe, x, args.repeats)
    tokens = args.batch * args.seq_len
    print(
        f"tokens {tokens}, d_model {args.d_model}, expert width {moe.d_expert}, "
        f"dense width {args.top_k * moe.d_expert}, threads {args.threads}"
    )
    print(f"dense SwiGLU fwd+bwd  {t_dense * 1e3:8.2f} ms")
    print(f"MoE top-{args.top_k}-of-{args.experts} fwd+bwd {t_moe * 1e3:8.2f} ms")
    ratio = t_moe / t_dense
    verdict = "meets" if ratio <= 1.5 else "MISSES"
    print(f"ratio MoE / dense = {ratio:.2f}x  ({verdict} the <= 1.5x target)")

    print(f"\nexperts sweep at top-{args.top_k} (time should stay flat as E grows):")
    for n_experts in args.sweep_experts:
        m = MoE(args.d_model, n_experts=n_experts, top_k=args.top_k, d_expert=moe.d_expert)
        t = fwd_bwd_time(m, x, args.repeats)
        print(f"  E={n_experts:3d}  {t * 1e3:8.2f} ms  ({t / t_dense:.2f}x dense)")


if __name__ == "__main__":
    main()
