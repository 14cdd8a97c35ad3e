"""`seqbench profile` end to end on a tiny model, resume, and one-line errors."""

from __future__ import annotations

import pytest

from seqbench.harness.cli import main
from seqbench.harness.records import iter_records

TINY_ARGS = ["--set", "d_model=32", "--set", "n_layers=1", "--repeats", "1"]


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


def test_profile_writes_point_and_fit_records_then_resumes(tmp_path, capsys) -> None:
    args = [
        "profile", "--arch", "mha", *TINY_ARGS,
        "--seq-len", "32", "--seq-len", "64",
        "--context", "16", "--context", "32", "--decode-steps", "2",
        "--counted-len", "64", "--counted-len", "1024",
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert run_cli(args) == 0
    out = capsys.readouterr()
    records = list(iter_records(tmp_path, kind="profile"))
    points = [r for r in records if r["spec"]["mode"] != "fit"]
    fits = [r for r in records if r["spec"]["mode"] == "fit"]
    assert (
        sorted(r["spec"]["mode"] for r in points)
        == ["counted"] * 2 + ["decode"] * 2 + ["train"] * 2
    )
    assert all(r["status"] == "ok" for r in records)
    assert {f["spec"]["of_mode"] for f in fits} == {"train", "decode", "counted"}
    decode_fit = next(f for f in fits if f["spec"]["of_mode"] == "decode")
    assert decode_fit["metrics"]["fits"]["state_bytes"]["all"]["slope"] == pytest.approx(1.0)
    assert "Log-log scaling exponents" in out.out
    assert "counted on the meta device" in out.out
    assert "\r" not in out.out + out.err  # not a terminal: plain lines only
    assert all(r["environment"]["launcher"] == "local" for r in points)  # the default

    assert run_cli(args) == 0  # everything is recorded: nothing runs again
    assert "6 point(s) already recorded ok were skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "mhaa"], "did you mean"),
        (["--arch", "mha", "--set", "nonsense"], "KEY=VALUE"),
        (["--arch", "mha", "--set", "d_model=64", "--d-model", "32"], "not both"),
        (["--arch", "mha", "--set", "attention.n_hedas=2"], "n_heads"),
        (["--arch", "mha", "--seq-len", "0"], "seq-len"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, message) -> None:
    assert run_cli(["profile", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not list(iter_records(tmp_path))
