"""`seqbench run` and `seqbench list suites` from the shell: errors, output, resume, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqbench.errors import UserError
from seqbench.harness.cli import main
from seqbench.harness.records import iter_records, runs_dir
from tests.cli_helpers import REPO, Result, assert_one_line_error, run_cli
from tests.harness_support import ECHO, SLOW

TINY = [
    "--seq-len", "8", "--d-model", "16", "--n-layers", "1", "--steps", "10",
    "--batch-size", "8", "--set", "attention.n_heads=2", "--set", "attention.n_kv_heads=2",
    "--device", "cpu",
]  # fmt: skip


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """`seqbench ARGS` in this process (fast; the subprocess tests cover the real thing)."""

    def invoke(*args: str) -> Result:
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def suite_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return path


def test_bad_flag_from_the_shell_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("run", "--arch", "mha", "--task", ECHO, "--sed", "3", "--out", str(tmp_path))
    assert_one_line_error(result, "no such option --sed (neither a run option nor a knob of")
    assert "did you mean '--seed'" in result.stderr


def test_bad_flags_are_one_line_exit_2(tmp_path: Path, cli) -> None:
    run_cli = cli
    out = ["--out", str(tmp_path)]
    assert_one_line_error(run_cli("run", *out), "give --suite NAME, --config FILE.toml")
    assert_one_line_error(run_cli("run", "--suite", "quik"), "did you mean 'quick'")
    assert_one_line_error(
        run_cli("run", "--arch", "mha", "--task", ECHO, "--steps", "x"), "--steps"
    )
    assert_one_line_error(
        run_cli("run", "--arch", "mha", "--task", ECHO, "--evry", "3", *out),
        "did you mean '--every'",
    )
    assert_one_line_error(run_cli("run", "--arch", "mha", "--task", ECHO, "x", *out), "'x'")
    assert_one_line_error(
        run_cli("run", "--suite", "smoke", "--seq-len", "8"), "not --suite and --seq-len"
    )
    assert_one_line_error(
        run_cli("run", "--arch", "mha", "--task", ECHO, "--workers", "2", *out),
        "--workers applies to --launcher local",
    )
    assert_one_line_error(
        run_cli("run", "--arch", "mha", "--task", ECHO, "--set", "d_model", *out),
        "--set expects KEY=VALUE",
    )
    assert_one_line_error(
        run_cli("run", "--arch", "mha", "--task", ECHO, "--launcher", "slurmm", *out),
        "unknown launcher 'slurmm'",
    )
    if not torch.cuda.is_available():
        assert_one_line_error(
            run_cli("run", "--arch", "mha", "--task", ECHO, "--device", "cuda", *out),
            "device 'cuda' requested but torch sees no CUDA device",
        )
    assert not runs_dir(tmp_path).exists() or not list(runs_dir(tmp_path).iterdir())


def test_bad_spec_file_is_one_line_exit_2(tmp_path: Path, cli) -> None:
    run_cli = cli
    bad = suite_file(tmp_path, f"[[grid]]\narch = 'mha'\ntask = '{ECHO}'\nlearning_rate = 1\n")
    assert_one_line_error(run_cli("run", "--config", str(bad)), "mine.toml: grid 1: unknown field")
    heads = suite_file(tmp_path, f"[[grid]]\narch = 'mha'\ntask = '{ECHO}'\nd_model = 20\n")
    assert_one_line_error(run_cli("run", "--config", str(heads)), "does not divide d_model=20")
    assert_one_line_error(run_cli("run", "--config", str(tmp_path / "no.toml")), "cannot read")


def test_adhoc_run_then_rerun_trains_nothing(tmp_path: Path) -> None:
    args = ["run", "--arch", "mha", "--arch", "gqa", "--task", ECHO, *TINY]
    args += ["--every", "2", "--knob", "vocab_size=6", "--out", str(tmp_path)]
    first = run_cli(*args)
    assert first.code == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("[1/2] ok") and lines[1].startswith("[2/2] ok")
    assert "ETA" in lines[0] and "\r" not in first.stdout and "\x1b" not in first.stdout
    assert "val_acc" in first.stdout and "test_acc" in first.stdout  # the summary table
    records = list(iter_records(tmp_path))
    assert {r["spec"]["knobs"]["every"] for r in records} == {2}
    assert {r["spec"]["knobs"]["vocab_size"] for r in records} == {6}
    written = {p: p.stat().st_mtime_ns for p in runs_dir(tmp_path).iterdir()}
    again = run_cli(*args)
    assert again.code == 0, again.stderr
    assert "2 run(s) already recorded ok were skipped" in again.stdout
    assert "[1/" not in again.stdout  # nothing trained
    assert written == {p: p.stat().st_mtime_ns for p in runs_dir(tmp_path).iterdir()}


def test_list_suites_and_dry_run(cli) -> None:
    run_cli = cli
    listing = run_cli("list", "suites", "--json")
    assert listing.code == 0, listing.stderr
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert {"smoke", "quick", "standard"} <= set(rows)
    assert rows["quick"]["runs"] >= 24
    dry = run_cli("run", "--suite", "quick", "--dry-run")
    assert dry.code == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert len(lines) == rows["quick"]["runs"] + 2  # the runs, a blank line, the projection
    assert lines[-1].startswith(f"quick: {rows['quick']['runs']} runs (")
    assert "projected at most" in lines[-1] and "min with 1 worker(s)" in lines[-1]


def test_sigkill_mid_sweep_then_restart_records_every_run_once(tmp_path: Path) -> None:
    config = suite_file(
        tmp_path,
        f"""
