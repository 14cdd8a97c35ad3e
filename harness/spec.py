"""RunSpec: everything that decides one training run, as plain data.

A spec is what a suite file's grid expands to and what a record stores. Two specs with the
same canonical JSON are the same experiment, so the run_id (the file name of the record) is a
hash of it. Parsing is strict: an unknown field or a value of the wrong type is a one-line
`UserError` naming the field, never silently ignored, because a typo in a sweep file would
otherwise cost an hour of the wrong runs.

`RunSpec` itself knows nothing about architectures or tasks; `seqbench.harness.prepare` checks a
spec
against them (building the model config and the task) and resolves the defaults it leaves
open (device, dtype, preset width and depth, task knobs) before anything trains.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from seqbench.errors import UserError
from seqbench.harness import bounds
from seqbench.harness.bounds import SPEC_FIELDS as BOUND_FIELDS
from seqbench.harness.records import spec_hash
from seqbench.registry import did_you_mean

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "linear", "constant")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16")
BUDGETS = ("fixed", "reference", "calibrated")
# Fields added after the first record schema: left out of the identity hash while at their
# default, so a run that uses none of them keeps the run_id it always had.
LATER_FIELDS = {
    "min_seq_len": None,
    "test_knobs": {},
    "budget": "fixed",
    "budget_multiple": 3.0,
    "reference_steps": None,
}


@dataclass
class RunSpec:
    """One run: architecture × task × sizes × optimisation × seed.

    `d_model`/`n_layers` None means the preset's own, `warmup` None 10% of `steps`;
    `device`/`dtype` "auto" means CUDA with bf16 autocast when present, else CPU float32.
    `prepare` fills these in before hashing.
    """

    arch: str  # preset name, registered mixer, or "pkg.mod:Class" / "pkg.mod:PRESET"
    task: str  # registered task or "pkg.mod:Class"
    seq_len: int = 64  # training length (the longest one with min_seq_len)
    # With min_seq_len, each training batch has one length drawn uniformly from
    # [min_seq_len, seq_len] (Grazzi et al.'s state-tracking protocol trains on 3-40 tokens);
    # validation and the test at seq_len stay at seq_len. None: every batch at seq_len.
    min_seq_len: int | None = None
    eval_lengths: list[int] = field(default_factory=list)  # test lengths besides seq_len
    d_model: int | None = None
    n_layers: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # architecture fields, flat keys
    knobs: dict[str, Any] = field(default_factory=dict)  # task knobs (not seq_len)
    # Task knobs of the test split only, at every test length, e.g. {"score": "last"}: the
    # papers' end-of-sequence metric on a model trained with a label at every position.
    test_knobs: dict[str, Any] = field(default_factory=dict)
    steps: int = 1000  # training budget in optimiser steps (the cap, for budget=calibrated)
    # How `steps` is set (harness/calibration.py): "fixed" as given; "reference" marks the
    # setting's reference model, trained until solved (early stop) within `steps`;
    # "calibrated" trains budget_multiple x the steps the reference needed to solve, at most
    # `steps`. The sweep fills reference_steps in (None: the reference did not solve).
    budget: str = "fixed"
    budget_multiple: float = 3.0
    reference_steps: int | None = None
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    warmup: int | None = None  # linear warm-up steps; None: 10% of steps
    schedule: str = "cosine"  # decay after warm-up, to 0 at `steps`
    weight_decay: float = 0.1  # on matrices only; see seqbench.harness.train.no_decay
    beta1: float = 0.9  # AdamW's first-moment decay
    beta2: float = 0.98  # AdamW's second-moment decay (0.98: steadier with few, small batches)
    eps: float = 1e-8  # AdamW's denominator guard
    momentum: float = 0.9  # SGD's momentum (unused by AdamW, but part of the identity)
    grad_clip: float = 1.0  # max global gradient norm (0 disables)
    early_stop: bool = True  # stop once solved: validation accuracy >= 0.99 (harness.protocol)
    eval_every: int = 100  # steps between validation checks
    val_examples: int = 256
    test_examples: int = 512
    long_test_examples: int | None = None  # test sequences at the eval_lengths; None: as test
    # Longest test length for a model whose decode state grows with the context (attention's
    # KV cache); longer ones are recorded `oom` without running. None: no cap.
    attention_eval_cap: int | None = 4096
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"

    # -- parsing --------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "spec") -> RunSpec:
        """Strictly typed construction; `where` prefixes error messages (e.g. "quick.toml")."""
        if not isinstance(data, dict):
            raise UserError(f"{where}: a run spec must be a table, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                hint = did_you_mean(key, names)
                raise UserError(
                    f"{where}: unknown field {key!r}{hint} (fields: {', '.join(names)})"
                )
        for key in ("arch", "task"):
            if key not in data:
                raise UserError(f"{where}: missing required field {key!r}")
        values = {key: _coerce(key, value, where) for key, value in data.items()}
        spec = cls(**values)
        spec.check()
        return spec

    def check(self) -> None:
        """Value checks that need no architecture or task code (sizes, choices, ranges)."""
        where = f"{self.arch} on {self.task}"
        for name in BOUND_FIELDS:  # every numeric field, bounds from one table
            value = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                bounds.check(name, item, where)
        bounds.check_finite(self.knobs, f"{where}: knob")
        bounds.check_finite(self.overrides, f"{where}: override")
        if self.warmup is not None and not 0 <= self.warmup <= self.steps:
            raise UserError(f"{where}: warmup must be in 0..steps={self.steps}, got {self.warmup}")
        for name, choices in (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("device", DEVICES),
            ("dtype", DTYPES),
            ("budget", BUDGETS),
        ):
            value = getattr(self, name)
            if value not in choices:
                hint = did_you_mean(value, list(choices))
                raise UserError(f"{where}: {name} must be one of {', '.join(choices)}{hint}")
        if "seq_len" in self.knobs or "seq_len" in self.test_knobs:
            raise UserError(f"{where}: give the training length as seq_len, not as a knob")
        if self.min_seq_len is not None and self.min_seq_len > self.seq_len:
            raise UserError(
                f"{where}: min_seq_len {self.min_seq_len} is above seq_len {self.seq_len} "
                "(the training lengths are min_seq_len..seq_len)"
            )
        bounds.check_finite(self.test_knobs, f"{where}: test knob")
        for key in ("d_model", "n_layers"):
            value = self.overrides.get(key)
            if value is not None and getattr(self, key) not in (None, value):
                raise UserError(
                    f"{where}: {key} is {getattr(self, key)} but overrides set it to {value}"
                )

    # -- identity -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["eval_lengths"] = list(self.eval_lengths)
        return data

    def identity(self) -> dict[str, Any]:
        """What the hashes cover: every field, except later ones still at their default."""
        return identity_of(self.to_dict())

    @property
    def spec_id(self) -> str:
        """Hash of the spec alone. The run's identity (`Prepared.run_id`) adds the resolved
        model config and the task's version; two records with one spec_id and two run_ids are
        two definitions of "the same" configuration."""
        return spec_hash("spec", self.identity())

    def label(self) -> str:
        """Short human name for progress lines."""
        parts = [short_name(self.arch), short_name(self.task), f"L{self.seq_len}"]
        if self.d_model is not None:
            parts.append(f"d{self.d_model}")
        parts += [f"lr{self.lr:g}", f"s{self.seed}"]
        return " ".join(parts)

    def test_lengths(self) -> list[int]:
        """The training length and every evaluation length, sorted, each once."""
        return sorted({self.seq_len, *self.eval_lengths})

    def train_lengths(self) -> range:
        """Every length a training batch can have."""
        return range(self.min_seq_len or self.seq_len, self.seq_len + 1)


def identity_of(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec dict (a RunSpec's or a record's) as the hashes see it (`LATER_FIELDS`)."""
    return {k: v for k, v in spec.items() if k not in LATER_FIELDS or v != LATER_FIELDS[k]}


