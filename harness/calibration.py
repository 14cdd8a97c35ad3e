"""Calibrated budgets: every model of a setting trains a fixed multiple of the steps its
reference model needed to solve that setting.

Why: a fixed step count per setting is either too short for the slow learners (the verdict
reads "still improving") or wasted on the fast ones. Measuring the reference first (attention
on recall, the signed recurrence on parity) and giving every other model `budget_multiple`
times its steps makes "did not learn it" mean the same thing in every setting: *not within
3x what the reference needed* (Zoology and MAD compare at equal budgets in the same way).

A run's `budget` field (RunSpec) says its role:
- "fixed": trains `steps` (the default; nothing here applies);
- "reference": the setting's reference, trained with early stop within `steps`;
- "calibrated": trains budget_multiple x S steps, at most `steps` (the cap), where S is what
  the reference needed: per seed the fewest steps to solve over the learning rates tried, then
  the most over the seeds (the reference solved on every seed within S). The sweep runs the
  references first and writes S into each calibrated spec (`reference_steps`), so the record
  carries its calibration and a changed calibration is a new run. When some reference seed
  did not solve, S is unknown: reference_steps stays None and the run trains its cap. That
  cap is still the whole multiple when it is at least the multiple of the reference's own cap
  (the steps the reference trained: it had no more to need), and the findings read it so.

A setting is the spec without what belongs to one model or one optimisation run
(`NOT_SETTING`): same task, knobs, lengths, width and batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from seqbench.errors import UserError
from seqbench.harness.protocol import SOLVED, threshold_key
from seqbench.harness.records import canonical_json
from seqbench.harness.spec import RunSpec

NOT_SETTING = (
    "arch", "overrides", "n_layers", "lr", "seed", "steps", "warmup", "budget",
    "budget_multiple", "reference_steps", "eval_lengths", "long_test_examples",
    "attention_eval_cap", "device", "dtype", "early_stop",
)  # fmt: skip


def setting_key(spec: RunSpec | dict[str, Any]) -> str:
    data = spec.to_dict() if isinstance(spec, RunSpec) else spec
    return canonical_json({k: v for k, v in data.items() if k not in NOT_SETTING})


def check_references(specs: Sequence[RunSpec]) -> None:
    """One-line UserError for a calibrated run whose setting has no reference run."""
    references = {setting_key(s) for s in specs if s.budget == "reference"}
    for spec in specs:
        if spec.budget == "calibrated" and setting_key(spec) not in references:
            raise UserError(
                f"{spec.label()}: budget = calibrated, but no run of this sweep has "
                "budget = reference in its setting (same task, knobs, lengths, width, batch)"
            )


def solved_at(record: dict[str, Any]) -> int | None:
    """The step of a run's first solved validation check, or None."""
    if record.get("status") != "ok":
        return None
    hit = ((record.get("metrics") or {}).get("steps_to") or {}).get(threshold_key(SOLVED))
    return int(hit["step"]) if hit else None


def reference_steps(records: Iterable[dict[str, Any]]) -> int | None:
    """S of the module docstring from a setting's reference records (None: some seed did not
    solve at any learning rate, or there are no records)."""
    per_seed: dict[Any, list[int | None]] = {}
    for record in records:
        per_seed.setdefault(record["spec"]["seed"], []).append(solved_at(record))
    fewest = [min((s for s in steps if s is not None), default=None) for steps in per_seed.values()]
    if not fewest or any(s is None for s in fewest):
        return None
    return max(s for s in fewest if s is not None)


def calibrated_steps(spec: RunSpec) -> int:
    """The budget of a calibrated spec whose reference_steps is filled in."""
    if spec.reference_steps is None:
        return spec.steps
    wanted = spec.budget_multiple * spec.reference_steps
    return min(spec.steps, math.ceil(wanted / spec.eval_every) * spec.eval_every)


def full_multiple(spec: dict[str, Any], reference_cap: int | None = None) -> bool:
    """A recorded spec trained the whole calibrated multiple (not cut by its cap): of S, or,
    where some reference seed did not solve (S unknown), of `reference_cap`, the steps the
    reference trained."""
    if spec.get("budget") != "calibrated":
        return False
    ref = spec.get("reference_steps")
    ref = reference_cap if ref is None else ref
    return ref is not None and spec["steps"] >= spec.get("budget_multiple", 3.0) * ref


def reference_caps(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Per setting (`setting_key`), the most steps a recorded reference run may train."""
    caps: dict[str, int] = {}
    for r in records:
        if r.get("kind") == "run" and r["spec"].get("budget") == "reference":
            key = setting_key(r["spec"])
            caps[key] = max(caps.get(key, 0), int(r["spec"]["steps"]))
    return caps


def reference_cap(records: Iterable[dict[str, Any]], spec: dict[str, Any]) -> int | None:
    """The most steps a recorded reference run of `spec`'s setting may train (its cap; None:
    no reference recorded)."""
    return reference_caps(records).get(setting_key(spec))


def calibrate(
    followers: dict[str, list[RunSpec]], references: dict[str, list[dict[str, Any]]]
) -> list[RunSpec]:
    """The calibrated specs with their budgets: `followers` and the reference records by
    setting (keys of resolved specs, as `setting_key` gives them)."""
    out = []
    for key, specs in followers.items():
        ref = reference_steps(references.get(key, []))
        for spec in specs:
            cap = dataclasses.replace(spec, reference_steps=ref)
            out.append(dataclasses.replace(cap, steps=calibrated_steps(cap)))
    return out