[defaults]
task = "{SLOW}"
seq_len = 8
d_model = 16
n_layers = 1
steps = 15
batch_size = 8
eval_every = 15
val_examples = 16
test_examples = 16
device = "cpu"
overrides = {{ "attention.n_heads" = 2, "attention.n_kv_heads" = 2 }}
[[grid]]
arch = "mha"
seed = [0, 1, 2, 3, 4, 5]
""",
    )
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from seqbench.harness.cli import main; main()"]
    cmd += ["run", "--config", str(config), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(runs_dir(out).glob("*.json"))) < 2 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.stem for p in runs_dir(out).glob("*.json")}
    assert 2 <= len(done_before) < 6, "the kill must land mid-sweep"

    result = run_cli("run", "--config", str(config), "--out", str(out))
    assert result.code == 0, result.stderr
    assert f"{len(done_before)} run(s) already recorded ok were skipped" in result.stdout
    files = sorted(p.name for p in runs_dir(out).iterdir())
    assert all(name.endswith(".json") and not name.startswith(".") for name in files), files
    records = list(iter_records(out))
    assert len(files) == len(records) == 6
    assert len({r["run_id"] for r in records}) == 6
    assert sorted(r["spec"]["seed"] for r in records) == [0, 1, 2, 3, 4, 5]
    assert all(r["status"] == "ok" for r in records)


def test_set_given_twice_with_different_values_is_one_line_error() -> None:
    from seqbench.harness.cli.options import parse_pairs, parse_sweeps

    assert parse_pairs(("d_model=64", "attention.impl=reference"), "--set") == {
        "d_model": 64,
        "attention.impl": "reference",
    }
    assert parse_sweeps(("ffn.n_experts=4", "ffn.n_experts=8"), "--set") == {
        "ffn.n_experts": [4, 8]
    }
    with pytest.raises(UserError, match="given twice"):
        parse_pairs(("d_model=64", "d_model=32"), "--set")
    with pytest.raises(UserError, match="expects KEY=VALUE"):
        parse_pairs(("d_model",), "--set")


def test_a_suite_with_lr_search_says_what_it_left_out(tmp_path: Path, cli) -> None:
    text = (
        "lr_search = 'first-solved'\n[defaults]\nsteps = 60\neval_every = 5\nseq_len = 8\n"
        "d_model = 16\nn_layers = 1\nbatch_size = 8\ndevice = 'cpu'\n"
        "overrides = { 'attention.n_heads' = 2, 'attention.n_kv_heads' = 2 }\n"
        f"[[grid]]\narch = 'mha'\ntask = '{ECHO}'\nlr = [3e-3, 1e-7]\n"
    )
    path = suite_file(tmp_path, text)
    dry = cli("run", "--config", str(path), "--dry-run")
    assert dry.code == 0, dry.stderr
    assert "mine: 2 runs (" in dry.stdout and "lr_search = 'first-solved'" in dry.stdout
    done = cli("run", "--config", str(path), "--out", str(tmp_path / "out"))
    assert done.code == 0, done.stderr
    assert "[1/2] ok" in done.stdout  # the total counts every lr until the search drops some
    assert "1 run(s) at later learning rates were not needed" in done.stdout
    assert [r["spec"]["lr"] for r in iter_records(tmp_path / "out")] == [3e-3]


def test_lr_search_flag_overrides_the_suite(tmp_path: Path, cli) -> None:
    args = ["run", "--arch", "mha", "--task", ECHO, *TINY, "--lr", "3e-3", "--lr", "1e-7"]
    done = cli(*args, "--steps", "60", "--lr-search", "first-solved", "--out", str(tmp_path))
    assert done.code == 0, done.stderr
    assert [r["spec"]["lr"] for r in iter_records(tmp_path)] == [3e-3]
    assert_one_line_error(cli(*args, "--lr-search", "best"), "Invalid value for '--lr-search'")
