"""The training loop: AdamW, warm-up + decay, gradient clipping, early stop on validation.

Every step draws a fresh batch from the task's train stream (seeded by run seed and step, so
two runs of one spec see the same data). The loss is cross-entropy at the scored positions
only (the head never runs elsewhere) plus the model's auxiliary loss (MoE balance, already
weighted). Validation runs every `eval_every` steps on a fixed validation draw; the run stops
early once it is solved (validation token accuracy >= 0.99, `seqbench.harness.protocol`;
`early_stop = false` trains the whole budget). Each check is a point of the learning curve:
step, training tokens so far, and the validation scores. A non-finite loss stops the run as diverged
(before the optimiser can write NaNs into the weights).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seqbench.harness.evaluate import autocast, evaluate
from seqbench.harness.protocol import is_solved
from seqbench.harness.spec import RunSpec
from seqbench.seeds import derive_seed
from seqbench.tasks import Task


def no_decay(param: nn.Parameter) -> bool:
    """Whether a parameter trains without weight decay (docs/harness.md): every parameter with
    fewer than 2 dimensions (norm gains, biases, per-channel skips), and any that its module
    marked `_no_weight_decay = True` where it created it (mamba-ssm's convention; the SSM and
    LRU mixers mark their dynamics that way, whatever their shape)."""
    return param.ndim < 2 or getattr(param, "_no_weight_decay", False)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, keep = [], []
    seen: set[int] = set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (keep if no_decay(param) else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": keep, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    groups = param_groups(model, spec.weight_decay)
    if spec.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=spec.lr, momentum=spec.momentum)
    return torch.optim.AdamW(
        groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps, fused=_fusable(model)
    )


def _fusable(model: nn.Module) -> bool | None:
    """True on the CPU: torch's fused AdamW does the same update in one pass per tensor
    instead of ~a dozen eager ops (0.55 -> 0.15 ms a step for mha at d_model 64), equal to
    the default to a float32 ulp or two. Elsewhere (CUDA, other dtypes) torch's default."""
    params = list(model.parameters())
    if params and all(p.device.type == "cpu" and p.dtype.is_floating_point for p in params):
        return True
    return None


def scored_loss(
    model: nn.Module, inputs: torch.Tensor, scored: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(task loss, loss to optimise) of one batch: cross-entropy at the scored positions only
    (the head runs nowhere else), plus the model's auxiliary loss (MoE balance, already
    weighted). One definition for the loop, the projection's timed step and the benchmarks."""
    logits = model(inputs, positions=scored)  # (N, V)
    task_loss = F.cross_entropy(logits.float(), targets[scored])
    return task_loss, task_loss + model.aux_loss()


def clip_gradients(model: nn.Module, spec: RunSpec) -> None:
    """Clip the gradients' global norm to `spec.grad_clip`; 0 disables clipping (clipping to a
    norm of 0 would zero every gradient). One definition for the loop and the benchmarks."""
    if spec.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)


def lr_factor(step: int, spec: RunSpec) -> float:
    """Multiplier of the peak lr at `step` (0-based): linear warm-up, then decay to 0."""
    warmup = spec.warmup or 0
    if step < warmup:
        return (step + 1) / warmup
    if spec.schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, spec.steps - warmup)
    if spec.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class TrainLengths:
    """The task of each training step: at seq_len, or with `min_seq_len` at a length drawn
    uniformly from the training range by a stream of its own (same spec, same lengths)."""

    def __init__(self, task: Task, spec: RunSpec) -> None:
        self.task, self.spec = task, spec
        self.lengths = spec.train_lengths()
        self._tasks: dict[int, Task] = {task.seq_len: task}

    def length(self, step: int) -> int:
        if len(self.lengths) == 1:
            return self.lengths[0]
        draw = derive_seed(self.spec.seed, "train_length", step) % len(self.lengths)
        return self.lengths[draw]

    def __call__(self, step: int) -> Task:
        length = self.length(step)
        if length not in self._tasks:
            self._tasks[length] = self.task.at_length(length)
        return self._tasks[length]


@dataclass
class TrainResult:
    steps_run: int = 0
    stopped_early: bool = False
    diverged: str | None = None  # reason, when the loss went non-finite
    train_loss: float | None = None  # mean task loss over the last validation interval
    val: dict[str, float | None] = field(default_factory=dict)
    val_curve: list[dict[str, Any]] = field(default_factory=list)
    train_s: float = 0.0  # optimisation only (validation excluded)
    val_s: float = 0.0
    train_tokens: int = 0


def train(model: nn.Module, task: Task, spec: RunSpec) -> TrainResult:
    """Train `model` in place on `task` following `spec`; never raises for divergence."""
    optimizer = build_optimizer(model, spec)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, spec))
    val_batch = task.split_batch(spec.val_examples, spec.seed, "val")
    result = TrainResult()
    recent: deque[float] = deque(maxlen=spec.eval_every)
    model.train()
    start = time.perf_counter()
    batch_task = TrainLengths(task, spec)
    for step in range(spec.steps):
        batch = batch_task(step).split_batch(spec.batch_size, spec.seed, "train", step)
        batch = batch.to(spec.device)
        scored = batch.scored  # (B, L)
        with autocast(spec.device, spec.dtype):
            task_loss, loss = scored_loss(model, batch.inputs, scored, batch.targets)
        if not torch.isfinite(loss):
            result.diverged = f"non-finite loss ({float(loss.detach())}) at step {step}"
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model, spec)
        optimizer.step()
        schedule.step()
        recent.append(float(task_loss.detach()))
        result.steps_run = step + 1
        result.train_tokens += batch.inputs.numel()
        at_check = result.steps_run % spec.eval_every == 0 or result.steps_run == spec.steps
        if at_check and _validate(model, val_batch, spec, result) and spec.early_stop:
            result.stopped_early = result.steps_run < spec.steps
            break
    if result.steps_run and (
        not result.val_curve or result.val_curve[-1]["step"] != result.steps_run
    ):
        _validate(model, val_batch, spec, result)  # diverged between checks: last good weights
    result.train_s = time.perf_counter() - start - result.val_s
    result.train_loss = sum(recent) / len(recent) if recent else None
    return result


def _validate(model: nn.Module, val_batch: Any, spec: RunSpec, result: TrainResult) -> bool:
    """Score the validation draw, log it on the curve; True once solved (protocol.SOLVED)."""
    start = time.perf_counter()
    scores = evaluate(
        model, val_batch, batch_size=spec.batch_size, device=spec.device, dtype=spec.dtype
    )
    result.val_s += time.perf_counter() - start
    result.val = scores
    point = {"step": result.steps_run, "tokens": result.train_tokens, **scores}
    result.val_curve.append(point)
    return is_solved(scores["accuracy"])
