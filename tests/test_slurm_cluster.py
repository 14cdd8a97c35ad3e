"""The slurm launcher against a real Slurm cluster (slurmctld, slurmd, slurmdbd, munge).

CI starts a one-node cluster with .ci/slurm.sh before the tests; elsewhere these tests skip
unless `sinfo` answers (tests/conftest.py). They run `seqbench` as a user does, through the
CLI, with jobs of one CPU each (the node advertises more CPUs than the machine has, so that
several run at once).

Two sweeps run in the background from the first test on, because they mostly wait: the smoke
suite in this process's way (serial launcher), the reference the cluster's records must equal,
and a run longer than its one-minute time limit, which Slurm can only stop after tens of
seconds (the shortest limit is a minute, checked every 30 s).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seqbench.harness.launchers import Job, get_launcher
from seqbench.harness.records import iter_records
from seqbench.harness.suites import load_builtin
from tests.cli_helpers import REPO, run_cli, spawn_cli
from tests.harness_support import CRASH, SLOW, tiny_spec
from tests.slurm_cluster import unreachable
from tests.test_harness_slurm import jobs_for

pytestmark = pytest.mark.slurm

SMOKE = ("run", "--suite", "smoke")
SMOKE_RUNS = len(load_builtin("smoke").specs)  # every preset on two tasks
TIMEOUT_SUITE = f"""
[[grid]]
arch = "mha"
task = "{SLOW}"
seq_len = 8
d_model = 16
n_layers = 1
steps = 5000
warmup = 0
early_stop = false
batch_size = 8
knobs = {{ sleep_s = 0.05 }}
overrides = {{ "attention.n_heads" = 2, "attention.n_kv_heads" = 2 }}
"""


def slurm_env(folder: Path, **more: str) -> dict[str, str]:
    """The launcher on the real cluster, one CPU per job, submitit's files under `folder`."""
    env = {
        "SEQBENCH_SLURM_CLUSTER": "slurm",
        "SEQBENCH_SLURM_FOLDER": str(folder),
        "SEQBENCH_SLURM_CPUS": "1",
    }
    return env | {f"SEQBENCH_SLURM_{k}": v for k, v in more.items()}


@dataclass
class Background:
    serial: Path  # the smoke suite, serial launcher, one thread
    serial_proc: subprocess.Popen[str]
    timeout: Path  # one run over its time limit, on the cluster
    timeout_logs: Path
    timeout_proc: subprocess.Popen[str]


@pytest.fixture(scope="module", autouse=True)
def background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    if unreachable():  # the tests skip (or fail under SEQBENCH_REQUIRE_SLURM); start nothing
        yield None  # type: ignore[misc]
        return
    root = tmp_path_factory.mktemp("slurm-background")
    suite = root / "timeout.toml"
    suite.write_text(TIMEOUT_SUITE)
    work = Background(
        serial=root / "serial",
        serial_proc=spawn_cli(*SMOKE, "--out", str(root / "serial"), env={"OMP_NUM_THREADS": "1"}),
        timeout=root / "timeout",
        timeout_logs=root / "timeout-logs",
        timeout_proc=spawn_cli(
            "run", "--config", str(suite), "--launcher", "slurm", "--out", str(root / "timeout"),
            env=slurm_env(root / "timeout-logs", TIME="1"),
        ),
    )  # fmt: skip
    yield work
    for proc in (work.serial_proc, work.timeout_proc):  # a failed test may leave them running
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The folder the cluster's smoke sweep writes to, and its submitit folder."""
    root = tmp_path_factory.mktemp("slurm-smoke")
    return root / "out", root / "logs"


