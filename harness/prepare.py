"""Check a RunSpec against the architectures and tasks, and resolve what it leaves open.

Why up front: a sweep must fail on its first line, not after an hour, when one of its specs
cannot run (heads not dividing d_model, too many pairs for the length, an unknown name...).
`prepare` builds the model config, instantiates the model on the meta device (constructors
run their checks without allocating weights) and builds the task at every length, all without
training. It also fills in the defaults (device, dtype, preset width and depth, every task
knob), so the resolved spec — and therefore its run_id — says exactly what ran.

A run's identity is more than its spec: the same spec names a different experiment once a
preset's recipe or a task's generator changes. `Prepared.run_id` therefore hashes the resolved
spec (optimiser and schedule constants included), the resolved model config (every field)
and the task's declared version; `Prepared.definition` is what the record keeps of it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from seqbench.architectures import (
    CHANNEL_MIXERS,
    MIXERS,
    PRESETS,
    LanguageModel,
    ModelConfig,
    Preset,
)
from seqbench.architectures.presets import apply_overrides, preset_config, validate_config
from seqbench.errors import UserError
from seqbench.harness.records import canonical_json, spec_hash
from seqbench.harness.spec import RunSpec
from seqbench.registry import is_dotted_path
from seqbench.tasks import Task, make_task

IN_TREE_PACKAGE = "seqbench.architectures"


@dataclass
class Prepared:
    """A resolved spec with the objects built from it."""

    spec: RunSpec
    config: ModelConfig
    task: Task  # at the training length
    gate_targets: list[str]  # out-of-tree architecture names the conformance gate must pass

    @property
    def definition(self) -> dict[str, Any]:
        """What defines the run beyond its spec, as the record keeps it: the resolved model
        config, the mixers' families and the task's version and tags."""
        families = {name: mixer_family(name) for name in self.config.layer_pattern}
        distinct = set(families.values())
        return {
            "model": self.config.to_dict(),
            "family": distinct.pop() if len(distinct) == 1 else "hybrid",
            "mixer_families": families,
            "task": {
                "name": self.task.name or self.spec.task,
                "version": self.task.version,
                "tags": list(self.task.tags),
                "chance": self.task.chance(),
            },
        }

    @property
    def run_id(self) -> str:
        """The identity hash: spec + resolved model config + task version."""
        return run_identity(self.spec, self.config, self.task)

    def task_at(self, length: int) -> Task:
        return self.task if length == self.task.seq_len else self.task.at_length(length)

    def test_task_at(self, length: int) -> Task:
        """The task of the test split at `length`: with the spec's test knobs applied."""
        task = self.task_at(length)
        return dataclasses.replace(task, **self.spec.test_knobs) if self.spec.test_knobs else task


def run_identity(spec: RunSpec, config: ModelConfig, task: Task) -> str:
    identity = {"spec": spec.identity(), "model": config.identity(), "task_version": task.version}
    return spec_hash("run", identity)


def mixer_family(name: str) -> str | None:
    """A sequence mixer's registered family; None for an unregistered class given by path."""
    if is_dotted_path(name):
        return None
    return MIXERS.meta(name).get("family")


def prepare(spec: RunSpec, target: str | None = None) -> Prepared:
    """Validate and resolve `spec`; any problem is one `UserError` line naming the spec.

    `target`: the device of the machines the run will execute on when that is not this one
    (`Launcher.device`); "auto" resolves to it instead of to this machine's torch."""
    label = spec.label()
    try:
        return _prepare(spec, target)
    except UserError as exc:
        raise UserError(f"{label}: {exc}") from None
    except Exception as exc:  # a plugin's constructor may raise anything
        raise UserError(f"{label}: {type(exc).__name__}: {exc}") from None


def _prepare(spec: RunSpec, target: str | None) -> Prepared:
    from seqbench.architectures.conformance import canonical_architecture
    from seqbench.tasks import TASKS

    # Names in any case resolve to their registered spelling, which is what the record keeps.
    spec = dataclasses.replace(
        spec, arch=canonical_architecture(spec.arch), task=TASKS.canonical(spec.task)
    )
    device = resolve_device(spec.device, target)
    dtype = resolve_dtype(spec.dtype, device)
    task = make_task(spec.task, seq_len=spec.seq_len, **spec.knobs)
    for length in checked_lengths(spec):
        task.at_length(length)  # raises for knobs impossible at that length
    if spec.test_knobs:
        make_task(spec.task, seq_len=spec.seq_len, **{**spec.knobs, **spec.test_knobs})
    # d_model/n_layers may come as overrides (`--set d_model=32`); they live in their fields.
    overrides = {k: v for k, v in spec.overrides.items() if k not in ("d_model", "n_layers")}
    sizes = {k: v for k, v in spec.overrides.items() if k in ("d_model", "n_layers")}
    sizes |= {k: v for k, v in (("d_model", spec.d_model), ("n_layers", spec.n_layers)) if v}
    config = model_config(spec.arch, task.vocab_size, {**overrides, **sizes})
    check_model_builds(config)
    knobs = {k: v for k, v in task.knobs().items() if k != "seq_len"}
    resolved = dataclasses.replace(
        spec,
        d_model=config.d_model,
        n_layers=config.n_layers,
        overrides=overrides,
        knobs=_plain(knobs),
        eval_lengths=sorted(set(spec.eval_lengths) - {spec.seq_len}),
        warmup=spec.steps // 10 if spec.warmup is None else spec.warmup,
        device=device,
        dtype=dtype,
    )
    return Prepared(resolved, config, task, gate_targets(spec.arch, config))


