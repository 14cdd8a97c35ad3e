"""Help texts, the bounds table (one declaration, documented and shared by every command) and
names matched case-insensitively."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from seqbench.errors import UserError
from seqbench.harness import bounds
from seqbench.harness.cli import _register_commands, cli, main
from seqbench.harness.spec import RunSpec
from seqbench.tasks import TASKS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "harness.md"


def help_text(*args: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_run_help_lists_task_knobs_and_says_which_flags_sweep(capsys) -> None:
    text = help_text("run", capsys=capsys)
    assert "Task knobs (--KNOB VALUE" in text
    for flag in ("--num-pairs INT", "--vocab-size INT", "--alpha FLOAT"):
        assert flag in text
    assert "knob of mqar" in text
    for flag in ("--arch", "--task", "--seq-len", "--d-model", "--lr", "--seed"):
        line = next(line for line in text.splitlines() if line.strip().startswith(flag + " "))
        block = text[text.index(line) :].split("\n  --")[0]
        assert "Repeatable" in block, block


def test_every_flag_of_every_command_has_help() -> None:
    _register_commands()
    for name, command in cli.commands.items():
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"seqbench {name} {param.opts[0]} has no help text"


def test_the_bounds_table_is_documented_as_declared() -> None:
    assert bounds.markdown_table() in DOCS.read_text(encoding="utf-8")


def test_one_bound_for_run_sample_and_profile_seeds(capsys) -> None:
    seed = bounds.bound("seed")
    assert seed.describe() == "0..4294967295"
    for args in (["sample", "mqar"], ["profile", "--arch", "mha"], ["run"]):
        text = help_text(*args, capsys=capsys)
        assert "--seed" in text and "0<=x<=4294967295" in text.replace("\n", " ").replace(" ", "")
    with pytest.raises(UserError, match=r"seed must be an integer in 0\.\.4294967295"):
        RunSpec.from_dict({"arch": "mha", "task": "mqar", "seed": 2**32})
    RunSpec.from_dict({"arch": "mha", "task": "mqar", "seed": 2**32 - 1})


def test_every_numeric_spec_field_is_bounded() -> None:
    numeric = [
        f.name
        for f in RunSpec.__dataclass_fields__.values()
        if any(t in str(f.type) for t in ("int", "float"))
    ]
    assert sorted(numeric) == sorted(bounds.SPEC_FIELDS)


def test_names_match_case_insensitively_when_unambiguous() -> None:
    assert TASKS.canonical("MQAR") == "mqar"
    assert TASKS.get("Mqar") is TASKS.get("mqar")
    with pytest.raises(UserError, match="did you mean 'mqar'"):
        TASKS.get("mqr")


def test_a_spec_records_the_registered_spelling() -> None:
    from seqbench.harness.prepare import prepare

    upper = prepare(RunSpec(arch="MHA", task="MQAR", seq_len=16, device="cpu"))
    lower = prepare(RunSpec(arch="mha", task="mqar", seq_len=16, device="cpu"))
    assert (upper.spec.arch, upper.spec.task) == ("mha", "mqar")
    assert upper.run_id == lower.run_id
