"""The lr search of a sweep: "first-solved" stops at the first learning rate that solves a
configuration on every seed, for reference and calibrated runs alike, and tries every lr where
none does."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from seqbench.errors import UserError
from seqbench.harness.lr_search import config_key, ends_solved, lr_stages
from seqbench.harness.progress import Progress
from seqbench.harness.records import iter_records
from seqbench.harness.spec import RunSpec
from seqbench.harness.suites import load_builtin
from seqbench.harness.sweep import plan, run_sweep
from tests.harness_support import ECHO, tiny_spec

SOLVES, STALLS = 3e-3, 1e-7  # the echo task within a few checks / not within 60 steps
COMMON = {"task": ECHO, "steps": 60, "eval_every": 5, "warmup": None}


def grid(lrs: tuple[float, ...], **fields) -> list[RunSpec]:
    return [
        RunSpec.from_dict(tiny_spec(lr=lr, seed=seed, **COMMON, **fields))
        for lr in lrs
        for seed in (0, 1)
    ]


def quiet() -> Progress:
    return Progress(0, stream=io.StringIO())


def tried_lrs(out: Path) -> list[tuple[str, float]]:
    return sorted((r["spec"]["budget"], r["spec"]["lr"]) for r in iter_records(out))


def test_stages_follow_each_configurations_lr_order() -> None:
    specs = grid((STALLS, SOLVES)) + grid((SOLVES,), seq_len=6)
    stages = lr_stages(plan(specs), "first-solved")
    assert [[(p.spec.lr, p.spec.seq_len) for p in stage] for stage in stages] == [
        [(STALLS, 8), (STALLS, 8), (SOLVES, 6), (SOLVES, 6)],
        [(SOLVES, 8), (SOLVES, 8)],
    ]
    assert len({config_key(p.spec) for p in stages[0]}) == 2  # lr and seed are not the config
    assert [len(s) for s in lr_stages(plan(specs), "all")] == [6]


def test_first_solved_leaves_out_the_later_lrs_of_solved_configurations(tmp_path: Path) -> None:
    reference = grid((SOLVES, STALLS), budget="reference")
    follower = grid((SOLVES, STALLS), budget="calibrated")  # the same model, 3x its steps
    result = run_sweep(reference + follower, tmp_path, progress=quiet(), lr_search="first-solved")
    assert tried_lrs(tmp_path) == [("calibrated", SOLVES)] * 2 + [("reference", SOLVES)] * 2
    assert result.ran == 4 and result.left_out == 4 and len(result.run_ids) == 4
    # the same sweep with every lr runs the rest, and skips what the first one recorded
    every = run_sweep(reference + follower, tmp_path, progress=quiet())
    assert every.ran == 4 and every.skipped == 4 and every.left_out == 0


def test_an_lr_that_leaves_a_seed_unsolved_does_not_end_the_search(tmp_path: Path) -> None:
    result = run_sweep(grid((STALLS, SOLVES)), tmp_path, progress=quiet(), lr_search="first-solved")
    assert tried_lrs(tmp_path) == [("fixed", STALLS)] * 2 + [("fixed", SOLVES)] * 2
    assert result.left_out == 0
    stalled = [r for r in iter_records(tmp_path) if r["spec"]["lr"] == STALLS]
    assert all(r["metrics"]["steps_run"] == 60 for r in stalled)  # really unsolved


def test_the_paper_suite_searches_mqar_lrs_default_first() -> None:
    suite = load_builtin("paper")
    assert suite.lr_search == "first-solved"
    mqar = [s.lr for s in suite.specs if s.task == "mqar"]
    assert list(dict.fromkeys(mqar)) == [3e-3, 1e-3, 1e-2]
    assert load_builtin("quick").lr_search == "all"


def test_lrs_the_folder_holds_are_tried_again_for_every_seed(tmp_path: Path) -> None:
    """So each lr a report reads has the same seeds, and --force leaves no stale record."""
    run_sweep(grid((SOLVES, STALLS)), tmp_path, progress=quiet())  # every lr, seeds 0 and 1
    forced = run_sweep(
        grid((SOLVES, STALLS)), tmp_path, progress=quiet(), force=True, lr_search="first-solved"
    )
    assert forced.ran == 4 and forced.left_out == 0
    more = [RunSpec.from_dict(tiny_spec(lr=lr, seed=2, **COMMON)) for lr in (SOLVES, STALLS)]
    again = run_sweep(more, tmp_path, progress=quiet(), lr_search="first-solved")
    assert again.ran == 2 and again.left_out == 0
    assert sorted((r["spec"]["lr"], r["spec"]["seed"]) for r in iter_records(tmp_path)) == [
        (STALLS, 0), (STALLS, 1), (STALLS, 2), (SOLVES, 0), (SOLVES, 1), (SOLVES, 2)
    ]  # fmt: skip


def test_solved_means_the_final_validation_accuracy() -> None:
    passed = {"status": "ok", "metrics": {"val": {"accuracy": 0.995}}}
    fell_back = {"status": "ok", "metrics": {"val": {"accuracy": 0.80}, "steps_to": {"0.99": {}}}}
    assert ends_solved(passed)
    assert not ends_solved(fell_back)
    assert not ends_solved({**passed, "status": "failed"}) and not ends_solved(None)


def test_followers_that_calibrate_to_one_run_count_once(tmp_path: Path) -> None:
    reference = grid((SOLVES,), budget="reference")
    caps = [RunSpec.from_dict(tiny_spec(budget="calibrated", **{**COMMON, "steps": cap}))
            for cap in (400, 500)]  # fmt: skip
    result = run_sweep(reference + caps, tmp_path, progress=quiet())
    assert result.ran == 3 and result.left_out == 0


def test_an_unknown_search_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="lr_search must be one of all, first-solved, not 'best'"):
        run_sweep(grid((SOLVES,)), tmp_path, progress=quiet(), lr_search="best")
    assert not list(iter_records(tmp_path))
