"""Task generation speed: tokens/s per task, its share of a training step, and MQAR vs Zoology.

Two measurements, both medians after warm-up, in one process, at one thread count:

1. Every registered task at its default knobs, a batch of `--batch` examples: generation time
   and tokens/s, against a forward+backward of the smallest model (the `mha` preset at d_model
   64, the task's vocabulary) on that same batch. Target: generation <= 5% of the step.
2. MQAR against Zoology's own generator (HazyResearch/zoology, `multiquery_ar`) on Zoology's
   defaults: 10,000 examples, length 256, 16 pairs, vocab 8192, power_a 0.01. Target: >= 10x.
   Zoology is a benchmark-only reference, never a dependency: point `--zoology` (or the
   ZOOLOGY_PATH environment variable) at a checkout; without one this part says so and is
   skipped. It needs `pydantic` (`pip install -e '.[bench]'`); Zoology's package also imports
   `wandb` at import time, which its generator never uses, so a stand-in module is used when
   wandb is not installed.

    python benchmarks/bench_tasks.py [--tasks T ...] [--batch 64] [--threads 1] [--zoology PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import median_seconds

from seqbench import architectures
from seqbench.tasks import TASKS, Batch, Task, make_task

STEP_TARGET = 0.05
ZOOLOGY_TARGET = 10.0


def generation_seconds(task: Task, n: int, repeats: int) -> float:
    """Median time to draw n examples, a fresh seed each time (no caching can help)."""
    seeds = iter(range(10**6))
    return median_seconds(lambda: task.sample(n, next(seeds)), repeats=repeats)


def train_step_seconds(task: Task, batch: Batch, repeats: int) -> float:
    """Forward + loss on the scored positions + backward of mha at d_model 64."""
    config = architectures.build_config(
        "mha", vocab_size=task.vocab_size, overrides={"d_model": 64}
    )
    model = architectures.LanguageModel(config)
    scored = batch.scored

    def step() -> None:
        model.zero_grad(set_to_none=True)
        logits = model(batch.inputs, scored)  # (N, V) at the scored positions
        F.cross_entropy(logits, batch.targets[scored]).backward()

    return median_seconds(step, repeats=repeats)


def task_table(names: list[str], batch_size: int, repeats: int) -> bool:
    print(f"generation vs a training step (mha, d_model 64), batch {batch_size}")
    header = (
        f"{'task':15s} {'B x L':>9s} {'gen ms':>8s} {'Mtok/s':>7s} {'step ms':>8s} {'gen/step':>9s}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name in names:
        task = make_task(name)
        gen = generation_seconds(task, batch_size, repeats)
        step = train_step_seconds(task, task.sample(batch_size, 0), repeats)
        tokens = batch_size * task.seq_len
        share = gen / step
        worst = max(worst, share)
        print(
            f"{name:15s} {batch_size:>4d} x {task.seq_len:<4d}{gen * 1e3:8.2f} "
            f"{tokens / gen / 1e6:7.2f} {step * 1e3:8.1f} {share:8.1%}"
        )
    ok = worst <= STEP_TARGET
    print(f"worst share {worst:.1%} (target <= {STEP_TARGET:.0%}): {'met' if ok else 'MISSED'}")
    return ok


def load_zoology(path: str) -> Callable[..., Any] | None:
    """Zoology's `multiquery_ar`, imported from a checkout, or None (with the reason printed)."""
    if not (Path(path) / "zoology" / "data" / "multiquery_ar.py").is_file():
        print(f"Zoology reference: no zoology/data/multiquery_ar.py under {path!r}; skipped")
        return None
    if importlib.util.find_spec("pydantic") is None:
        print("Zoology reference: needs pydantic (pip install -e '.[bench]'); skipped")
        return None
    if importlib.util.find_spec("wandb") is None:
        sys.modules["wandb"] = types.ModuleType("wandb")  # imported by zoology.utils, unused here
    sys.path.insert(0, str(Path(path).resolve()))
    from zoology.data.multiquery_ar import multiquery_ar

    return multiquery_ar


def zoology_comparison(path: str | None, examples: int, repeats: int) -> bool | None:
    print(f"\nMQAR vs Zoology's generator: {examples} examples, length 256, 16 pairs, vocab 8192")
    if not path:
        print(
            "Zoology reference: absent; pass --zoology PATH (a checkout of HazyResearch/zoology) "
            "or set ZOOLOGY_PATH to measure it; skipped"
        )
        return None
    reference = load_zoology(path)
    if reference is None:
        return None
    knobs = {"vocab_size": 8192, "seq_len": 256, "num_pairs": 16, "alpha": 0.01}
    ours = make_task("mqar", **knobs)
    t_ours = generation_seconds(ours, examples, repeats)
    seeds = iter(range(10**6))

    def zoology_draw() -> object:
        return reference(
            vocab_size=8192,
            num_examples=examples,
            input_seq_len=256,
            seed=next(seeds),
            power_a=0.01,
            num_kv_pairs=16,
        )

    t_zoo = median_seconds(zoology_draw, repeats=max(3, repeats // 2), warmup=1)
    speedup = t_zoo / t_ours
    tokens = examples * 256
    print(f"zoology  {t_zoo * 1e3:9.1f} ms  {tokens / t_zoo / 1e6:7.2f} Mtok/s")
    print(f"seqbench {t_ours * 1e3:9.1f} ms  {tokens / t_ours / 1e6:7.2f} Mtok/s")
    same_task_check(ours, zoology_draw(), examples)
    ok = speedup >= ZOOLOGY_TARGET
    print(f"speedup {speedup:.1f}x (target >= {ZOOLOGY_TARGET:.0f}x): {'met' if ok else 'MISSED'}")
    return ok


def same_task_check(ours: Task, segment: object, examples: int) -> None:
    """Both generators draw the same task: compare where queries land and what is scored."""
    labels = segment.labels  # type: ignore[attr-defined]
    batch = ours.sample(examples, 12345)
    zoo_pos = (labels != -100).nonzero()[:, 1].float()
    our_pos = batch.scored.nonzero()[:, 1].float()
    print(
        f"same task: scored per example {(labels != -100).sum(1).float().mean():.1f} vs "
        f"{batch.scored.sum(1).float().mean():.1f}; mean query position "
        f"{zoo_pos.mean():.1f} vs {our_pos.mean():.1f}; median {zoo_pos.median():.0f} vs "
        f"{our_pos.median():.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=None, help="Default: every task.")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--zoology", default=os.environ.get("ZOOLOGY_PATH"))
    parser.add_argument("--zoology-examples", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)\n")
    task_table(args.tasks or TASKS.names(), args.batch, args.repeats)
    zoology_comparison(args.zoology, args.zoology_examples, args.repeats)


if __name__ == "__main__":
    main()