def test_ctrl_c_cancels_the_array_and_leaves_nothing_queued(smoke) -> None:
    out, logs = smoke
    proc = spawn_cli(*SMOKE, "--launcher", "slurm", "--workers", "2", "--out", str(out),
                     env=slurm_env(logs))  # fmt: skip
    deadline = time.monotonic() + 180
    while len(list(iter_records(out))) < 2:  # two runs done, two more in flight
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no two smoke runs recorded within 3 minutes"
        time.sleep(0.5)
    arrays = array_ids(logs)
    try:
        assert len(arrays) == 1  # the whole sweep is one array
        # Slurm starts the next tasks of the throttled array at its next scheduling pass
        deadline = time.monotonic() + 60
        while not running_tasks(arrays) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert running_tasks(arrays), "no job of the array is running when Ctrl-C comes"
    finally:  # a failed check must not leave the sweep running (it holds the folder's lock)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    # Cancelled jobs pass through COMPLETING (their processes being killed) and leave squeue.
    deadline = time.monotonic() + 30
    while slurm("squeue", "-h", "-j", ",".join(arrays)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert slurm("squeue", "-h", "-j", ",".join(arrays)) == ""  # nothing queued or running
    lines = slurm("sacct", "-n", "-X", "-P", "-o", "State", "-j", arrays[0]).splitlines()
    assert "CANCELLED" in {line.split()[0] for line in lines}, lines  # "CANCELLED by 0"
    recorded = len(list(iter_records(out)))
    assert 2 <= recorded < SMOKE_RUNS


def test_a_rerun_resumes_and_equals_a_serial_run(smoke, background) -> None:
    out, logs = smoke
    before = {r["run_id"] for r in iter_records(out)}
    result = run_cli(*SMOKE, "--launcher", "slurm", "--workers", "2", "--out", str(out),
                     env=slurm_env(logs), timeout=600)  # fmt: skip
    assert result.code == 0, result.stderr
    assert f"{len(before)} run(s) already recorded ok were skipped" in result.stdout
    assert len(array_ids(logs)) == 2  # the interrupted array and this one
    records = {r["run_id"]: r for r in iter_records(out)}
    assert len(records) == SMOKE_RUNS and {r["status"] for r in records.values()} == {"ok"}
    assert all(r["environment"]["torch_threads"] == 1 for r in records.values())

    _, stderr = background.serial_proc.communicate(timeout=600)
    assert background.serial_proc.returncode == 0, stderr
    serial = {r["run_id"]: r for r in iter_records(background.serial)}
    assert serial.keys() == records.keys()  # same specs, same run_ids
    for run_id, record in records.items():
        assert record["metrics"] == serial[run_id]["metrics"], record["spec"]["arch"]


def test_a_second_rerun_trains_nothing(smoke) -> None:
    out, logs = smoke
    arrays = array_ids(logs)
    result = run_cli(*SMOKE, "--launcher", "slurm", "--out", str(out), env=slurm_env(logs))
    assert result.code == 0, result.stderr
    assert f"{SMOKE_RUNS} run(s) already recorded ok were skipped" in result.stdout
    assert array_ids(logs) == arrays  # nothing submitted


def test_a_job_that_raises_or_dies_is_recorded_failed_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in slurm_env(tmp_path / "logs").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the jobs import this checkout
    launcher = get_launcher("slurm")
    assert launcher.cluster == "slurm" and launcher.device == "cpu"
    jobs = jobs_for(
        tiny_spec(task=CRASH, knobs={"crash": "raise"}),  # the run raises: execute records it
        tiny_spec(task=CRASH, knobs={"crash": "exit"}),  # the run's worker process exits
        launcher=launcher,
    )
    jobs.append(Job("raises", {"no_such_field": 1}, "raises"))  # execute raises at once
    started: list[str] = []
    records = {job.run_id: r for job, r in launcher.run(jobs, lambda j: started.append(j.run_id))}
    assert sorted(started) == sorted(records) == sorted(job.run_id for job in jobs)
    raised, died = (records[job.run_id] for job in jobs[:2])
    assert (raised["status"], raised["reason"]) == ("failed", "RuntimeError: boom from the task")
    assert records["raises"]["status"] == "failed"
    assert records["raises"]["reason"].startswith("UserError: spec: unknown field 'no_such_field'")
    # each job runs its run in a worker process of its own: a death reads as on `local`
    assert (died["status"], died["reason"]) == ("failed", "worker exited with code 3")


def test_a_job_over_its_time_limit_is_recorded_failed_with_timeout(background) -> None:
    stdout, stderr = background.timeout_proc.communicate(timeout=300)
    assert background.timeout_proc.returncode == 1, stderr  # a failed run: exit code 1
    (record,) = iter_records(background.timeout)
    assert record["status"] == "failed"
    (array,) = array_ids(background.timeout_logs)
    assert record["reason"].startswith(f"job {array}")  # an array of one: `41`, not `41_0`
    assert (
        " reached its time limit of 1 min (TIMEOUT; SEQBENCH_SLURM_TIME); log: " in record["reason"]
    )
    assert "\n" not in record["reason"]
    assert record["reason"] in stdout  # the progress line and the summary name it too
    assert json.loads(json.dumps(record)) == record


# -- helpers ------------------------------------------------------------------------------------
def slurm(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60).stdout


def array_ids(logs: Path) -> list[str]:
    """The job arrays submitted with this submitit folder (sub-folders `<array>_<i>`, or
    `<array>` for an array of one job)."""
    if not logs.is_dir():
        return []
    return sorted({p.name.split("_")[0] for p in logs.iterdir() if p.name[:1].isdigit()})


def running_tasks(arrays: list[str]) -> list[str]:
    listed = slurm("squeue", "-h", "-t", "RUNNING", "-o", "%i", "-j", ",".join(arrays))
    return listed.split()
