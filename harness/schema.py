"""The declared schema of every record kind (pydantic), checked on write and on read.

Why a schema: the report and `compare` index deep into records (`metrics.test["64"].accuracy`,
`spec.model.mixer_kwargs.attention.n_heads`, ...), and a record is a file anyone can edit or
craft. Validating each file once, against one declaration, is what lets every reader trust
what it reads; a file that fails is skipped with a one-line reason (`records.scan_records`).

Kinds (docs/records.md):
- `run`: a training run (`RunRecord`);
- `profile` with `spec.mode` train/decode/counted: a profile point (`ProfilePointRecord`);
- `profile` with `spec.mode` "fit": a scaling fit derived from points (`ProfileFitRecord`).

Extra keys are allowed everywhere (a newer writer may add fields; readers ignore what they do
not know), but every key a reader uses has a declared type, and numbers have bounds: spec
sizes from `seqbench.harness.bounds`, every integer within 64 bits. Types are strict: "8" is
not an integer and true is not a number.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from seqbench.harness.bounds import BOUNDS

SCHEMA_VERSION = 1
KINDS = ("run", "profile")
STATUSES = ("ok", "failed", "oom", "diverged", "skipped")  # skipped: a profile point not run
POINT_MODES = ("train", "decode", "counted")
NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
MAX_INT = 2**63 - 1  # what a DataFrame column of int64 holds


class Loose(BaseModel):
    """Strict types for declared keys, anything for undeclared ones."""

    model_config = ConfigDict(strict=True, extra="allow")


def _bounded(name: str) -> Any:
    bound = BOUNDS[name]

    def check(value: Any) -> Any:
        if value is not None and not bound.contains(value):
            raise ValueError(f"must be in {bound.describe()}")
        return value

    return AfterValidator(check)


def _number(value: Any) -> Any:
    """A JSON number, or the documented string form of a non-finite one ("NaN", ...)."""
    if isinstance(value, str) and value in NONFINITE:
        return NONFINITE[value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ValueError("integer out of 64-bit range")
    return value


Number = Annotated[float, BeforeValidator(_number)]
Scalar = Annotated[str, Field(max_length=10_000)] | int | float | bool | None
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Name = Annotated[str, Field(min_length=1, max_length=1000)]
RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]


def _bounded_int(name: str) -> Any:
    return Annotated[int, _bounded(name)]


# -- pieces shared by the kinds --------------------------------------------------------------------
class Attention(Loose):
    n_heads: Annotated[int, Field(ge=1, le=65536)] | None = None
    n_kv_heads: Annotated[int, Field(ge=1, le=65536)] | None = None


class MixerKwargs(Loose):
    attention: Attention | None = None


class FfnKwargs(Loose):
    n_experts: Annotated[int, Field(ge=1, le=65536)] | None = None
    top_k: Annotated[int, Field(ge=1, le=65536)] | None = None


class ModelInfo(Loose):
    """The recorded `ModelConfig` (what the report reads of it)."""

    layer_pattern: list[Name] | None = None
    mixer_kwargs: MixerKwargs | None = None
    ffn: Name | None = None
    ffn_kwargs: FfnKwargs | None = None


def _check_ints(value: Any, depth: int = 0) -> None:
    """Every integer within 64 bits, nesting at most 64 deep (a reader converts numbers to
    floats and int64 columns; a 400-digit integer would overflow there)."""
    if depth > 64:
        raise ValueError("nested more than 64 levels deep")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise ValueError("integer out of 64-bit range")
    if isinstance(value, dict):
        for item in value.values():
            _check_ints(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_ints(item, depth + 1)


def _check_finite(value: Any, where: str) -> None:
    """No NaN or infinity in a spec: specs are hashed as canonical JSON, which has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} holds a non-finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _check_finite(item, where)


class Envelope(Loose):
    """What every record has, whatever its kind."""

    schema_version: Literal[1]
    kind: Literal["run", "profile"]
    run_id: RunId
    status: Literal["ok", "failed", "oom", "diverged", "skipped"]
    reason: Annotated[str, Field(max_length=100_000)] | None = None
    timings: dict[str, Number | None] = {}
    environment: dict[str, Scalar] = {}
    git_commit: str | None = None
    created: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _sane_numbers(cls, data: Any) -> Any:
        _check_ints(data)
        if isinstance(data, dict):
            _check_finite(data.get("spec"), "spec")
        return data


