"""Sweeps: resume, force, failures that never stop a sweep, crashed workers, the gate, locks."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from seqbench.errors import UserError
from seqbench.harness.launchers import LocalLauncher, SerialLauncher
from seqbench.harness.lock import folder_lock
from seqbench.harness.progress import Progress
from seqbench.harness.records import iter_records, runs_dir
from seqbench.harness.spec import RunSpec
from seqbench.harness.sweep import run_sweep
from tests.harness_support import CRASH, ECHO, tiny_spec


def tiny(**fields) -> RunSpec:
    return RunSpec.from_dict(tiny_spec(**fields))


def quiet(total: int = 0) -> Progress:
    return Progress(total, stream=io.StringIO())


def statuses(out: Path) -> dict[str, str]:
    return {r["run_id"]: r["status"] for r in iter_records(out)}


def test_rerun_skips_ok_records_and_force_reruns(tmp_path: Path) -> None:
    specs = [tiny(seed=s) for s in (0, 1)] + [tiny(seed=0)]  # a duplicate runs once
    first = run_sweep(specs, tmp_path, progress=None)
    assert first.ran == 2 and first.skipped == 0 and len(first.run_ids) == 2
    assert set(statuses(tmp_path).values()) == {"ok"}
    mtimes = {p: p.stat().st_mtime_ns for p in runs_dir(tmp_path).glob("*.json")}
    again = run_sweep(specs, tmp_path)
    assert again.ran == 0 and again.skipped == 2
    assert mtimes == {p: p.stat().st_mtime_ns for p in runs_dir(tmp_path).glob("*.json")}
    forced = run_sweep(specs, tmp_path, force=True)
    assert forced.ran == 2 and forced.skipped == 0


def test_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    specs = [tiny(task=CRASH, knobs={"crash": "raise"}), tiny(task=ECHO)]
    result = run_sweep(specs, tmp_path, launcher=SerialLauncher())
    assert result.statuses == {"failed": 1, "ok": 1}
    failed = [r for r in iter_records(tmp_path) if r["status"] == "failed"]
    assert failed[0]["reason"] == "RuntimeError: boom from the task"
    rerun = run_sweep(specs, tmp_path)  # failed runs are retried, ok ones skipped
    assert rerun.ran == 1 and rerun.skipped == 1


def test_local_launcher_survives_workers_that_die(tmp_path: Path) -> None:
    specs = [
        tiny(task=CRASH, knobs={"crash": "exit"}),
        tiny(seed=1),
        tiny(task=CRASH, knobs={"crash": "kill"}),
        tiny(seed=2),
        tiny(task=CRASH, knobs={"crash": "raise"}),
    ]
    stream = io.StringIO()
    result = run_sweep(
        specs, tmp_path, launcher=LocalLauncher(workers=2), progress=Progress(5, stream=stream)
    )
    # one rule for dead workers (seqbench.harness.common.outcome.exit_outcome), as for profiles
    assert result.ran == 5 and result.statuses == {"failed": 2, "oom": 1, "ok": 2}
    reasons = sorted(
        (r["status"], r["reason"]) for r in iter_records(tmp_path) if r["status"] != "ok"
    )
    assert reasons == [
        ("failed", "RuntimeError: boom from the task"),
        ("failed", "worker exited with code 3"),
        ("oom", "worker killed by SIGKILL (the out-of-memory killer?)"),
    ]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and all(line.startswith("[") for line in lines)
    assert "\r" not in stream.getvalue()  # not a terminal: plain lines only


def test_local_and_serial_launchers_record_the_same_metrics(tmp_path: Path) -> None:
    specs = [tiny(seed=3)]
    run_sweep(specs, tmp_path / "serial", launcher=SerialLauncher(), progress=quiet(1))
    run_sweep(specs, tmp_path / "local", launcher=LocalLauncher(workers=1), progress=quiet(1))
    (serial,) = iter_records(tmp_path / "serial")
    (local,) = iter_records(tmp_path / "local")
    assert serial["run_id"] == local["run_id"]
    assert serial["metrics"]["val"] == local["metrics"]["val"]
    assert serial["metrics"]["test"] == local["metrics"]["test"]


def test_conformance_gate_refuses_a_broken_plugin_before_training(tmp_path: Path) -> None:
    specs = [
        tiny(arch="tests.bad_mixers:PeekingMixer", overrides={}),
        tiny(arch="tests.bad_mixers:_LinearMixer", overrides={}),
    ]
    result = run_sweep(specs, tmp_path, progress=quiet(2))
    records = {r["spec"]["arch"]: r for r in iter_records(tmp_path)}
    peeking = records["tests.bad_mixers:PeekingMixer"]
    assert peeking["status"] == "failed" and "causality" in peeking["reason"]
    assert peeking["metrics"] == {}  # refused: nothing trained
    assert records["tests.bad_mixers:_LinearMixer"]["status"] == "ok"
    assert result.statuses == {"failed": 1, "ok": 1}


def test_bad_spec_fails_the_whole_sweep_before_any_run(tmp_path: Path) -> None:
    specs = [tiny(), tiny(d_model=15)]
    with pytest.raises(UserError, match="does not divide d_model=15"):
        run_sweep(specs, tmp_path)
    assert not list(iter_records(tmp_path))


def test_one_writer_per_folder(tmp_path: Path) -> None:
    with folder_lock(tmp_path), pytest.raises(UserError, match="another seqbench writer"):
        run_sweep([tiny()], tmp_path)
    assert not runs_dir(tmp_path).exists()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_a_live_line_only_on_a_terminal(tmp_path: Path) -> None:
    terminal = FakeTerminal()
    run_sweep([tiny(seed=s) for s in (0, 1)], tmp_path, progress=Progress(2, stream=terminal))
    text = terminal.getvalue()
    assert "\r\x1b[K[0/2] running mha FirstTokenTask" in text  # the run in flight
    assert "[1/2] ok" in text and "[2/2] ok" in text and "ETA" in text
    assert text.endswith("\r\x1b[K")  # the live line is cleared at the end


def test_records_are_plain_json(tmp_path: Path) -> None:
    run_sweep([tiny()], tmp_path, progress=quiet(1))
    (path,) = runs_dir(tmp_path).glob("*.json")
    data = json.loads(path.read_text())
    assert data["run_id"] == path.stem and data["kind"] == "run"


def test_the_longest_runs_start_first(tmp_path: Path) -> None:
    """Launch order is by training tokens (steps x batch x length), most first, ties as given,
    so a pool does not end on one long run alone."""

    order: list[tuple[int, int, int]] = []

    class Recording(SerialLauncher):
        def run(self, jobs, on_start):
            order.extend((j.spec["steps"], j.spec["seq_len"], j.spec["seed"]) for j in jobs)
            yield from super().run(jobs, on_start)

    specs = [tiny(steps=4), tiny(steps=7), tiny(steps=4, seq_len=12), tiny(steps=4, seed=1)]
    run_sweep(specs, tmp_path, launcher=Recording(), progress=quiet())
    assert order == [(7, 8, 0), (4, 12, 0), (4, 8, 0), (4, 8, 1)]
    assert len(list(iter_records(tmp_path))) == 4
