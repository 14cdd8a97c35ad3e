"""The slurm launcher without a Slurm cluster: submitit's local executor (one subprocess per
job), its in-process debug executor, and fake sbatch/srun/sacct/scancel commands on PATH (for
what a one-node cluster cannot show: the sbatch script's GPU, memory and partition lines).
`seqbench run --launcher slurm` end to end runs on a real cluster in test_slurm_cluster.py."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from seqbench.errors import UserError
from seqbench.harness.cli import main
from seqbench.harness.launchers import Job, SerialLauncher, get_launcher
from seqbench.harness.launchers.slurm import settings
from seqbench.harness.progress import Progress
from seqbench.harness.records import iter_records
from seqbench.harness.spec import RunSpec
from seqbench.harness.sweep import plan, run_sweep
from tests.cli_helpers import REPO, assert_one_line_error, run_cli
from tests.harness_support import CRASH, ECHO, SLOW, tiny_spec

try:
    import submitit  # noqa: F401

    HAVE_SUBMITIT = True
except ImportError:
    HAVE_SUBMITIT = False
needs_submitit = pytest.mark.skipif(not HAVE_SUBMITIT, reason="submitit is not installed")


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point the launcher at one of submitit's executors, logs under tmp_path."""

    def use(name: str) -> Path:
        monkeypatch.setenv("SEQBENCH_SLURM_CLUSTER", name)
        monkeypatch.setenv("SEQBENCH_SLURM_FOLDER", str(tmp_path / "submitit"))
        monkeypatch.setenv("PYTHONPATH", str(REPO))  # job subprocesses import this checkout
        return tmp_path / "submitit"

    return use


def jobs_for(*specs: dict, launcher=None) -> list[Job]:
    prepared = plan([RunSpec.from_dict(s) for s in specs], launcher and launcher.device)
    return [Job(p.run_id, p.spec.to_dict(), p.spec.label()) for p in prepared]


def quiet(total: int) -> Progress:
    return Progress(total, stream=io.StringIO())


