"""The default torch threads of a run: usable cores less busy ones, `--threads`, records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from seqbench.harness.common import threads
from seqbench.harness.common.threads import (
    ThreadChoice,
    cgroup_cpu_quota,
    choose_threads,
    cpu_times,
    default_threads,
)
from seqbench.harness.records import iter_records
from tests.cli_helpers import run_cli
from tests.harness_support import FIRST

STAT = """cpu  10 0 10 100 0 0 0 0 0 0
cpu0 5 0 5 50 0 0 0 0 0 0
cpu1 5 0 5 50 3 0 0 0 0 0
intr 1 2 3
"""


def test_cpu_times_are_read_per_cpu(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(STAT)
    times = cpu_times(tmp_path / "stat")
    assert times == {0: [5, 0, 5, 50, 0, 0, 0, 0], 1: [5, 0, 5, 50, 3, 0, 0, 0]}


@pytest.mark.parametrize(("text", "cores"), [("max 100000\n", None), ("150000 100000\n", 1.5)])
def test_a_cgroup_quota_is_cores_worth_of_time(tmp_path: Path, text: str, cores) -> None:
    (tmp_path / "cpu.max").write_text(text)
    assert cgroup_cpu_quota(tmp_path / "cpu.max") == cores
    assert cgroup_cpu_quota(tmp_path / "missing") is None


@pytest.mark.parametrize(
    ("usable", "busy", "workers", "expected"),
    [
        (2, 0.1, 1, 2),  # an idle machine: every core
        (2, 1.0, 1, 1),  # one busy process beside: the free core only
        (2, 2.0, 1, 1),  # all busy: still one
        (8, 2.4, 2, 3),  # 6 free cores shared by 2 workers
        (4, None, 1, 4),  # busy time unknown: the usable cores
    ],
)
def test_threads_are_the_free_cores_shared_by_the_workers(
    monkeypatch, usable, busy, workers, expected
) -> None:
    monkeypatch.setattr(threads, "usable_cores", lambda: usable)
    monkeypatch.setattr(threads, "busy_cores", lambda sample_s: busy)
    choice = choose_threads(workers)
    assert choice == ThreadChoice(expected, usable, busy, workers)
    assert f"{expected} per" in choice.describe() and "--threads N" in choice.describe()


def test_a_busy_process_is_seen() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        measured = threads.busy_cores(0.5)
    finally:
        busy.kill()
        busy.wait()
    assert measured is not None and measured >= 0.8


def test_an_explicit_count_or_omp_num_threads_wins(monkeypatch, capsys) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads(3, 1) == 3
    assert default_threads(0, 1) is None  # 0: torch's own default
    assert capsys.readouterr().err == ""  # nothing was chosen, nothing to announce
    monkeypatch.setattr(threads, "choose_threads", lambda workers: ThreadChoice(1, 2, 1.0))
    assert default_threads(None, 1) == 1
    assert "torch threads: 1 per run (2 usable cores, 1.0 busy" in capsys.readouterr().err
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert default_threads(None, 1) is None


GRID = ["run", "--arch", "mha", "--task", FIRST, "--seq-len", "8", "--d-model", "16",
        "--n-layers", "1", "--steps", "2", "--warmup", "1", "--batch-size", "4",
        "--seed", "0", "--seed", "1",
        "--set", "attention.n_heads=2", "--set", "attention.n_kv_heads=2"]  # fmt: skip


@pytest.mark.parametrize("launcher", [[], ["--launcher", "local", "--workers", "2"]])
def test_threads_flag_sets_and_records_the_threads_of_each_run(tmp_path: Path, launcher) -> None:
    result = run_cli(*GRID, *launcher, "--threads", "2", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    records = list(iter_records(tmp_path))
    assert len(records) == 2 and {r["environment"]["torch_threads"] for r in records} == {2}
