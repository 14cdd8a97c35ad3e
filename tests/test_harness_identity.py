"""A run's identity covers what defines it: resolved model config, task version, optimiser."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from seqbench.architectures import PRESETS
from seqbench.harness.prepare import prepare
from seqbench.harness.progress import Progress
from seqbench.harness.records import iter_records
from seqbench.harness.report.data import load
from seqbench.harness.spec import RunSpec
from seqbench.harness.sweep import run_sweep
from tests.harness_support import FirstTokenTask, tiny_spec


def tiny(**fields) -> RunSpec:
    return RunSpec.from_dict(tiny_spec(**fields))


def sweep(out: Path, **fields):
    return run_sweep([tiny(**fields)], out, progress=Progress(1, stream=io.StringIO()))


def test_a_changed_preset_field_is_a_new_run(tmp_path, monkeypatch) -> None:
    assert sweep(tmp_path).ran == 1
    assert sweep(tmp_path).skipped == 1  # unchanged: recorded ok, skipped
    # the preset's recipe changes (as if its code were edited): same spec, new definition
    monkeypatch.setattr(PRESETS.get("mha").config, "ffn_kwargs", {"d_hidden": 48})
    again = sweep(tmp_path)
    assert again.skipped == 0 and again.ran == 1  # the old record is not reused
    models = [r["definition"]["model"]["ffn_kwargs"] for r in iter_records(tmp_path)]
    assert sorted(map(json.dumps, models)) == sorted(map(json.dumps, [{}, {"d_hidden": 48}]))


def test_a_bumped_task_version_is_a_new_run(tmp_path, monkeypatch) -> None:
    before = prepare(tiny()).run_id
    assert sweep(tmp_path).ran == 1
    monkeypatch.setattr(FirstTokenTask, "version", FirstTokenTask.version + 1)
    after = prepare(tiny())
    assert after.run_id != before
    assert after.definition["task"]["version"] == FirstTokenTask.version
    assert sweep(tmp_path).ran == 1


@pytest.mark.parametrize("field", ["beta1", "beta2", "eps", "momentum"])
def test_optimiser_constants_are_spec_fields_in_the_identity(field) -> None:
    base = prepare(tiny())
    changed = prepare(tiny(**{field: getattr(base.spec, field) / 2}))
    assert changed.run_id != base.run_id
    assert field in base.spec.to_dict()


def test_records_carry_family_and_task_tags(tmp_path) -> None:
    sweep(tmp_path)
    (record,) = iter_records(tmp_path)
    assert record["definition"]["family"] == "attention"
    assert record["definition"]["task"] == {
        "name": "first_token",
        "version": 0,
        "tags": [],
        "chance": None,
    }
    assert record["spec"]["beta2"] == 0.98


def test_the_report_uses_the_newest_definition_and_says_so(tmp_path, monkeypatch) -> None:
    sweep(tmp_path)
    monkeypatch.setattr(FirstTokenTask, "version", 7)
    sweep(tmp_path)
    data = load(tmp_path)
    assert len(data.runs) == 1 and data.runs["task_version"].iloc[0] == 7
    assert len(data.superseded) == 1 and "FirstTokenTask" in data.superseded[0]
