"""Would `torch.compile` or training a configuration's seeds as one batched model make the
`paper` suite cheaper? Measured on the suite's own most expensive steps.

The suite is ~270 worker-minutes of training on this 2-core CPU (docs/findings.md, runs 16 and
18), about a fifth of it memorisation. Issue 24 names two ways to make it cheaper
rather than smaller; this measures both against the step the harness takes today, one thread,
each variant in a fresh process (the C kernels are chosen once per process):

  eager        the harness's step: C kernels, fused AdamW, per-model gradient clipping
  eager-torch  the same step on the PyTorch fallbacks (SEQBENCH_NATIVE=0)
  compile      torch.compile of forward + loss on the fallbacks (Dynamo stops at every
               ctypes kernel call, so the C kernels are off); warm-up = compile time
  seeds-vmap   SEEDS models (one per seed, own data) stacked with torch.func and trained as
               one: vmap of grad, per-model clipping, one fused AdamW; fallbacks (vmap does
               not reach the ctypes kernels); time per model. Before timing, each model's
               vmapped loss is checked against its own eager loss (the `check` column).

Printed per case: ms per training step per model (median of rounds), the ratio to `eager`
measured in the same run (> 1 = slower), and the warm-up seconds.

    python benchmarks/bench_suite_step.py                    # ~4 min, quiet machine
    python benchmarks/bench_suite_step.py --cases memo-d16 --variants eager seeds-vmap
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

FROZEN_TIED = {"tie_embeddings": True, "freeze_embeddings": True}
# The suite's settings (harness/suites/paper.toml): memorisation's dense model at both widths,
# an MQAR recurrence, and selective copying's two models at the longest length.
CASES: dict[str, dict[str, Any]] = {
    "memo-d16": dict(arch="mha", task="memorization", d_model=16, seq_len=32,
                     overrides=FROZEN_TIED, knobs={"vocab_size": 768, "shared_tokens": True}),
    "memo-d32": dict(arch="mha", task="memorization", d_model=32, seq_len=32,
                     overrides=FROZEN_TIED, knobs={"vocab_size": 4096, "shared_tokens": True}),
    "mqar-lru": dict(arch="lru", task="mqar", d_model=64, seq_len=24,
                     knobs={"vocab_size": 16, "num_pairs": 6, "random_non_queries": False}),
    "selcopy-lru": dict(arch="lru", task="selective_copy", d_model=64, seq_len=64,
                        knobs={"vocab_size": 16, "num_tokens": 8}),
    "selcopy-mamba": dict(arch="mamba", task="selective_copy", d_model=64, seq_len=64,
                          knobs={"vocab_size": 16, "num_tokens": 8}),
    # state tracking on Grazzi's protocol (lengths 3..40): Mamba-3 and a signed Mamba-2, whose
    # C kernel path (`eager`) the PyTorch chunked scans (`eager-torch`) are measured against
    "modular-mamba3": dict(arch="mamba3", task="modular", d_model=64, seq_len=40, min_seq_len=3,
                           knobs={"modulus": 3, "vocab_size": 5}),
    "parity-mamba2-signed": dict(arch="mamba2", task="parity", d_model=64, seq_len=40,
                                 min_seq_len=3, overrides={"mamba2.allow_neg_eigval": True}),
}  # fmt: skip
VARIANTS = ("eager", "eager-torch", "compile", "seeds-vmap")
BATCH, LR = 32, 3e-3


# -- child side: one case, one variant -------------------------------------------------------
def measure(case: str, variant: str, steps: int, rounds: int, seeds: int) -> dict[str, Any]:
    import torch

    from seqbench.harness.prepare import prepare
    from seqbench.harness.spec import RunSpec

    torch.set_num_threads(1)
    prepared = prepare(RunSpec.from_dict({**CASES[case], "batch_size": BATCH, "lr": LR}))
    n_models = seeds if variant == "seeds-vmap" else 1
    start = time.perf_counter()
    if variant == "seeds-vmap":
        step, check = vmap_stepper(prepared, seeds)
    else:
        step, check = eager_stepper(prepared, compiled=variant == "compile"), None
    step(0)  # first step: compiles (compile), builds kernels' caches
    warmup_s = time.perf_counter() - start
    for i in range(1, 6):
        step(i)
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        for i in range(steps):
            step(10 + r * steps + i)
        times.append((time.perf_counter() - t0) / steps / n_models * 1e3)
    return {"ms": statistics.median(times), "warmup_s": warmup_s, "check": check}


def eager_stepper(prepared: Any, compiled: bool):
    import torch

    from seqbench.architectures import LanguageModel
    from seqbench.harness.train import build_optimizer, clip_gradients, scored_loss

    torch.manual_seed(0)
    model = LanguageModel(prepared.config).train()
    optimizer = build_optimizer(model, prepared.spec)

    def loss_of(inputs, scored, targets):  # (B, L), (B, L), (B, L) -> ()
        return scored_loss(model, inputs, scored, targets)[1]

    loss_fn = torch.compile(loss_of) if compiled else loss_of

    def step(i: int) -> None:
        batch = prepared.task.split_batch(BATCH, 0, "train", i)
        loss = loss_fn(batch.inputs, batch.scored, batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, prepared.spec)
        optimizer.step()

    return step


def vmap_stepper(prepared: Any, seeds: int):
    """One model per seed, stacked; returns the step and the largest relative gap between a
    model's vmapped loss and its own eager loss on the first batch."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap

    from seqbench.architectures import LanguageModel
    from seqbench.harness.train import scored_loss

    models = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        models.append(LanguageModel(prepared.config).train())
    params, buffers = stack_module_state(models)  # each (S, ...)
    # stack_module_state keeps a tied weight once; functional_call needs both names
    tied = {"head.weight": "embedding.weight"} if prepared.config.tie_embeddings else {}
    shell = copy.deepcopy(models[0]).to("meta")
    trained = {k: v for k, v in params.items() if models[0].get_parameter(k).requires_grad}
    fixed = {k: v for k, v in params.items() if k not in trained}

    def draw(i: int):
        batches = [prepared.task.split_batch(BATCH, s, "train", i) for s in range(seeds)]
        scored = batches[0].scored  # (B, L): the same layout for every seed on these tasks
        if not all(torch.equal(b.scored, scored) for b in batches):
            raise SystemExit("seeds-vmap: scored positions differ between seeds")
        inputs = torch.stack([b.inputs for b in batches])  # (S, B, L)
        return inputs, scored, torch.stack([b.targets for b in batches])  # ..., (S, B, L)

    def loss_of(train_p, fixed_p, bufs, inputs, scored, targets):
        weights = {**train_p, **fixed_p}
        weights.update({name: weights[src] for name, src in tied.items()})
        logits = functional_call(shell, (weights, bufs), (inputs,), {"positions": scored})
        return F.cross_entropy(logits.float(), targets[scored])

    grads_of = vmap(grad_and_value(loss_of), in_dims=(0, 0, 0, 0, None, 0))
    inputs, scored, targets = draw(0)
    _, losses = grads_of(trained, fixed, buffers, inputs, scored, targets)
    own = [scored_loss(m, inputs[s], scored, targets[s])[0] for s, m in enumerate(models)]
    check = max(abs(float(a) - float(b)) / abs(float(b)) for a, b in zip(losses, own, strict=True))
    for value in trained.values():
        value.requires_grad_(False)
    optimizer = torch.optim.AdamW(list(trained.values()), lr=LR, fused=True)

    def step(i: int) -> None:
        grads, _ = grads_of(trained, fixed, buffers, *draw(i))
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads.values()]).norm(dim=0)
        # (S,): each model clipped as clip_grad_norm_ clips it alone; 0 disables clipping
        clip = prepared.spec.grad_clip
        scale = (clip / (norms + 1e-6)).clamp(max=1.0) if clip > 0 else torch.ones_like(norms)
        for name, value in trained.items():
            value.grad = grads[name] * scale.view(-1, *[1] * (value.ndim - 1))
        optimizer.step()

    return step, check


# -- parent side ------------------------------------------------------------------------------
def run_child(case: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if variant != "eager":
        env["SEQBENCH_NATIVE"] = "0"
    cmd = [sys.executable, __file__, "--child", case, variant, "--steps", str(args.steps),
           "--rounds", str(args.rounds), "--seeds", str(args.seeds)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return {"error": last.split(". ")[0]}  # the exception's first sentence
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3, help="models stacked by seeds-vmap")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.steps, args.rounds, args.seeds)))
        return
    variants = ["eager"] + [v for v in args.variants if v != "eager"]
    print("| case | variant | ms/step/model | vs eager | warm-up s | check |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        base = None
        for variant in variants:
            got = run_child(case, variant, args)
            if "error" in got:
                print(f"| {case} | {variant} | failed: {got['error']} | | | |", flush=True)
                continue
            base = got["ms"] if variant == "eager" else base
            ratio = f"{got['ms'] / base:.2f}x" if base else "-"
            check = "-" if got["check"] is None else f"{got['check']:.1e}"
            print(f"| {case} | {variant} | {got['ms']:.1f} | {ratio} | {got['warmup_s']:.1f} "
                  f"| {check} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
