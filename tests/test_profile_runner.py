"""Profile points through the launchers: out-of-memory, over-budget and predicted points are
recorded, longer points of a failed series are skipped, and the sweep goes on; the exit code
counts only failures the user asked for."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from seqbench.harness.cli import main
from seqbench.harness.cli.profile_cmd import asked_modes, exit_code
from seqbench.harness.common.outcome import exit_outcome
from seqbench.harness.launchers import LocalLauncher, SerialLauncher
from seqbench.harness.profile.points import PointOptions, make_spec, point_label
from seqbench.harness.profile.sweep import (
    SweepPlan,
    point_job,
    predicted_over_budget,
    run_sweep,
)
from seqbench.harness.progress import Progress
from seqbench.harness.records import iter_records

TINY = {"d_model": 32, "n_layers": 1}
OPTS = PointOptions(repeats=1)


def quiet() -> Progress:
    return Progress(0, stream=io.StringIO())


def plan(**fields) -> SweepPlan:
    return SweepPlan(options=OPTS, sets={k: [v] for k, v in TINY.items()}, **fields)


def test_oom_point_is_recorded_and_longer_ones_skipped(tmp_path: Path) -> None:
    sweep = plan(archs=["mha"], modes=["train"], seq_lens=[1024, 2048], max_memory_bytes=2**20)
    records, result = run_sweep(sweep, tmp_path, progress=quiet())
    assert [r["spec"]["seq_len"] for r in records] == [1024, 2048]
    assert [r["status"] for r in records] == ["oom", "skipped"]
    assert "memory cap" in records[0]["reason"]
    assert records[1]["reason"] == "a shorter point of this series ended oom; not run"
    assert result.statuses == {"oom": 1, "skipped": 1}
    assert records[0]["environment"]["launcher"] == "local"


def test_over_budget_point_is_killed_and_a_new_worker_takes_the_rest() -> None:
    sweep = plan(archs=["mha", "gqa"], modes=["train", "counted"], budget_s=60)
    # a training step at 16k tokens: seconds of attention products on this CPU
    slow = point_job(make_spec("train", "mha", TINY, 16384, OPTS), sweep)
    slow = dataclasses.replace(slow, budget_s=0.5)
    fast = point_job(make_spec("counted", "gqa", TINY, 64, OPTS), sweep)
    results = {
        job.run_id: record
        for job, record in LocalLauncher(workers=1).run([slow, fast], lambda job: None)
    }
    first, second = results[slow.run_id], results[fast.run_id]
    assert first["status"] == "failed"
    assert first["reason"] == "over its time budget of 0.5 s; killed"
    assert second["status"] == "ok" and second["metrics"]["method"] == "counted-meta"
    assert second["kind"] == "profile"


def test_a_point_predicted_over_budget_is_recorded_without_running(tmp_path: Path) -> None:
    sweep = plan(archs=["mha"], modes=["counted"], counted_lens=[64, 64 * 10**8], budget_s=5.0)
    records, _ = run_sweep(sweep, tmp_path, launcher=SerialLauncher(), progress=quiet())
    assert [r["status"] for r in records] == ["ok", "skipped"]  # the budget said no: no failure
    assert records[1]["reason"].startswith("predicted over the per-point time budget")
    short, huge = (point_job(r["spec"], sweep) for r in records)
    assert predicted_over_budget((64, 0.5), huge) is not None
    assert predicted_over_budget((64, 0.5), short) is None
    assert predicted_over_budget(None, huge) is None


def test_a_dead_worker_means_one_status_whatever_ran_in_it() -> None:
    assert exit_outcome(-9) == ("oom", "worker killed by SIGKILL (the out-of-memory killer?)")
    assert exit_outcome(-15, "last words") == ("failed", "worker killed by SIGTERM: last words")
    assert exit_outcome(3) == ("failed", "worker exited with code 3")
    status, reason = exit_outcome(134, "terminate called: std::bad_alloc")
    assert status == "oom" and reason.endswith("std::bad_alloc")


def test_profile_with_two_local_workers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = [
        "profile", "--arch", "mha", "--arch", "lru", "--set", "d_model=32", "--set", "n_layers=1",
        "--mode", "counted", "--counted-len", "64", "--counted-len", "256",
        "--launcher", "local", "--workers", "2", "--out", str(tmp_path),
    ]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    points = [r for r in iter_records(tmp_path, kind="profile") if r["spec"]["mode"] != "fit"]
    assert len(points) == 4 and {r["status"] for r in points} == {"ok"}
    assert {r["environment"]["launcher"] for r in points} == {"local"}
    out = capsys.readouterr().out
    assert all(point_label(r["spec"]) in out for r in points)  # one progress line per point


def point_record(mode: str, status: str) -> dict:
    return {"spec": {"mode": mode}, "status": status}


@pytest.mark.parametrize(
    ("flags", "asked"),
    [
        ({}, {"train", "decode", "counted"}),  # the default profile is what was asked for
        ({"seq_lens": (256, 1024)}, {"train"}),
        ({"modes": ("counted",)}, {"counted"}),
        ({"contexts": (64,), "modes": ("train",)}, {"train", "decode"}),
    ],
)
def test_the_modes_asked_for_are_those_named_or_given_lengths(flags, asked) -> None:
    opts = {"modes": (), "seq_lens": (), "contexts": (), "counted_lens": ()} | flags
    assert asked_modes(opts) == asked


def test_only_a_failure_the_user_asked_for_fails_the_command() -> None:
    asked = {"train"}
    assert exit_code([point_record("train", "ok"), point_record("counted", "failed")], asked) == 0
    assert exit_code([point_record("train", "skipped"), point_record("train", "oom")], asked) == 0
    assert exit_code([point_record("train", "failed")], asked) == 1


def test_the_issues_plain_profile_command_exits_0(tmp_path: Path, capsys) -> None:
    """Two training lengths asked for; decode and the counted points to 1M tokens come from
    defaults, and every point of them ends ok (counting costs the same at every length)."""
    args = [
        "profile", "--arch", "mha", "--arch", "mamba", "--arch", "lru", "--seq-len", "64",
        "--seq-len", "128", "--set", "d_model=32", "--set", "n_layers=1", "--repeats", "1",
        "--decode-steps", "2", "--launcher", "serial", "--out", str(tmp_path),
    ]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0, capsys.readouterr().out
    points = [r for r in iter_records(tmp_path, kind="profile") if r["spec"]["mode"] != "fit"]
    counted = [r for r in points if r["spec"]["mode"] == "counted"]
    assert {r["status"] for r in points} == {"ok"}
    assert max(r["spec"]["seq_len"] for r in counted) == 2**20 and len(counted) == 3 * 6
