"""The task contract, checked on every registered task (the conformance test of tasks).

For each task: shapes and token ranges, an exact oracle written from the inputs alone that
scores 100% on every scored position (also at other lengths), determinism per seed, disjoint
train/val/test streams, knobs that round-trip, and variants that build.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seqbench.tasks import IGNORE_INDEX, TASKS, Task, make_task
from seqbench.tasks.knobs import describe_knobs

NAMES = TASKS.names()
N = 48  # examples per check: enough to hit rare layouts, small enough to stay fast

EXPECTED = {
    "mqar",
    "selective_copy",
    "induction",
    "copy",
    "lookup",
    "parity",
    "modular",
    "flipflop",
    "niah",
    "fuzzy_recall",
    "noisy_recall",
    "memorization",
    "listops",
}


def test_every_task_of_the_issue_is_registered() -> None:
    assert set(NAMES) >= EXPECTED


def check_batch(task: Task, seed: int) -> None:
    """Shapes, dtypes, token ranges, a scored position per example, and the oracle."""
    batch = task.sample(N, seed)
    for t in (batch.inputs, batch.targets):
        assert t.shape == (N, task.seq_len) and t.dtype == torch.int64
    assert batch.inputs.min() >= 0 and batch.inputs.max() < task.vocab_size
    scored = batch.scored
    assert scored.any(dim=1).all(), "every example must score something"
    assert batch.targets[scored].min() >= 0 and batch.targets[scored].max() < task.vocab_size
    assert (batch.targets[~scored] == IGNORE_INDEX).all()
    oracle = task.oracle(batch.inputs)
    assert oracle.shape == batch.inputs.shape
    wrong = (oracle[scored] != batch.targets[scored]).sum().item()
    assert wrong == 0, f"{task.name}: oracle disagrees on {wrong} of {scored.sum()} positions"


@pytest.mark.parametrize("name", NAMES)
def test_oracle_from_inputs_alone_is_exact(name: str) -> None:
    task = make_task(name)
    for seed in (0, 1, 2):
        check_batch(task, seed)


@pytest.mark.parametrize("name", NAMES)
def test_at_other_lengths(name: str) -> None:
    task = make_task(name)
    for length in (2 * task.seq_len, 4 * task.seq_len):
        longer = task.at_length(length)
        assert longer.seq_len == length and longer.vocab_size == task.vocab_size
        check_batch(longer, 7)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_and_splits(name: str) -> None:
    task = make_task(name)
    a, b = task.sample(8, 3), task.sample(8, 3)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(task.sample(8, 4).inputs, a.inputs)
    train = task.split_batch(8, 0, "train", 0)
    assert torch.equal(train.inputs, task.split_batch(8, 0, "train", 0).inputs)
    others = [
        task.split_batch(8, 0, "train", 1),
        task.split_batch(8, 0, "val"),
        task.split_batch(8, 0, "test"),
    ]
    for other in others:
        assert not torch.equal(other.inputs, train.inputs)
    assert not torch.equal(others[1].inputs, others[2].inputs)


@pytest.mark.parametrize("name", NAMES)
def test_metadata_knobs_and_variants(name: str) -> None:
    cls = TASKS.get(name)
    task = make_task(name)
    assert cls.name == name and cls.description and "\n" not in cls.description
    assert isinstance(cls.version, int) and cls.version >= 1, "declare the generator's version"
    assert cls.tags and all(isinstance(t, str) and t == t.lower() for t in cls.tags)
    assert "Worked example" in _module_doc(cls), "the module docstring shows a tiny example"
    knobs = task.knobs()
    assert list(knobs)[:2] == ["vocab_size", "seq_len"]
    assert knobs == describe_knobs(cls)
    assert make_task(name, **knobs) == task
    assert not {"seed", "n", "json", "variant"} & set(knobs), "would clash with sample options"
    for variant in cls.variants:
        check_batch(task.variant(variant), 11)


def _module_doc(cls: type) -> str:
    import sys

    return sys.modules[cls.__module__].__doc__ or ""


def test_knobs_are_plain_dataclass_fields() -> None:
    """The CLI derives options from the fields, so every knob must have a simple type."""
    for name in NAMES:
        for field in dataclasses.fields(TASKS.get(name)):
            assert field.type in ("int", "float", "bool", "str"), (name, field.name, field.type)