# -- kind "run" ------------------------------------------------------------------------------------
class RunSpecModel(Loose):
    """The resolved RunSpec (fields added by later versions pass as extras)."""

    arch: Name
    task: Name
    seq_len: _bounded_int("seq_len")
    min_seq_len: _bounded_int("min_seq_len") | None = None
    lr: Annotated[float, _bounded("lr")]
    seed: _bounded_int("seed")
    eval_lengths: list[_bounded_int("eval_lengths")] = []
    d_model: _bounded_int("d_model") | None = None
    n_layers: _bounded_int("n_layers") | None = None
    overrides: dict[str, Any] = {}
    knobs: dict[str, Any] = {}
    test_knobs: dict[str, Any] = {}
    steps: _bounded_int("steps") | None = None
    budget: Literal["fixed", "reference", "calibrated"] | None = None
    budget_multiple: Annotated[float, _bounded("budget_multiple")] | None = None
    reference_steps: _bounded_int("reference_steps") | None = None
    batch_size: _bounded_int("batch_size") | None = None
    optimizer: Name | None = None
    warmup: _bounded_int("warmup") | None = None
    schedule: Name | None = None
    weight_decay: Annotated[float, _bounded("weight_decay")] | None = None
    beta1: Annotated[float, _bounded("beta1")] | None = None
    beta2: Annotated[float, _bounded("beta2")] | None = None
    eps: Annotated[float, _bounded("eps")] | None = None
    momentum: Annotated[float, _bounded("momentum")] | None = None
    grad_clip: Annotated[float, _bounded("grad_clip")] | None = None
    early_stop: bool | None = None
    eval_every: _bounded_int("eval_every") | None = None
    val_examples: _bounded_int("val_examples") | None = None
    test_examples: _bounded_int("test_examples") | None = None
    long_test_examples: _bounded_int("long_test_examples") | None = None
    attention_eval_cap: _bounded_int("attention_eval_cap") | None = None
    device: Name | None = None
    dtype: Name | None = None


class Scores(Loose):
    accuracy: Number | None = None
    exact_match: Number | None = None
    loss: Number | None = None


class CurvePoint(Scores):
    step: Count  # a point of a learning curve is at a step: without one it cannot be placed


class MoeLayer(Loose):
    n_experts: Annotated[int, Field(ge=1, le=65536)]
    top_k: Annotated[int, Field(ge=1, le=65536)] | None = None
    load: Annotated[list[Number], Field(min_length=1)]
    dropped_fraction: Number
    balance_loss: Number
    z_loss: Number | None = None


LengthKey = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,9}$")]


class RunMetrics(Loose):
    params_total: Count | None = None
    params_active: Count | None = None
    model: ModelInfo | None = None
    steps_run: Count | None = None
    stopped_early: bool | None = None
    train_loss: Number | None = None
    val: Scores | None = None
    val_curve: list[CurvePoint] | None = None
    test: dict[LengthKey, Scores] = {}
    moe: dict[str, MoeLayer] | None = None
    kernel_paths: dict[str, str] | None = None
    traceback: str | None = None


class TaskInfo(Loose):
    name: Name | None = None
    version: Annotated[int, Field(ge=0, le=MAX_INT)] | Name | None = None
    tags: list[Name] = []
    chance: Annotated[float, Field(ge=0, le=1)] | None = None


class Definition(Loose):
    """What defines a run beyond its spec (`Prepared.definition`)."""

    model: ModelInfo | None = None
    family: Name | None = None
    mixer_families: dict[str, Name | None] = {}
    task: TaskInfo | None = None


class RunRecord(Envelope):
    kind: Literal["run"]
    spec: RunSpecModel
    definition: Definition | None = None
    metrics: RunMetrics = RunMetrics()


