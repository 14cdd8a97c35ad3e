"""Scoring: token accuracy on scored positions, exact match per sequence, and loss.

The model's head runs only at scored positions (`model(inputs, positions=mask)` returns
(N, V) logits in row-major order of the mask), so the targets line up with `targets[mask]`.
A sequence counts as an exact match when every one of its scored positions is right;
sequences without any scored position are left out of the exact-match denominator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqbench.tasks import Batch


@dataclass
class Tally:
    """Running sums over batches; `scores()` turns them into rates."""

    correct: int = 0
    tokens: int = 0
    exact: int = 0
    sequences: int = 0
    loss_sum: float = 0.0

    def add(self, other: Tally) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def scores(self) -> dict[str, float | None]:
        """Rates plus the counts behind them (`scored` positions, `sequences`), which the
        report's intervals need: an accuracy over 64 tokens is less certain than over 8192."""
        return {
            "accuracy": self.correct / self.tokens if self.tokens else None,
            "exact_match": self.exact / self.sequences if self.sequences else None,
            "loss": self.loss_sum / self.tokens if self.tokens else None,
            "scored": self.tokens,
            "sequences": self.sequences,
        }


def tally_logits(logits: Tensor, targets: Tensor, scored: Tensor) -> Tally:
    """Sums for logits (N, V) at the scored positions `scored` (B, L) of `targets` (B, L)."""
    flat_targets = targets[scored]  # (N,)
    loss = F.cross_entropy(logits.float(), flat_targets, reduction="sum")
    right = logits.argmax(dim=-1) == flat_targets  # (N,)
    row = scored.nonzero()[:, 0]  # (N,) sequence of each scored position
    per_row = torch.bincount(row, minlength=scored.shape[0])  # (B,) scored positions
    wrong_per_row = torch.bincount(row[~right], minlength=scored.shape[0])  # (B,)
    has_scored = per_row > 0
    return Tally(
        correct=int(right.sum()),
        tokens=int(right.numel()),
        exact=int((has_scored & (wrong_per_row == 0)).sum()),
        sequences=int(has_scored.sum()),
        loss_sum=float(loss),
    )


def autocast(device: str, dtype: str) -> contextlib.AbstractContextManager:
    """bf16 autocast when asked for, nothing for float32."""
    if dtype == "bfloat16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def chunks(batch: Batch, size: int) -> Iterator[Batch]:
    for start in range(0, batch.inputs.shape[0], size):
        yield Batch(batch.inputs[start : start + size], batch.targets[start : start + size])


@torch.no_grad()
def evaluate(
    model: nn.Module, batch: Batch, *, batch_size: int, device: str, dtype: str
) -> dict[str, float | None]:
    """Accuracy, exact match and mean loss of `model` over `batch`, in chunks of batch_size."""
    was_training = model.training
    model.eval()
    total = Tally()
    try:
        for part in chunks(batch, batch_size):
            part = part.to(device)
            scored = part.scored  # (b, L)
            if not bool(scored.any()):
                continue
            with autocast(device, dtype):
                logits = model(part.inputs, positions=scored)  # (N, V)
            total.add(tally_logits(logits, part.targets, scored))
    finally:
        model.train(was_training)
    return total.scores()
