"""`seqbench list architectures` and `seqbench check-arch` from the shell."""

from __future__ import annotations

import json

from tests.cli_helpers import assert_one_line_error, run_cli


def test_list_architectures_shows_family_and_parameters() -> None:
    result = run_cli("list", "architectures", "--json")
    assert result.code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"mha", "gqa", "mqa", "mha-moe"} <= set(rows)
    assert rows["mha"]["family"] == "attention"
    assert rows["mha-moe"]["active"] < rows["mha-moe"]["params"]
    table = run_cli("list")
    assert "mha-moe" in table.stdout and "family" in table.stdout


def test_check_arch_gqa_passes_with_state_bytes() -> None:
    result = run_cli("check-arch", "gqa", "--json")
    assert result.code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert report["state_bytes"]["256"] == 4 * report["state_bytes"]["64"]
    assert report["max_step_error"] < 1e-4
    text = run_cli("check-arch", "gqa")
    assert "causality" in text.stdout and "decode state after 256 tokens" in text.stdout


def test_peeking_plugin_fails_naming_causality() -> None:
    result = run_cli("check-arch", "tests.bad_mixers:PeekingMixer")
    assert result.code == 1
    failed = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert any("causality" in line for line in failed), result.stdout
    report = json.loads(run_cli("check-arch", "tests.bad_mixers:PeekingMixer", "--json").stdout)
    assert not report["passed"]


def test_unknown_architecture_is_one_line_exit_2() -> None:
    assert_one_line_error(run_cli("check-arch", "gqaa"), "did you mean 'gqa'")
    assert_one_line_error(run_cli("check-arch", "nosuchpkg.mod:Thing"), "cannot import module")


def test_bad_flag_is_one_line_exit_2() -> None:
    assert_one_line_error(run_cli("check-arch", "mha", "--bogus"), "--bogus")
