"""The papers' protocols in the harness: training on a range of lengths, test-only knobs,
calibrated budgets, and a suite measured again on other seeds."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from seqbench.errors import UserError
from seqbench.harness.calibration import (
    calibrated_steps,
    check_references,
    full_multiple,
    reference_steps,
    setting_key,
)
from seqbench.harness.cli.run_cmd import with_seeds
from seqbench.harness.prepare import prepare
from seqbench.harness.progress import Progress
from seqbench.harness.records import iter_records
from seqbench.harness.spec import RunSpec
from seqbench.harness.sweep import run_sweep
from seqbench.harness.train import TrainLengths
from tests.harness_support import ECHO, tiny_spec


def tiny(**fields) -> RunSpec:
    return RunSpec.from_dict(tiny_spec(**fields))


def quiet() -> Progress:
    return Progress(0, stream=io.StringIO())


# -- training on a range of lengths ---------------------------------------------------------------
def test_training_lengths_cover_the_range_and_repeat_with_the_seed() -> None:
    spec = prepare(tiny(seq_len=12, min_seq_len=3)).spec
    task = prepare(spec).task
    lengths = [TrainLengths(task, spec)(step).seq_len for step in range(400)]
    assert set(lengths) == set(range(3, 13))  # every length of 3..12, nothing else
    again = [TrainLengths(task, spec)(step).seq_len for step in range(400)]
    assert lengths == again
    other = prepare(tiny(seq_len=12, min_seq_len=3, seed=1)).spec
    assert [TrainLengths(task, other)(s).seq_len for s in range(400)] != lengths


def test_without_a_range_every_batch_is_at_seq_len() -> None:
    spec = prepare(tiny(seq_len=12)).spec
    task = prepare(spec).task
    assert {TrainLengths(task, spec)(step).seq_len for step in range(50)} == {12}


def test_a_range_above_seq_len_or_impossible_for_the_task_is_refused() -> None:
    with pytest.raises(UserError, match="min_seq_len 20 is above seq_len 12"):
        tiny(seq_len=12, min_seq_len=20)
    # mqar with 4 pairs needs more than 4 tokens: the short end of the range fails up front
    spec = RunSpec.from_dict(
        {"arch": "mha", "task": "mqar", "seq_len": 32, "min_seq_len": 4, "knobs": {"num_pairs": 4}}
    )
    with pytest.raises(UserError, match="mqar"):
        prepare(spec)


def test_a_run_on_a_range_trains_on_shorter_batches(tmp_path: Path) -> None:
    run_sweep([tiny(seq_len=16, min_seq_len=4, steps=20)], tmp_path, progress=quiet())
    (record,) = iter_records(tmp_path)
    assert record["status"] == "ok"
    # 20 batches of 8 sequences, each at most 16 tokens and not all at 16
    assert 20 * 8 * 4 <= record["timings"]["train_tokens"] < 20 * 8 * 16


# -- test-only knobs ------------------------------------------------------------------------------
def test_test_knobs_apply_to_the_test_split_only(tmp_path: Path) -> None:
    spec = tiny(task=ECHO, seq_len=8, eval_lengths=[16], test_knobs={"every": 4}, steps=5)
    prepared = prepare(spec)
    assert prepared.task.every == 1  # training and validation as the knobs say
    assert prepared.test_task_at(16).every == 4 and prepared.test_task_at(8).every == 4
    run_sweep([spec], tmp_path, progress=quiet())
    (record,) = iter_records(tmp_path)
    test = record["metrics"]["test"]
    assert test["8"]["scored"] == 16 * 2 and test["16"]["scored"] == 16 * 4  # every 4th token


def test_an_unknown_test_knob_fails_before_training() -> None:
    with pytest.raises(UserError, match="no knob 'score'"):
        prepare(tiny(task=ECHO, test_knobs={"score": "last"}))


def test_new_fields_at_their_defaults_leave_the_run_id_as_it_was() -> None:
    plain = tiny()
    explicit = tiny(min_seq_len=None, test_knobs={}, budget="fixed", budget_multiple=3.0)
    assert prepare(plain).run_id == prepare(explicit).run_id
    assert "min_seq_len" not in plain.identity() and "budget" not in plain.identity()
    assert prepare(tiny(min_seq_len=4)).run_id != prepare(plain).run_id
    # the same for model fields added later: freeze_embeddings off is the model it always was
    from seqbench.architectures import ModelConfig

    assert "freeze_embeddings" not in ModelConfig().identity()
    assert ModelConfig(freeze_embeddings=True).identity()["freeze_embeddings"] is True
    frozen = tiny(overrides={**plain.overrides, "freeze_embeddings": True})
    assert prepare(frozen).run_id != prepare(plain).run_id


# -- calibrated budgets ---------------------------------------------------------------------------
def record(seed: int, solved: int | None, status: str = "ok") -> dict:
    hit = {"step": solved, "tokens": 0} if solved else None
    return {"status": status, "spec": {"seed": seed}, "metrics": {"steps_to": {"0.99": hit}}}


def test_reference_steps_take_the_best_lr_per_seed_then_the_worst_seed() -> None:
    records = [record(0, 200), record(0, 100), record(1, 300), record(1, None)]
    assert reference_steps(records) == 300
    assert reference_steps([*records, record(2, None), record(2, None, "failed")]) is None
    assert reference_steps([]) is None


def test_calibrated_steps_are_the_multiple_rounded_to_checks_and_capped() -> None:
    spec = tiny(budget="calibrated", steps=1000, eval_every=50, reference_steps=110)
    assert calibrated_steps(spec) == 350  # 3 x 110 = 330, up to the next check
    capped = tiny(budget="calibrated", steps=200, eval_every=50, reference_steps=110)
    assert calibrated_steps(capped) == 200
    assert not full_multiple(capped.to_dict() | {"steps": 200})
    assert full_multiple(spec.to_dict() | {"steps": 350})
    unknown = tiny(budget="calibrated", steps=1000, reference_steps=None)
    assert calibrated_steps(unknown) == 1000


def test_a_setting_ignores_the_model_and_its_optimisation() -> None:
    a = tiny(arch="mha", lr=1e-3, seed=0, steps=100, budget="reference")
    b = tiny(arch="lru", lr=3e-3, seed=2, steps=900, budget="calibrated", overrides={})
    assert setting_key(a) == setting_key(b)
    assert setting_key(a) != setting_key(tiny(seq_len=16))


def test_a_calibrated_run_without_a_reference_is_refused() -> None:
    with pytest.raises(UserError, match="no run of this sweep has budget = reference"):
        check_references([tiny(budget="calibrated"), tiny(seq_len=16, budget="reference")])


def test_calibrated_runs_train_the_multiple_of_what_the_reference_needed(tmp_path: Path) -> None:
    """The echo task is solved within a few checks; the follower gets 2x those steps."""
    common = {"task": ECHO, "steps": 200, "eval_every": 5, "warmup": None}
    reference = [tiny(budget="reference", seed=s, **common) for s in (0, 1)]
    follower = tiny(
        budget="calibrated", budget_multiple=2.0, early_stop=False, lr=3e-4, **common
    )
    result = run_sweep([follower, *reference], tmp_path, progress=quiet())
    records = {r["run_id"]: r for r in iter_records(tmp_path)}
    assert len(records) == 3 == result.ran and set(result.run_ids) == set(records)
    refs = [r for r in records.values() if r["spec"]["budget"] == "reference"]
    (follow,) = [r for r in records.values() if r["spec"]["budget"] == "calibrated"]
    solved = max(r["metrics"]["steps_to"]["0.99"]["step"] for r in refs)
    assert follow["spec"]["reference_steps"] == solved
    assert follow["spec"]["steps"] == follow["metrics"]["steps_run"] == 2 * solved
    # a rerun recomputes the same budgets and skips everything
    again = run_sweep([follower, *reference], tmp_path, progress=quiet())
    assert again.ran == 0 and again.skipped == 3


# -- a suite on other seeds -----------------------------------------------------------------------
def test_with_seeds_replaces_each_configurations_seeds() -> None:
    specs = [tiny(seed=s, lr=lr) for s in (0, 1, 2) for lr in (1e-3, 3e-3)]
    swapped = with_seeds(specs, (3, 4))
    assert sorted((s.lr, s.seed) for s in swapped) == [
        (1e-3, 3), (1e-3, 4), (3e-3, 3), (3e-3, 4)
    ]  # fmt: skip
    assert with_seeds(specs, ()) == specs


def test_a_suite_part_keeps_the_tasks_asked_for_and_their_references() -> None:
    from seqbench.harness.cli.run_cmd import only_tasks
    from seqbench.harness.suites import load_builtin

    specs = load_builtin("paper-long").specs
    mqar = only_tasks(specs, ("MQAR",))  # names in any case
    assert {s.task for s in mqar} == {"mqar"} and len(mqar) < len(specs)
    assert any(s.budget == "reference" for s in mqar)
    check_references(mqar)  # every calibrated run keeps its reference
    with pytest.raises(UserError, match="has no runs of parity"):
        only_tasks(specs, ("parity",))


def test_the_cli_measures_a_suite_again_on_other_seeds() -> None:
    from tests.cli_helpers import run_cli

    result = run_cli("run", "--suite", "smoke", "--seed", "7", "--task", "mqar", "--dry-run")
    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "  " in line and " lr" in line]
    assert lines and all(line.endswith(" s7") and " mqar " in line for line in lines)


def test_a_reference_that_did_not_solve_calibrates_on_its_cap() -> None:
    """With S unknown the follower trains its cap; that cap is the whole multiple when it is
    at least the multiple of the steps the reference could train."""
    from seqbench.harness.calibration import reference_cap

    ref = tiny(budget="reference", steps=500).to_dict()
    other = tiny(budget="reference", steps=900, seq_len=64).to_dict()  # another setting
    records = [{"kind": "run", "spec": s} for s in (ref, other)]
    follower = tiny(arch="lru", budget="calibrated", steps=1500, reference_steps=None).to_dict()
    assert reference_cap(records, follower) == 500
    assert full_multiple(follower, reference_cap(records, follower))
    assert not full_multiple(follower)  # without the reference's records: unknown
    short = follower | {"steps": 1400}
    assert not full_multiple(short, reference_cap(records, short))
