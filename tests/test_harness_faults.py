"""Filesystem faults (read-only, disk full, permission denied), the writers' lock and the
temporary-file policy, for `seqbench run`, `profile` and `report`.

Faults are simulated at the OS boundary (tests/fs_faults.py). Each ends in one line naming the
path and the cause, exit code 3; a rerun with nothing to do needs no write access; a report
that fails half-way leaves the old report whole."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.harness.cli import main
from seqbench.harness.cli.profile_cmd import exit_code
from seqbench.harness.lock import clear_abandoned, folder_lock, host, temp_owner, temp_prefix
from seqbench.harness.records import iter_records
from tests.cli_helpers import Result
from tests.fs_faults import failing_writes
from tests.harness_support import ECHO
from tests.report_fixtures import run_record, write_runs

TINY = [
    "--arch", "mha", "--task", ECHO, "--seq-len", "8", "--d-model", "16", "--n-layers", "1",
    "--steps", "4", "--batch-size", "4", "--set", "attention.n_heads=2",
    "--set", "attention.n_kv_heads=2", "--device", "cpu",
]  # fmt: skip
PROFILE = [
    "profile", "--arch", "mha", "--set", "d_model=32", "--set", "n_layers=1",
    "--mode", "counted", "--counted-len", "64", "--counted-len", "128",
]  # fmt: skip
CAUSES = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EACCES: "permission denied",
}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    def invoke(*args: str) -> Result:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def assert_fault(result: Result, path: Path, err: int) -> None:
    """Exit 3 and a last stderr line naming the path and the cause; no traceback."""
    assert result.code == 3, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path}") and last.endswith(CAUSES[err]), last


# -- run ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("err", sorted(CAUSES))
def test_run_into_an_unwritable_folder_is_one_line_exit_3(tmp_path: Path, cli, err: int) -> None:
    out = tmp_path / "res"
    out.mkdir()
    with failing_writes(out, err):
        result = cli("run", *TINY, "--out", str(out))
    assert_fault(result, out / "runs", err)
    assert result.stderr.count("\n") == 1  # refused before anything trained
    assert list(out.iterdir()) == []


def test_a_rerun_with_nothing_to_do_needs_no_write_access(tmp_path: Path, cli) -> None:
    out = tmp_path / "res"
    assert cli("run", *TINY, "--out", str(out)).code == 0
    with failing_writes(out, errno.EROFS) as refused:
        result = cli("run", *TINY, "--out", str(out))
    assert result.code == 0, result.stderr
    assert "already recorded ok were skipped" in result.stdout
    assert refused == []


# -- profile -----------------------------------------------------------------------------------
def test_profile_faults_and_a_read_only_rerun(tmp_path: Path, cli) -> None:
    out = tmp_path / "prof"
    out.mkdir()
    with failing_writes(out, errno.ENOSPC):
        result = cli(*PROFILE, "--out", str(out))
    assert_fault(result, out / "runs", errno.ENOSPC)
    assert not list(iter_records(out))

    assert cli(*PROFILE, "--out", str(out)).code == 0
    records = list(iter_records(out))
    with failing_writes(out, errno.EROFS) as refused:
        result = cli(*PROFILE, "--out", str(out))
    assert result.code == 0, result.stderr
    assert refused == [] and list(iter_records(out)) == records


def test_profile_exits_1_when_a_point_failed() -> None:
    ok, failed, oom = ({"status": s, "spec": {"mode": "train"}} for s in ("ok", "failed", "oom"))
    assert exit_code([ok, oom], {"train"}) == 0
    assert exit_code([ok, failed], {"train"}) == 1


# -- report ------------------------------------------------------------------------------------
def report_files(folder: Path) -> dict[str, bytes]:
    names = ("report.md", "report.html", "runs.csv", "profile.csv")
    files = {n: (folder / n).read_bytes() for n in names if (folder / n).exists()}
    files |= {f"figures/{p.name}": p.read_bytes() for p in (folder / "figures").glob("*")}
    return files


def records(*accuracies: float) -> list[dict]:
    return [run_record("mha", "mqar", seed=i, accuracy=a) for i, a in enumerate(accuracies)]


def test_a_report_that_fails_half_way_leaves_the_old_one_whole(tmp_path: Path, cli) -> None:
    folder = write_runs(tmp_path / "res", records(0.9, 0.91))
    assert cli("report", str(folder)).code == 0
    old = report_files(folder)
    write_runs(folder, [run_record("lru", "mqar", accuracy=0.3)])  # the next report differs
    # the disk fills up after report.md and the figures are written, at report.html
    with failing_writes(folder, errno.ENOSPC, when=lambda p: "report.html" in p):
        result = cli("report", str(folder))
    assert_fault(result, folder / "report.html", errno.ENOSPC)
    assert report_files(folder) == old
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging left

    assert cli("report", str(folder)).code == 0
    assert report_files(folder)["report.md"] != old["report.md"]


@pytest.mark.parametrize("err", [errno.EROFS, errno.EACCES])
def test_report_out_reports_an_unwritable_folder(tmp_path: Path, cli, err: int) -> None:
    folder = write_runs(tmp_path / "res", records(0.9))
    before = sorted(p.name for p in folder.rglob("*"))
    with failing_writes(folder, err):
        refused = cli("report", str(folder))
        result = cli("report", str(folder), "--out", str(tmp_path / "rep"))
    assert_fault(refused, folder, err)
    assert result.code == 0, result.stderr
    assert f"report:  {tmp_path / 'rep' / 'report.md'}" in result.stdout
    assert (tmp_path / "rep" / "report.html").is_file()
    assert sorted(p.name for p in folder.rglob("*")) == before


# -- the lock and the temporary-file policy ----------------------------------------------------
def test_run_profile_and_report_share_one_lock(tmp_path: Path, cli) -> None:
    folder = write_runs(tmp_path / "res", records(0.9))
    with folder_lock(folder):
        for args in (["report", str(folder)], [*PROFILE, "--out", str(folder)],
                     ["run", *TINY, "--out", str(folder)]):  # fmt: skip
            result = cli(*args)
            assert result.code == 2 and result.stderr.count("\n") == 1, result.stderr
            assert "another seqbench writer (run, profile or report) is writing to" in result.stderr
    assert cli("report", str(folder)).code == 0  # released


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_provably_abandoned_temporary_files_are_removed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    me, gone = host(), dead_pid()
    abandoned = runs / f".a.json~{me}~{gone}~x1.tmp"
    live = runs / f"{temp_prefix('b.json')}x2.tmp"  # this process: alive
    elsewhere = runs / f".c.json~{me}x-other-host~{gone}~x3.tmp"
    untagged = runs / ".d.json.123.tmp"  # an older writer's name: cannot be proven abandoned
    stage = tmp_path / f".report~{me}~{gone}~x4.tmp"
    for path in (abandoned, live, elsewhere, untagged):
        path.write_text("{")
    stage.mkdir()
    (stage / "report.md").write_text("half")
    assert temp_owner(abandoned) == (me, gone) and temp_owner(untagged) is None
    with folder_lock(tmp_path):
        pass
    assert not abandoned.exists() and not stage.exists()
    assert live.exists() and elsewhere.exists() and untagged.exists()
    assert clear_abandoned(tmp_path / "missing") == []


def test_temporary_names_carry_host_and_pid(tmp_path: Path) -> None:
    assert temp_prefix("r.json") == f".r.json~{host()}~{os.getpid()}~"
    assert socket.gethostname()  # the host part comes from it (sanitised)