# Training ranges up to this many lengths are checked length by length; longer ones at their
# ends and every power of two between (a task's rules are monotone in the length in practice).
CHECK_EVERY_LENGTH = 4096


def checked_lengths(spec: RunSpec) -> list[int]:
    """Lengths other than seq_len the task must be valid at: evaluation and training lengths."""
    train = spec.train_lengths()
    if len(train) > CHECK_EVERY_LENGTH:
        powers = [2**i for i in range(train.start.bit_length(), train.stop.bit_length())]
        train = [train.start, *(p for p in powers if p in train), train.stop - 1]
    return sorted({*spec.eval_lengths, *train} - {spec.seq_len})


def resolve_device(name: str, target: str | None = None) -> str:
    if target is not None:  # the run executes elsewhere: its CUDA is checked there, by execute
        if name == "cuda" and target != "cuda":
            raise UserError("device 'cuda' requested but the launcher's jobs get no GPU")
        return target if name == "auto" else name
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but torch sees no CUDA device")
    return name


def resolve_dtype(name: str, device: str) -> str:
    """float32 on CPU; bf16 autocast on CUDA (where it is fast and safe for these models)."""
    if name == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return name


# -- architectures ---------------------------------------------------------------------------------
def arch_object(arch: str) -> Preset | type:
    """The Preset an architecture name denotes, or the mixer class of a bare mixer."""
    if is_dotted_path(arch):
        from seqbench.architectures.conformance import dotted_architecture

        return dotted_architecture(arch)
    if arch in PRESETS or arch not in MIXERS:
        return PRESETS.get(arch)  # raises "did you mean" over preset names
    return MIXERS.get(arch)


def model_config(arch: str, vocab_size: int, overrides: dict[str, Any]) -> ModelConfig:
    """The config of a preset, or of a bare mixer (class or registered name) in the default
    model (SwiGLU, preset-default width and depth), with flat overrides applied."""
    obj = arch_object(arch)
    if isinstance(obj, Preset):
        return preset_config(obj, vocab_size, overrides)
    config = ModelConfig(layer_pattern=(arch,), vocab_size=vocab_size)
    apply_overrides(config, overrides)
    validate_config(config)
    return config


@lru_cache(maxsize=256)
def _check_cached(config_json: str) -> None:
    config = ModelConfig(**json.loads(config_json))
    try:
        with torch.device("meta"):
            LanguageModel(config)
    except UserError:
        raise
    except Exception:
        LanguageModel(config)  # some init code cannot run on meta; build for real to be sure


def check_model_builds(config: ModelConfig) -> None:
    """Run every constructor's own checks (head counts, ...) without allocating weights."""
    _check_cached(canonical_json(config.to_dict()))


def is_plugin(cls: Any) -> bool:
    return not getattr(cls, "__module__", "").startswith(IN_TREE_PACKAGE + ".")


def gate_targets(arch: str, config: ModelConfig) -> list[str]:
    """Names to pass through the conformance gate: the architecture itself when it is an
    out-of-tree preset or mixer, plus any out-of-tree mixer brought in by overrides."""
    obj = arch_object(arch)
    own: set[str] = set()
    if isinstance(obj, Preset):
        own = {*obj.config.layer_pattern, obj.config.ffn}
    components = [(m, MIXERS) for m in config.layer_pattern]
    if config.ffn != "none":
        components.append((config.ffn, CHANNEL_MIXERS))
    targets: list[str] = []
    for name, registry in components:
        if not is_plugin(registry.get(name)):
            continue
        target = arch if (name in own or not isinstance(obj, Preset)) else name
        if target not in targets:
            targets.append(target)
    return targets


def _plain(value: Any) -> Any:
    """JSON-ready copy (tuples become lists) so the spec hashes like its record reads back."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
