"""The training protocol's rules: when a run is solved, when it still improves, how fast it learns.

One place for the numbers the trainer, the records and the report share, so that "solved" in
an early stop and "solved" in a verdict are the same test:

- **solved**: a validation check with token accuracy >= `SOLVED` (0.99). With `early_stop`
  on (the default), training stops at the first solved check; the remaining budget is not
  spent on a run that has nothing left to learn.
- **steps to threshold**: for each of `THRESHOLDS` (0.9 and 0.99), the first validation check
  at or above it, as optimiser steps and as training tokens (None when never reached).
- **still improving at budget end**: a run that is not solved whose final validation accuracy
  is more than `IMPROVING_MIN_GAIN` above the best accuracy it had by `IMPROVING_WINDOW` of its
  steps (the last quarter still gained), or whose final validation loss is more than
  `IMPROVING_LOSS_DROP` (relative) below the lowest loss it had by then, or whose curve has too
  few checks to tell. Such a run has not shown what the architecture *cannot* do, only what
  it has not done yet, so findings judged on it read "inconclusive: budget". The loss matters
  on plateau-then-jump curves (MQAR, induction): the accuracy sits flat at "one of the values
  in context" while the loss keeps falling towards the jump.
- **collapsed**: the final validation accuracy is more than `COLLAPSE_DROP` below the best the
  run reached. The record's test accuracy is the final model's, so a run that learnt the task
  and then lost it (an MoE's routing flipping late in training, a loss spike) reads like one
  that never learnt it; the report names such seeds so the reader sees which it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SOLVED = 0.99
THRESHOLDS = (0.9, 0.99)
IMPROVING_MIN_GAIN = 0.02  # two points of accuracy: above validation noise at >= 1000 tokens
IMPROVING_WINDOW = 0.75  # compare the end with the best up to 75% of the steps run
IMPROVING_LOSS_DROP = 0.05  # 5% lower loss in the last quarter: still learning, flat accuracy
MIN_CHECKS = 4  # fewer validation checks than this cannot show a plateau
COLLAPSE_DROP = 0.10  # the findings' "far" margin: a drop that large is not validation noise

Curve = Sequence[dict[str, Any]]


def is_solved(accuracy: float | None) -> bool:
    return accuracy is not None and accuracy >= SOLVED


def threshold_key(threshold: float) -> str:
    """JSON key of a threshold: "0.9", "0.99"."""
    return f"{threshold:g}"


def steps_to(curve: Curve, threshold: float) -> dict[str, int] | None:
    """The first check of `curve` with accuracy >= threshold: {"step", "tokens"}, or None."""
    for point in curve:
        accuracy = point.get("accuracy")
        if accuracy is not None and accuracy >= threshold:
            return {"step": int(point["step"]), "tokens": int(point.get("tokens") or 0)}
    return None


def steps_to_thresholds(curve: Curve) -> dict[str, dict[str, int] | None]:
    return {threshold_key(t): steps_to(curve, t) for t in THRESHOLDS}


def still_improving(curve: Curve) -> bool:
    """True when an unsolved run was still gaining at the end of its budget (module docstring)."""
    points = [p for p in curve if p.get("accuracy") is not None]
    if not points:
        return False  # nothing was measured: the run failed, it did not run out of budget
    final = float(points[-1]["accuracy"])
    if is_solved(final):
        return False
    if len(points) < MIN_CHECKS:
        return True
    cutoff = IMPROVING_WINDOW * float(points[-1]["step"])
    earlier = [p for p in points[:-1] if p["step"] <= cutoff]
    if not earlier:
        return True
    if final - max(float(p["accuracy"]) for p in earlier) > IMPROVING_MIN_GAIN:
        return True
    losses = [p.get("loss") for p in earlier if _finite(p.get("loss"))]
    last = points[-1].get("loss")
    return bool(losses) and _finite(last) and last < (1 - IMPROVING_LOSS_DROP) * min(losses)


@dataclass(frozen=True)
class Collapse:
    """A run that lost what it had learnt: its best check, the first check after it more than
    `COLLAPSE_DROP` lower, and the final accuracy."""

    best: float
    best_step: int
    fell_at: int
    final: float

    def describe(self) -> str:
        return (
            f"val {self.best:.3f} at step {self.best_step}, "
            f"{self.final:.3f} at the end (fell at step {self.fell_at})"
        )


def collapse(curve: Curve) -> Collapse | None:
    """The collapse of `curve` (module docstring), or None when it ends near its best."""
    points = [p for p in curve if p.get("accuracy") is not None]
    if not points:
        return None
    best = max(points, key=lambda p: float(p["accuracy"]))  # the first check at the best
    final = float(points[-1]["accuracy"])
    floor = float(best["accuracy"]) - COLLAPSE_DROP
    if final >= floor:
        return None
    after = points[points.index(best) + 1 :]
    fell = next(p for p in after if float(p["accuracy"]) < floor)
    return Collapse(float(best["accuracy"]), int(best["step"]), int(fell["step"]), final)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def protocol_metrics(curve: Curve) -> dict[str, Any]:
    """What a run record keeps about its learning: thresholds, solved, still improving,
    collapsed."""
    final = curve[-1].get("accuracy") if curve else None
    return {
        "steps_to": steps_to_thresholds(curve),
        "solved": is_solved(final),
        "still_improving": still_improving(curve),
        "collapsed": collapse(curve) is not None,
    }
