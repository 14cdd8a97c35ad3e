"""`seqbench run --dry-run`: a suite's size and a projected time, from measured step times.

How the projection is made (it is a projection, not a measurement of the suite):
- every distinct model × batch shape of the suite (architecture, overrides, width, depth,
  vocabulary, training length, batch size) is built here and timed for `TIMED_STEPS` training
  steps after one warm-up step, on the device this process has, with one torch thread (what a
  worker of the local launcher gets per core); on CPU the time is the process's CPU time, not
  wall time, so that other load on a shared machine does not inflate it (on a core of its own
  the two agree); on CUDA it is wall time after synchronising; the median step time stands
  for all its runs (a batch over `TIMED_TOKENS` tokens is timed on fewer
  sequences and scaled linearly, so planning a GPU suite on a CPU stays quick);
- a run costs its full step budget (early stopping only shortens it, so the projection is an
  upper bound on training; a calibrated run counts at its cap, `steps`, since its budget is
  known only once its references have run; a run on a range of lengths counts at the
  longest), plus validation and test forwards at one third of a step's cost per token (a
  forward is about a third of forward + backward), scaled by length ÷ training length for
  models whose decode state grows (attention's quadratic cost), and nothing for
  lengths over the KV-cache cap (recorded oom without running);
- the suite's wall time with W workers is the total divided by W, or the longest single run
  if that is longer.
CPU time still grows somewhat under load (shared caches, memory bandwidth): the line printed
says the load it was measured under.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from seqbench.architectures import LanguageModel
from seqbench.harness.prepare import Prepared
from seqbench.harness.records import canonical_json
from seqbench.harness.train import build_optimizer, scored_loss

TIMED_STEPS = 3
FORWARD_SHARE = 1.0 / 3.0
TIMED_TOKENS = 8192  # larger batches are timed on fewer sequences and scaled linearly


@dataclass
class Projection:
    runs: int
    shapes: int
    total_s: float  # sum over runs, upper bound (full budgets)
    longest_s: float
    measure_s: float  # time spent measuring
    device: str
    calibrated: int = 0  # runs whose budget comes from a reference, counted at their caps

    def wall_s(self, workers: int) -> float:
        return max(self.total_s / max(1, workers), self.longest_s)

    def line(self, workers: int) -> str:
        load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"
        return (
            f"{self.runs} runs ({self.shapes} model shapes timed on {self.device}, "
            f"{TIMED_STEPS} steps each, load {load}); projected at most "
            f"{self.wall_s(workers) / 60:.1f} min with {workers} worker(s) "
            f"({self.total_s / 3600:.2f} run-hours, longest run {self.longest_s / 60:.1f} min; "
            "every run to its full step budget — early stops make it shorter"
            + (
                f"; {self.calibrated} calibrated runs at their step caps, which their "
                "references' early stops usually cut to a fraction)"
                if self.calibrated
                else ")"
            )
        )


def shape_key(prepared: Prepared) -> str:
    spec = prepared.spec
    return canonical_json(
        {
            "config": prepared.config.to_dict(),
            "seq_len": spec.seq_len,
            "batch": spec.batch_size,
            "device": spec.device,
            "dtype": spec.dtype,
        }
    )


def step_seconds(prepared: Prepared) -> float:
    """Median seconds of one training step of this run's model and batch shape."""
    spec = prepared.spec
    device = timing_device(spec.device)
    torch.manual_seed(0)
    model = LanguageModel(prepared.config).to(device)
    optimizer = build_optimizer(model, spec)
    rows = max(1, min(spec.batch_size, TIMED_TOKENS // spec.seq_len))
    clock = time.perf_counter if device.startswith("cuda") else time.process_time
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = []
    try:
        for step in range(TIMED_STEPS + 1):
            times.append(timed_step(model, optimizer, prepared, rows, step, device, clock))
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times[1:]) * spec.batch_size / rows


def timed_step(model, optimizer, prepared: Prepared, rows: int, step: int, device: str, clock):
    """Seconds (by `clock`) of one forward + backward + optimiser step on `rows` sequences."""
    batch = prepared.task.split_batch(rows, prepared.spec.seed, "train", step).to(device)
    start = clock()
    _, loss = scored_loss(model, batch.inputs, batch.scored, batch.targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return clock() - start


def timing_device(device: str) -> str:
    """Where to time a run bound for `device`: there if this machine has it, else the CPU (a
    suite planned on a cluster's login node for its GPUs; the line printed says so)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return device


def grows(prepared: Prepared) -> bool:
    """Attention in the layer pattern: its cost per token grows with the context."""
    return any("attention" in name for name in prepared.config.layer_pattern)


def run_seconds(prepared: Prepared, step_s: float) -> float:
    spec = prepared.spec
    per_token = step_s / (spec.batch_size * spec.seq_len) * FORWARD_SHARE
    checks = -(-spec.steps // spec.eval_every)
    cost = spec.steps * step_s + checks * spec.val_examples * spec.seq_len * per_token
    for length in spec.test_lengths():
        cap = spec.attention_eval_cap
        if length != spec.seq_len and cap and length > cap and grows(prepared):
            continue
        n = spec.test_examples if length == spec.seq_len else spec.long_test_examples
        scale = length / spec.seq_len if grows(prepared) else 1.0
        cost += (n or spec.test_examples) * length * per_token * max(1.0, scale)
    return cost


def project(plans: Sequence[Prepared]) -> Projection:
    start = time.perf_counter()
    measured: dict[str, float] = {}
    costs = []
    for prepared in plans:
        key = shape_key(prepared)
        if key not in measured:
            measured[key] = step_seconds(prepared)
        costs.append(run_seconds(prepared, measured[key]))
    targets = sorted({p.spec.device for p in plans})
    timed = sorted({timing_device(d) for d in targets})
    device = ",".join(timed) or "cpu"
    if timed != targets:
        device += f" for runs on {','.join(targets)}: a CPU-for-GPU stand-in, far too high"
    return Projection(
        runs=len(plans),
        shapes=len(measured),
        total_s=sum(costs),
        longest_s=max(costs, default=0.0),
        measure_s=time.perf_counter() - start,
        device=device,
        calibrated=sum(p.spec.budget == "calibrated" for p in plans),
    )
