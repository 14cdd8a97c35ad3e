"""Measure one training point: tokens/s of forward+backward, peak memory, FLOPs per token.

Runs inside a fresh worker process (see worker.py), in this order:
1. set-up: model, a batch of random tokens, one warm-up step (allocates the gradients, warms
   kernels and thread pools), gradients zeroed in place so they stay allocated;
2. one measured step with every memory method and the FLOP counter active (not timed: the
   hooks cost a little);
3. `repeats` timed steps, median wall and CPU time reported (see timing.py).
Gradients are allocated before the measured step on purpose: the memory numbers are then
what a step needs *beyond* parameters and gradients (activations, transients), which is what
differs between architectures and what the tensor-level method counts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.harness.profile.flops import flop_counter, flops_by_op
from seqbench.harness.profile.memory import CudaPeakWindow, RssWindow, SavedTensorBytes
from seqbench.harness.profile.points import build_model, random_tokens
from seqbench.harness.profile.timing import repeat_times, repeats_within, summarise, timed_call


def step_loss(model: nn.Module, inputs: Tensor) -> Tensor:
    """Next-token loss over every position (full head) plus the MoE auxiliary loss."""
    logits = model(inputs[:, :-1])  # (B, L, V)
    targets = inputs[:, 1:]  # (B, L)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
    return loss + model.aux_loss()


def training_step(model: nn.Module, inputs: Tensor) -> None:
    step_loss(model, inputs).backward()


def measure_train(spec: dict[str, Any], budget_s: float | None = None) -> dict[str, Any]:
    """Metrics of a training point (raises on failure; the worker classifies the error)."""
    started = time.perf_counter()
    device = torch.device(spec["device"])
    model = build_model(spec, device).train()
    inputs = random_tokens(spec, spec["seq_len"] + 1, device)  # (B, L+1): L predicted tokens

    warmup, flops = timed_call(lambda: flop_count_step(model, inputs), device)
    model.zero_grad(set_to_none=False)
    memory = memory_step(model, inputs, device)

    left = None if budget_s is None else budget_s - (time.perf_counter() - started)
    repeats = repeats_within(left, warmup.wall_s, spec["repeats"])
    times = summarise(repeat_times(lambda: training_step(model, inputs), device, repeats), "step")
    tokens = spec["batch"] * spec["seq_len"]
    return {
        **times,
        "repeats_done": repeats,
        "warmup_s": warmup.wall_s,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens / times["step_s"],
        "memory_bytes": memory,
        **flop_metrics(flops, tokens),
        "parameters": model.parameter_counts(),
        "torch_threads": torch.get_num_threads(),
    }


def flop_count_step(
    model: nn.Module,
    inputs: Tensor,
    saved: SavedTensorBytes | None = None,
    inner: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, Any]:
    """One step under torch's FLOP counter (also the warm-up step of a measured point).

    Why not in the memory step: the counter's first use builds Python-side state that would
    show up in the RSS peak. `saved` also counts saved tensors in the same pass (meta only);
    `inner` is a mode entered inside the counter, so it sees each op before the counter does.
    """
    with flop_counter() as counter, inner():
        with saved.track() if saved is not None else contextlib.nullcontext():
            loss = step_loss(model, inputs)
        forward = counter.get_total_flops()
        loss.backward()
    return {"total": counter.get_total_flops(), "forward": forward, "by_op": flops_by_op(counter)}


def flop_metrics(flops: dict[str, Any], tokens: int) -> dict[str, Any]:
    return {
        "flops_per_step": flops["total"],
        "flops_per_token": flops["total"] / tokens,
        "flops_forward": flops["forward"],
        "flops_by_op": flops["by_op"],
    }


def memory_step(model: nn.Module, inputs: Tensor, device: torch.device) -> dict[str, Any]:
    """One step under every memory method that applies to `device`."""
    saved = SavedTensorBytes.for_model(model)
    rss = RssWindow()
    cuda = CudaPeakWindow(device) if device.type == "cuda" else None
    with contextlib.ExitStack() as stack:
        if cuda is not None:
            stack.enter_context(cuda.measure())
        elif device.type == "cpu":
            stack.enter_context(rss.measure())
        with saved.track():
            loss = step_loss(model, inputs)
        loss.backward()
        del loss
    model.zero_grad(set_to_none=False)
    return {
        "saved_activations": saved.total_bytes,
        "cpu_rss_delta": rss.delta_bytes if device.type == "cpu" else None,
        "cuda_peak_allocated": cuda.delta_bytes if cuda is not None else None,
        "saved_tensors": saved.n_saved,
    }