# -- without submitit ------------------------------------------------------------------------------
def test_importing_harness_never_imports_submitit() -> None:
    code = (
        "import sys, seqbench.harness.cli, seqbench.harness.launchers, seqbench.harness.sweep;"
        "from seqbench.harness.launchers import LAUNCHERS; assert 'slurm' in LAUNCHERS;"
        "assert 'submitit' not in sys.modules;"
        "assert 'seqbench.harness.launchers.slurm' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_missing_submitit_is_one_line_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # makes `import submitit` fail
    with pytest.raises(UserError) as info:
        get_launcher("slurm")
    assert str(info.value) == "the slurm launcher needs submitit: pip install 'seqbench[slurm]'"
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--arch", "mha", "--task", ECHO, "--launcher", "slurm", "--out", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {info.value}"]
    assert not out.exists()  # nothing was prepared, locked or written


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TIME", "1h", "SEQBENCH_SLURM_TIME must be a whole number >= 1, got '1h'"),
        ("TIME", "0", "SEQBENCH_SLURM_TIME must be a whole number >= 1, got '0'"),
        ("CPUS", "2.5", "SEQBENCH_SLURM_CPUS must be a whole number >= 1, got '2.5'"),
        ("GPUS", "-1", "SEQBENCH_SLURM_GPUS must be a whole number >= 0, got '-1'"),
        ("MEM_GB", "0", "SEQBENCH_SLURM_MEM_GB must be a number > 0, got '0'"),
        ("MEM_GB", "nan", "SEQBENCH_SLURM_MEM_GB must be a number > 0, got 'nan'"),
        ("CLUSTER", "ray", "SEQBENCH_SLURM_CLUSTER must be one of slurm, local, debug, got 'ray'"),
    ],
)
def test_bad_settings_are_one_line_errors(name: str, value: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        settings({f"SEQBENCH_SLURM_{name}": value})
    assert str(info.value) == message


def test_settings_defaults_and_values(tmp_path: Path) -> None:
    default = settings({})
    assert (default.cluster, default.partition, default.time_min, default.gpus) == (
        None, None, 60, 0,
    )  # fmt: skip
    assert default.folder == Path.cwd() / ".submitit"
    given = settings({
        "SEQBENCH_SLURM_PARTITION": "gpu", "SEQBENCH_SLURM_TIME": "30",
        "SEQBENCH_SLURM_CPUS": "8", "SEQBENCH_SLURM_GPUS": "1", "SEQBENCH_SLURM_MEM_GB": "12.5",
        "SEQBENCH_SLURM_FOLDER": str(tmp_path), "SEQBENCH_SLURM_CLUSTER": "local",
    })  # fmt: skip
    assert (given.partition, given.time_min, given.cpus, given.gpus, given.mem_gb) == (
        "gpu", 30, 8, 1, 12.5,
    )  # fmt: skip
    assert (given.folder, given.cluster) == (tmp_path, "local")


# -- submitit's local and debug executors ----------------------------------------------------------
@needs_submitit
def test_bad_env_value_through_the_cli_is_one_line(tmp_path: Path) -> None:
    env = {"SEQBENCH_SLURM_GPUS": "two", "SEQBENCH_SLURM_FOLDER": str(tmp_path / "s")}
    result = run_cli("run", "--arch", "mha", "--task", ECHO, "--launcher", "slurm", env=env)
    assert_one_line_error(result, "SEQBENCH_SLURM_GPUS must be a whole number >= 0, got 'two'")


@needs_submitit
def test_local_cluster_matches_serial_and_records_failures(
    tmp_path: Path, cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster("local")
    # every job with this process's torch threads, as the serial launcher has (equal floats)
    monkeypatch.setenv("SEQBENCH_SLURM_CPUS", str(torch.get_num_threads()))
    launcher = get_launcher("slurm", workers=3)
    assert launcher.device == "cpu"  # no GPUs asked for: the jobs see none
    spec = RunSpec.from_dict(tiny_spec(seed=3))
    run_sweep([spec], tmp_path / "serial", launcher=SerialLauncher(), progress=quiet(1))
    (serial,) = iter_records(tmp_path / "serial")
    good, died = jobs_for(tiny_spec(seed=3), tiny_spec(task=CRASH, knobs={"crash": "exit"}))
    raised = Job("raises", {"no_such_field": 1}, "raises")  # execute raises before running
    started: list[str] = []
    records = {
        job.run_id: record
        for job, record in launcher.run([raised, died, good], lambda j: started.append(j.run_id))
    }
    assert sorted(started) == sorted(records) == sorted([good.run_id, died.run_id, "raises"])
    ok = records[good.run_id]
    assert ok["status"] == "ok" and ok["run_id"] == serial["run_id"]
    for key in ("val", "test", "steps_run", "val_curve"):
        assert ok["metrics"].get(key) == serial["metrics"].get(key), key
    assert json.loads(json.dumps(ok)) == ok  # plain JSON, as every record
    assert records["raises"]["status"] == "failed"
    assert records["raises"]["reason"].startswith("UserError: spec: unknown field 'no_such_field'")
    # each job runs in a worker process of its own: its death reads as on the local launcher
    assert records[died.run_id]["status"] == "failed"
    assert records[died.run_id]["reason"] == "worker exited with code 3"
    assert all("\n" not in r["reason"] for r in records.values() if r["reason"])


@needs_submitit
def test_ctrl_c_cancels_the_running_jobs(cluster, request: pytest.FixtureRequest) -> None:
    folder = cluster("local")
    launcher = get_launcher("slurm")
    # early_stop off: the task is learnt within seconds, and a solved run would end before
    # Ctrl-C comes (the launcher would then return instead of raising)
    (slow,) = jobs_for(
        tiny_spec(task=SLOW, knobs={"sleep_s": 0.05}, steps=5000, warmup=0, early_stop=False)
    )

    def press_ctrl_c() -> None:  # once the job's own process runs, SIGINT to this one only
        deadline = time.monotonic() + 60
        while not _processes_mentioning("submitit.core._submit " + str(folder)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    # SIGINT raises KeyboardInterrupt here even when the tests run with it ignored (started
    # with `&` by a shell without job control), as a user's terminal would have it
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        records = list(launcher.run([slow], lambda job: None))
        pytest.fail(f"the run ended before Ctrl-C: {[r['status'] for _, r in records]}")
    deadline = time.monotonic() + 20
    while _processes_mentioning(str(folder)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_mentioning(str(folder)), "the job still runs after Ctrl-C"


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains `text` (the local executor's controller and task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                status = (entry / "stat").read_text().split()[2]
            except OSError:
                continue
            if text in cmdline and status != "Z":  # a zombie has stopped running
                pids.append(int(entry.name))
    return pids


@needs_submitit
def test_debug_cluster_runs_jobs_in_this_process(cluster) -> None:
    cluster("debug")
    launcher = get_launcher("slurm")
    assert launcher.device is None  # jobs run here: "auto" is this machine's device
    jobs = jobs_for(tiny_spec(seed=0), tiny_spec(task=CRASH, knobs={"crash": "raise"}))
    jobs.append(Job("raises", {"no_such_field": 1}, "raises"))
    events: list[str] = []
    for job, record in launcher.run(jobs, lambda j: events.append(f"start {j.run_id}")):
        events.append(f"{record['status']} {job.run_id} {record['reason']}")
    a, b = jobs[0].run_id, jobs[1].run_id
    assert events[:4] == [
        f"start {a}", f"ok {a} None", f"start {b}", f"failed {b} RuntimeError: boom from the task",
    ]  # fmt: skip
    assert events[5].startswith("failed raises UserError: spec: unknown field 'no_such_field'")


# -- a fake Slurm: the sbatch script submitit writes, a refused submission, cancellation ---------
FAKE_SLURM = {
    "srun": "exit 0",
    "sbatch": 'cp "$1" "$LOG/sbatch.sh"; echo "Submitted batch job 4242"',
    "sacct": 'printf "JobID|State|NodeList\\n4242_0|RUNNING|n1\\n4242_1|PENDING|\\n"',
    "scancel": 'echo "$@" >> "$LOG/scancel.log"',
}
SETTINGS = {"PARTITION": "gpu", "TIME": "30", "CPUS": "4", "GPUS": "1", "MEM_GB": "16"}


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Slurm's commands as shell scripts on PATH (they log to tmp_path); returns a function
    that replaces one of them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def command(name: str, body: str) -> None:
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    for name, body in FAKE_SLURM.items():
        command(name, body)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LOG", str(tmp_path))
    monkeypatch.setenv("SEQBENCH_SLURM_CLUSTER", "slurm")
    monkeypatch.setenv("SEQBENCH_SLURM_FOLDER", str(tmp_path / "submitit"))
    for name, value in SETTINGS.items():
        monkeypatch.setenv(f"SEQBENCH_SLURM_{name}", value)
    return command


@needs_submitit
def test_one_array_with_the_settings_and_ctrl_c_cancels_it(tmp_path: Path, fake_slurm) -> None:
    launcher = get_launcher("slurm", workers=1)
    assert launcher.device == "cuda"  # the jobs get a GPU, whatever this machine has
    launcher.poll_s = 0.05
    jobs = jobs_for(tiny_spec(seed=0, device="auto"), tiny_spec(seed=1), launcher=launcher)
    assert jobs[0].spec["device"] == "cuda" and jobs[1].spec["device"] == "cpu"

    def interrupt(job: Job) -> None:  # called for the job sacct reports RUNNING, not the other
        assert job == jobs[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(launcher.run(jobs, interrupt))
    script = (tmp_path / "sbatch.sh").read_text()
    for line in ["--array=0-1%1", "--partition=gpu", "--time=30", "--cpus-per-task=4",
                 "--gpus-per-node=1", "--mem=16GB", "--job-name=seqbench"]:  # fmt: skip
        assert f"#SBATCH {line}\n" in script
    assert (tmp_path / "scancel.log").read_text() == "4242\n"  # one call for the whole array


@needs_submitit
def test_a_refused_submission_fails_every_job_with_sbatch_s_reason(fake_slurm) -> None:
    fake_slurm("sbatch", 'echo "sbatch: error: invalid partition specified: gpu" >&2; exit 1')
    launcher = get_launcher("slurm")
    jobs = jobs_for(tiny_spec(seed=0), tiny_spec(seed=1), launcher=launcher)
    records = [record for _, record in launcher.run(jobs, lambda job: None)]
    assert [(r["status"], r["reason"]) for r in records] == [
        ("failed", "submission failed: sbatch: error: invalid partition specified: gpu")
    ] * 2


@needs_submitit
def test_cuda_without_gpus_for_the_jobs_is_one_line(cluster) -> None:
    cluster("local")
    launcher = get_launcher("slurm")
    with pytest.raises(UserError, match="device 'cuda' requested but the launcher's jobs get no"):
        jobs_for(tiny_spec(device="cuda"), launcher=launcher)


def test_reason_of_a_failed_job_is_its_exception_line() -> None:
    from seqbench.harness.launchers.slurm import _trace_line

    message = (
        "Job (task=0) failed during processing with trace:\n----------------------\n"
        'Traceback (most recent call last):\n  File "job.py", line 4, in f\n    g()\n'
        "RuntimeError: boom\nsecond line of the message\n\n----------------------\n"
        "You can check full logs with 'job.stderr(0)' and 'job.stdout(0)'or at paths:\n"
        "  - /logs/1_0_log.err\n  - /logs/1_0_log.out"
    )
    assert _trace_line(message) == "RuntimeError: boom"
