"""Suite files: grid expansion, strictness, and the built-in suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqbench.errors import UserError
from seqbench.harness.suites import builtin_names, expand, load_builtin, load_file
from seqbench.harness.sweep import plan
from tests.harness_support import ECHO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def test_grid_is_the_product_of_every_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
description = "two grids"
[defaults]
steps = 7
knobs = {{ vocab_size = 8 }}
[[grid]]
arch = ["mha", "gqa"]
task = "{ECHO}"
seq_len = [8, 16]
lr = [1e-3, 3e-3]
seed = [0, 1, 2]
eval_lengths = [32, 64]
knobs = {{ every = [1, 2] }}
[[grid]]
arch = "mqa"
task = "{ECHO}"
eval_lengths = [[], [16]]
steps = 9
""",
    )
    suite = load_file(path)
    assert suite.name == "mine" and suite.description == "two grids"
    first = [s for s in suite.specs if s.arch != "mqa"]
    assert len(first) == 2 * 2 * 2 * 3 * 2
    assert all(s.steps == 7 and s.eval_lengths == [32, 64] for s in first)
    assert {s.knobs["every"] for s in first} == {1, 2}
    assert all(s.knobs["vocab_size"] == 8 for s in first)  # tables merge over defaults
    second = [s for s in suite.specs if s.arch == "mqa"]
    assert [s.eval_lengths for s in second] == [[], [16]]
    assert all(s.steps == 9 for s in second)


def test_by_arch_applies_to_one_architecture_and_grids_still_win(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[defaults]
arch = ["mha", "gqa"]
task = "{ECHO}"
overrides = {{ "attention.n_heads" = 4 }}
[by_arch.gqa]
lr = 0.01
steps = 5
overrides = {{ "attention.n_kv_heads" = 2 }}
[[grid]]
seed = [0, 1]
[[grid]]
steps = 9
""",
    )
    specs = load_file(path).specs
    gqa = [s for s in specs if s.arch == "gqa"]
    mha = [s for s in specs if s.arch == "mha"]
    assert len(gqa) == len(mha) == 3
    assert all(s.lr == 0.01 for s in gqa) and all(s.lr == 1e-3 for s in mha)
    assert all(s.overrides == {"attention.n_heads": 4, "attention.n_kv_heads": 2} for s in gqa)
    assert all(s.overrides == {"attention.n_heads": 4} for s in mha)
    assert sorted(s.steps for s in gqa) == [5, 5, 9]  # the second grid's steps win


def test_by_task_applies_under_by_arch_and_grids(tmp_path: Path) -> None:
    """Precedence: defaults < [by_task.<task>] < [by_arch.<arch>] < the grid; a by_task list is
    an axis, and a task axis in a grid picks each task's table."""
    path = write(
        tmp_path,
        f"""
[defaults]
steps = 3
[by_task."{ECHO}"]
lr = [0.01, 0.02]
steps = 7
[by_arch.gqa]
lr = 0.5
[[grid]]
arch = ["mha", "gqa"]
task = ["{ECHO}", "mqar"]
[[grid]]
arch = "mha"
task = "{ECHO}"
steps = 9
""",
    )
    specs = load_file(path).specs
    echo_mha = sorted((s.lr, s.steps) for s in specs if s.task == ECHO and s.arch == "mha")
    assert echo_mha == [(0.01, 7), (0.01, 9), (0.02, 7), (0.02, 9)]
    assert [(s.lr, s.steps) for s in specs if s.task == ECHO and s.arch == "gqa"] == [(0.5, 7)]
    assert sorted(s.lr for s in specs if s.task == "mqar") == [1e-3, 0.5]  # no by_task table
    assert all(s.steps == 3 for s in specs if s.task == "mqar")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[grid]]\narch='mha'\ntask='x'\nsed=1\n", "mine.toml: grid 1: unknown field 'sed'"),
        ("[defaults]\nstep=3\n[[grid]]\narch='mha'\ntask='x'\n", "did you mean 'steps'"),
        ("[[grids]]\narch='mha'\n", "unknown top-level key 'grids'; did you mean 'grid'"),
        ("description='no grid'\n", r"no \[\[grid\]\] tables"),
        ("[[grid]]\narch=[]\ntask='x'\n", "arch is an empty list"),
        ("[[grid]]\narch='mha'\n", "missing required field 'task'"),
        ("[[grid]]\narch='mha'\ntask='x'\nsteps='many'\n", "steps must be an integer"),
        ("[[grid]\narch='mha'\n", "mine.toml: invalid TOML"),
        ("[by_arch.lruu]\nlr=1\n[[grid]]\narch='lru'\ntask='x'\n", "did you mean 'lru'"),
        ("[by_arch.mha]\narch='lru'\n[[grid]]\narch='mha'\ntask='x'\n", "cannot set arch"),
        ("[by_task.mqr]\nlr=1\n[[grid]]\narch='mha'\ntask='mqar'\n", "did you mean 'mqar'"),
        ("[by_task.x]\ntask='y'\n[[grid]]\narch='mha'\ntask='x'\n", "cannot set task"),
        ("by_task=3\n[[grid]]\narch='mha'\ntask='x'\n", r"\[by_task\] must hold"),
        ("lr_search='best'\n[[grid]]\narch='mha'\ntask='x'\n", "lr_search must be one of all"),
    ],
)
def test_bad_suite_files_fail_in_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment) as info:
        load_file(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_file_and_unknown_builtin() -> None:
    with pytest.raises(UserError, match="cannot read suite file"):
        load_file("/nonexistent/suite.toml")
    with pytest.raises(UserError, match="did you mean 'quick'"):
        load_builtin("quik")


def test_expand_without_defaults() -> None:
    specs = expand({"grid": [{"arch": ["mha"], "task": ECHO, "seed": [3, 4]}]}, "x")
    assert [s.seed for s in specs] == [3, 4]


def test_builtin_suites_exist_and_every_spec_prepares() -> None:
    assert {"smoke", "quick", "standard"} <= set(builtin_names())
    for name in ("smoke", "quick", "standard"):
        suite = load_builtin(name)
        assert suite.description
        prepared = plan(suite.specs)  # validates every spec against architectures and tasks
        assert len(prepared) == len(suite.specs), f"{name} has duplicate specs"


def test_quick_suite_covers_the_four_families_on_three_tasks() -> None:
    from seqbench.architectures import PRESETS

    suite = load_builtin("quick")
    families = {PRESETS.meta(s.arch)["family"] for s in suite.specs}
    assert len(families) >= 4
    assert len({s.task for s in suite.specs}) >= 3
    assert len({s.seed for s in suite.specs}) >= 2
    smoke = load_builtin("smoke")
    assert {s.arch for s in smoke.specs} == set(PRESETS.names())
