"""Bounds of every numeric input: one table, consulted by suite files, RunSpec, the CLI flags
of `run`, `sample` and `profile`, and the record schema.

Why one table: a seed that `sample` accepts but `run` refuses, or a length that a suite file
plans without a word until an allocation fails an hour later, are the same bug in different
places. Each bound is a plain interval; a value outside is a one-line error naming the field
and the interval, before anything runs. docs/harness.md lists the table (a test holds the docs
and this file equal).

The limits are generous on purpose (far above anything a CPU or one GPU can run), so they
only catch typos, overflows and nonsense: 2**20 tokens of training length, 2**32 seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from seqbench.errors import UserError


@dataclass(frozen=True)
class Bound:
    """`low <= value <= high` (strict at an open end); `integer`: ints only."""

    low: float
    high: float
    integer: bool = True
    low_open: bool = False
    high_open: bool = False
    what: str = ""

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        """'1..1048576' or '0 < x <= 10' (the form error messages and the docs use)."""
        low, high = _num(self.low), _num(self.high)
        if self.low_open or self.high_open:
            return (
                f"{low} {'<' if self.low_open else '<='} x {'<' if self.high_open else '<='} {high}"
            )
        return f"{low}..{high}"


def _num(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


MAX_LEN = 2**20  # tokens of one sequence (training, test, decode context)
MAX_SEED = 2**32 - 1  # numpy's legacy generators and most tools take 32-bit seeds

BOUNDS: dict[str, Bound] = {
    # RunSpec (suite files, `seqbench run` flags, records)
    "seq_len": Bound(1, MAX_LEN, what="training length (tokens)"),
    "min_seq_len": Bound(1, MAX_LEN, what="shortest training length (tokens)"),
    "eval_lengths": Bound(1, MAX_LEN, what="each extra test length (tokens)"),
    "d_model": Bound(1, 65536, what="model width"),
    "n_layers": Bound(1, 1024, what="layers"),
    "steps": Bound(1, 10**7, what="optimiser steps"),
    "budget_multiple": Bound(
        0, 1000, integer=False, low_open=True, what="calibrated budget (x the reference's steps)"
    ),
    "reference_steps": Bound(1, 10**7, what="steps the setting's reference took to solve"),
    "batch_size": Bound(1, 65536, what="sequences per step"),
    "lr": Bound(0, 10, integer=False, low_open=True, what="peak learning rate"),
    "warmup": Bound(0, 10**7, what="warm-up steps (also <= steps)"),
    "weight_decay": Bound(0, 10, integer=False, what="decoupled weight decay"),
    "grad_clip": Bound(0, 1e6, integer=False, what="max gradient norm (0: off)"),
    "beta1": Bound(0, 1, integer=False, high_open=True, what="AdamW's first-moment decay"),
    "beta2": Bound(0, 1, integer=False, high_open=True, what="AdamW's second-moment decay"),
    "eps": Bound(0, 1, integer=False, low_open=True, what="AdamW's denominator guard"),
    "momentum": Bound(0, 1, integer=False, high_open=True, what="SGD's momentum"),
    "eval_every": Bound(1, 10**7, what="steps between validation checks"),
    "val_examples": Bound(1, 10**6, what="validation sequences"),
    "test_examples": Bound(1, 10**6, what="test sequences per length"),
    "long_test_examples": Bound(1, 10**6, what="test sequences at each eval length"),
    "attention_eval_cap": Bound(1, MAX_LEN * 16, what="longest attention test length"),
    "seed": Bound(0, MAX_SEED, what="seed (run, sample and profile alike)"),
    # `seqbench run`
    "workers": Bound(1, 1024, what="processes (local) or jobs at once (slurm)"),
    # `seqbench sample`
    "n": Bound(1, 10**4, what="examples shown"),
    # `seqbench profile` and `seqbench check-arch`
    "batch": Bound(1, 65536, what="profile batch size"),
    "context": Bound(1, MAX_LEN * 16, what="decode context (tokens)"),
    "counted_len": Bound(1, 2**40, what="length counted on the meta device (nothing allocated)"),
    "repeats": Bound(1, 1000, what="timed training steps per point"),
    "decode_steps": Bound(1, 10**5, what="timed decode steps per context"),
    "budget_s": Bound(1, 7 * 86400, integer=False, what="seconds per profile point"),
    "max_memory_gb": Bound(0.1, 10**6, integer=False, what="memory cap per point (GiB)"),
    "threads": Bound(0, 4096, what="torch threads per worker (0: torch's default)"),
    "vocab_size": Bound(2, MAX_LEN, what="vocabulary size"),
}


# The RunSpec fields bounded here (every numeric one): spec checks and the record schema.
SPEC_FIELDS = (
    "seq_len", "min_seq_len", "eval_lengths", "d_model", "n_layers", "steps", "batch_size",
    "lr", "warmup", "weight_decay", "grad_clip", "beta1", "beta2", "eps", "momentum", "eval_every",
    "val_examples", "test_examples", "long_test_examples", "attention_eval_cap", "seed",
    "budget_multiple", "reference_steps",
)  # fmt: skip


def bound(name: str) -> Bound:
    return BOUNDS[name]


def check(name: str, value: Any, where: str) -> None:
    """One-line UserError when `value` is outside the bound of `name` (None is not checked:
    fields that may be left open say so themselves)."""
    if value is None:
        return
    b = BOUNDS[name]
    if not b.contains(value):
        kind = "an integer" if b.integer else "a number"
        raise UserError(f"{where}: {name} must be {kind} in {b.describe()}, got {value!r}")


def click_type(name: str) -> Any:
    """The click parameter type of a flag bounded by `name` (IntRange / FloatRange), so a flag
    and the suite-file field refuse the same values."""
    import click

    b = BOUNDS[name]
    if b.integer:
        return click.IntRange(int(b.low), int(b.high))

    class FiniteFloatRange(click.FloatRange):
        """click's FloatRange lets NaN through (every comparison with NaN is false)."""

        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            number = click.FLOAT.convert(value, param, ctx)
            if not math.isfinite(number):
                self.fail(f"{value!r} is not a finite number", param, ctx)
            return super().convert(number, param, ctx)

    return FiniteFloatRange(b.low, b.high, min_open=b.low_open, max_open=b.high_open)


def check_finite(value: Any, where: str) -> None:
    """One-line UserError naming `where` when `value` (a JSON-like value) holds NaN or ±inf:
    no knob or architecture field means anything with them, and JSON cannot store them."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where}: {value} is not a finite number (NaN and inf are refused)")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_finite(item, where)


def markdown_table() -> str:
    """The bounds as the markdown table in docs/harness.md."""
    lines = ["| field | bounds | type | what |", "|---|---|---|---|"]
    for name, b in BOUNDS.items():
        kind = "int" if b.integer else "float"
        lines.append(f"| `{name}` | {b.describe()} | {kind} | {b.what} |")
    return "\n".join(lines)