# -- kind "profile" --------------------------------------------------------------------------------
class PointSpec(Loose):
    mode: Literal["train", "decode", "counted"]
    arch: Name
    overrides: dict[str, Any] = {}
    seq_len: Annotated[int, Field(ge=1, le=MAX_INT)] | None = None  # bound: by mode, below
    context: _bounded_int("context") | None = None
    batch: _bounded_int("batch")
    d_model: _bounded_int("d_model")
    n_layers: _bounded_int("n_layers")
    impl: Name | None = None
    vocab_size: _bounded_int("vocab_size") | None = None
    device: Name
    dtype: Name | None = None
    seed: _bounded_int("seed") = 0
    threads: _bounded_int("threads") | None = None
    model: ModelInfo | None = None

    @model_validator(mode="after")
    def _has_length(self) -> PointSpec:
        field = "context" if self.mode == "decode" else "seq_len"
        if getattr(self, field) is None:
            raise ValueError(f"a {self.mode} point needs {field}")
        bound = BOUNDS["counted_len" if self.mode == "counted" else "seq_len"]
        if self.seq_len is not None and not bound.contains(self.seq_len):
            raise ValueError(f"seq_len of a {self.mode} point must be in {bound.describe()}")
        return self


class Parameters(Loose):
    total: Count | None = None
    active: Count | None = None


class PointMetrics(Loose):
    step_s: Number | None = None
    step_cpu_s: Number | None = None
    tokens_per_s: Number | None = None
    flops_per_token: Number | None = None
    prefill_s: Number | None = None
    prefill_cpu_s: Number | None = None
    decode_s_per_token: Number | None = None
    decode_cpu_s_per_token: Number | None = None
    state_bytes: Number | None = None
    saved_activations: Number | None = None
    memory_bytes: dict[str, Number | None] | None = None
    parameters: Parameters | None = None


class ProfilePointRecord(Envelope):
    kind: Literal["profile"]
    spec: PointSpec
    metrics: PointMetrics = PointMetrics()


class Fit(Loose):
    slope: Number
    ci_low: Number | None = None
    ci_high: Number | None = None
    r2: Number | None = None
    n_points: Count
    x_min: Number
    x_max: Number


class FitEntry(Loose):
    all: Fit | None = None
    long: Fit | None = None


class Series(Loose):
    arch: Name
    overrides: dict[str, Any] = {}
    impl: Name | None = None


class FitSpec(Loose):
    mode: Literal["fit"]
    of_mode: Literal["train", "decode", "counted"]
    x: Name
    series: Series


class FitMetrics(Loose):
    fits: dict[str, FitEntry]
    x_values: list[Number] = []
    point_ids: list[RunId] = []


class ProfileFitRecord(Envelope):
    kind: Literal["profile"]
    spec: FitSpec
    metrics: FitMetrics


# -- dispatch ------------------------------------------------------------------------------
class SchemaError(ValueError):
    """A record that does not follow its kind's schema; the message is one line."""


def schema_for(data: dict[str, Any]) -> type[Envelope]:
    """The model of a record, from its version, kind and (profile) mode; SchemaError for an
    unknown one, naming what is unknown."""
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise SchemaError(f"unknown schema_version {_short(version)} (this seqbench reads 1)")
    kind = data.get("kind")
    if kind == "run":
        return RunRecord
    if kind == "profile":
        spec = data.get("spec")
        mode = spec.get("mode") if isinstance(spec, dict) else None
        return ProfileFitRecord if mode == "fit" else ProfilePointRecord
    raise SchemaError(f"unknown kind {_short(kind)} (known: {', '.join(KINDS)})")


def validate(data: Any) -> dict[str, Any]:
    """`data` unchanged when it is a valid record of a known kind; SchemaError otherwise."""
    if not isinstance(data, dict):
        raise SchemaError(f"a record is a JSON object, got {type(data).__name__}")
    model = schema_for(data)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise SchemaError(first_problem(exc)) from None
    except RecursionError:
        raise SchemaError("nested too deeply") from None
    return data


def first_problem(exc: ValidationError) -> str:
    """'spec.seq_len: must be in 1..1048576 (and 2 more problems)' — one line."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" * (len(errors) > 1)
    return _one_line(f"{where}: {message}{more}")


def _short(value: Any) -> str:
    return _one_line(repr(value))[:60]


def _one_line(text: str) -> str:
    return " ".join(text.split())