def short_name(name: str) -> str:
    """ "pkg.mod:Class" -> "Class"; registered names unchanged."""
    return name.rpartition(":")[2]


# -- typed coercion --------------------------------------------------------------------------------
# Derived from the two declarations, never listed by hand: the dataclass's annotations say
# which fields are strings and which may be None, the bounds table (harness/bounds.py) which
# numeric fields are integers and which are numbers.
_NUMERIC = [n for n in BOUND_FIELDS if n != "eval_lengths"]
_INT_FIELDS = {n for n in _NUMERIC if bounds.bound(n).integer}
_FLOAT_FIELDS = {n for n in _NUMERIC if not bounds.bound(n).integer}
_STR_FIELDS = {f.name for f in dataclasses.fields(RunSpec) if f.type == "str"}
_NULLABLE = {f.name for f in dataclasses.fields(RunSpec) if str(f.type).endswith("| None")}


def _coerce(key: str, value: Any, where: str) -> Any:
    """The value for field `key`, or a one-line error naming the expected type."""

    def bad(expected: str) -> UserError:
        return UserError(f"{where}: {key} must be {expected}, got {value!r}")

    if value is None and key in _NULLABLE:
        return None
    if key in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if key in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if key in _STR_FIELDS:
        if not isinstance(value, str) or not value:
            raise bad("a non-empty string")
        return value
    if key == "early_stop":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "eval_lengths":
        if not isinstance(value, (list, tuple)) or any(
            isinstance(v, bool) or not isinstance(v, int) for v in value
        ):
            raise bad("a list of integers")
        return sorted(set(value))
    if key in ("overrides", "knobs", "test_knobs"):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise bad("a table of NAME = VALUE")
        return dict(value)
    raise AssertionError(f"no coercion for field {key}")
