"""The ray launcher, against a real two-node Ray cluster (`.ci/ray.sh start`).

Tests marked `ray` need the cluster at RAY_ADDRESS (default: the address `.ci/ray.sh` uses).
Where none is reachable they are skipped, saying so; with SEQBENCH_REQUIRE_RAY=1 (CI) that
skip is a failure instead. The other tests here need neither ray nor a cluster.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seqbench.errors import UserError
from seqbench.harness.cli import main
from seqbench.harness.launchers import LocalLauncher, SerialLauncher, get_launcher
from seqbench.harness.progress import Progress
from seqbench.harness.records import iter_records
from seqbench.harness.spec import RunSpec
from seqbench.harness.sweep import run_sweep
from tests.harness_support import CRASH, SLOW, tiny_spec

DEFAULT_ADDRESS = "127.0.0.2:6388"  # .ci/ray.sh
COMPARED = ("val", "test", "steps_run", "val_curve", "train_loss", "params_total")


def cluster_address() -> str:
    """RAY_ADDRESS when its head answers; else skip (fail where SEQBENCH_REQUIRE_RAY=1)."""
    address = os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS
    problem = None
    try:
        import ray  # noqa: F401
    except ImportError:
        problem = "ray is not installed (pip install 'seqbench[ray]')"
    else:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
        except (OSError, ValueError):
            problem = f"no Ray cluster answers at {address} (start one: .ci/ray.sh start)"
    if problem is None:
        return address
    if os.environ.get("SEQBENCH_REQUIRE_RAY") == "1":
        pytest.fail(f"a Ray cluster is required here (SEQBENCH_REQUIRE_RAY=1): {problem}")
    pytest.skip(problem)


@pytest.fixture
def address(monkeypatch: pytest.MonkeyPatch) -> str:
    found = cluster_address()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # tests pass it with --address
    return found


def quiet() -> Progress:
    return Progress(0, stream=io.StringIO())


def specs(*seeds: int, **fields) -> list[RunSpec]:
    return [RunSpec.from_dict(tiny_spec(seed=seed, **fields)) for seed in seeds]


def serial_records(out: Path, grid: list[RunSpec]) -> dict[str, dict]:
    """The serial launcher's records with one torch thread, as each Ray task has."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_sweep(grid, out, launcher=SerialLauncher(), progress=quiet())
    finally:
        torch.set_num_threads(threads)
    return {r["run_id"]: r for r in iter_records(out)}


@pytest.mark.ray
def test_a_grid_on_two_nodes_records_what_a_serial_run_does(tmp_path: Path, address) -> None:
    grid = specs(0, 1, 2, 3)
    args = ["run", "--arch", "mha", "--task", grid[0].task, "--seq-len", "8", "--d-model", "16",
            "--n-layers", "1", "--steps", "10", "--warmup", "2", "--batch-size", "8",
            "--seed", "0", "--seed", "1", "--seed", "2", "--seed", "3",
            "--set", "attention.n_heads=2", "--set", "attention.n_kv_heads=2",
            "--knob", "vocab_size=16", "--device", "cpu",
            "--launcher", "ray", "--address", address, "--out", str(tmp_path / "ray")]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    on_ray = {r["run_id"]: r for r in iter_records(tmp_path / "ray")}
    assert len(on_ray) == 4 and {r["status"] for r in on_ray.values()} == {"ok"}
    assert {r["environment"]["launcher"] for r in on_ray.values()} == {"ray"}
    assert len({r["environment"]["ray_node"] for r in on_ray.values()}) == 2  # both nodes ran
    serial = serial_records(tmp_path / "serial", [RunSpec.from_dict(r["spec"]) for r in
                                                   on_ray.values()])  # fmt: skip
    assert sorted(serial) == sorted(on_ray)  # same run ids: same specs, same identity
    for run_id, record in on_ray.items():
        for key in COMPARED:
            assert record["metrics"][key] == serial[run_id]["metrics"][key], key


@pytest.mark.ray
def test_failures_read_as_on_the_local_launcher(tmp_path: Path, address) -> None:
    grid = [RunSpec.from_dict(tiny_spec(task=CRASH, knobs={"crash": c})) for c in ("raise", "kill")]
    run_sweep(grid, tmp_path / "ray", launcher=get_launcher("ray", address=address),
              progress=quiet())  # fmt: skip
    run_sweep(grid, tmp_path / "local", launcher=LocalLauncher(workers=2), progress=quiet())
    outcomes = {
        where: sorted((r["status"], r["reason"]) for r in iter_records(tmp_path / where))
        for where in ("ray", "local")
    }
    assert (
        outcomes["ray"]
        == outcomes["local"]
        == [
            ("failed", "RuntimeError: boom from the task"),
            ("oom", "worker killed by SIGKILL (the out-of-memory killer?)"),
        ]
    )


class StopAfter(Progress):
    """Progress that presses Ctrl-C once `n` jobs have finished."""

    def __init__(self, n: int) -> None:
        super().__init__(0, stream=io.StringIO())
        self.n = n

    def finished(self, job, record) -> None:
        super().finished(job, record)
        if self.done >= self.n:
            raise KeyboardInterrupt


@pytest.mark.ray
def test_ctrl_c_cancels_the_tasks_and_another_launcher_resumes(tmp_path: Path, address) -> None:
    slow = {"task": SLOW, "knobs": {"sleep_s": 0.2}, "steps": 20}
    # the fast run ends first, the slow ones are out; equal steps keep it first in launch order
    grid = specs(10, steps=20) + specs(11, 12, **slow)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(grid, tmp_path, launcher=get_launcher("ray", address=address),
                  progress=StopAfter(1))  # fmt: skip
    deadline = time.monotonic() + 30  # a cancelled task's worker is killed (force=True)
    while running_tasks() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not running_tasks(), "a Ray task still runs after Ctrl-C"
    done = list(iter_records(tmp_path))
    assert [r["spec"]["seed"] for r in done] == [10] and done[0]["status"] == "ok"
    resumed = run_sweep(grid, tmp_path, launcher=SerialLauncher(), progress=quiet())
    assert resumed.skipped == 1 and resumed.ran == 2 and resumed.statuses == {"ok": 2}
    launchers = sorted(r["environment"]["launcher"] for r in iter_records(tmp_path))
    assert launchers == ["ray", "serial", "serial"]


def running_tasks() -> list[int]:
    """PIDs of Ray workers running a task of this launcher (Ray titles them ray::_run_task)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::_run_task"):
                pids.append(int(entry.name))
    return pids


@pytest.mark.ray
def test_profile_points_run_on_the_cluster(tmp_path: Path, address, capsys) -> None:
    args = ["profile", "--arch", "mha", "--set", "d_model=32",
            "--set", "n_layers=1", "--mode", "counted", "--counted-len", "64",
            "--counted-len", "256", "--launcher", "ray", "--address", address,
            "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    points = [r for r in iter_records(tmp_path, kind="profile") if r["spec"]["mode"] != "fit"]
    assert len(points) == 2 and {r["status"] for r in points} == {"ok"}
    assert {r["environment"]["launcher"] for r in points} == {"ray"}


# -- without a cluster ---------------------------------------------------------------------------
def test_importing_harness_never_imports_ray() -> None:
    code = (
        "import sys, seqbench.harness.cli, seqbench.harness.launchers, seqbench.harness.sweep;"
        "from seqbench.harness.launchers import LAUNCHERS; assert 'ray' in LAUNCHERS;"
        "assert 'ray' not in sys.modules, 'ray imported';"
        "assert 'seqbench.harness.launchers.ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_ray_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(UserError) as info:
        get_launcher("ray")
    assert str(info.value) == "the ray launcher needs ray: pip install 'seqbench[ray]'"


def test_address_and_settings_are_checked_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="--address applies to --launcher ray"):
        from seqbench.harness.cli.options import make_launcher

        make_launcher("local", None, "127.0.0.2:6388")
    pytest.importorskip("ray")
    monkeypatch.setenv("SEQBENCH_RAY_CPUS", "0")
    with pytest.raises(UserError, match="SEQBENCH_RAY_CPUS must be a whole number >= 1"):
        get_launcher("ray")
    monkeypatch.setenv("SEQBENCH_RAY_CPUS", "2")
    monkeypatch.setenv("SEQBENCH_RAY_GPUS", "1")
    launcher = get_launcher("ray", address="10.0.0.1:6379")
    assert (launcher.cpus, launcher.gpus, launcher.device) == (2, 1, "cuda")
    assert launcher.address == "10.0.0.1:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    assert get_launcher("ray").address == "10.0.0.2:6379"


def test_an_address_where_nothing_listens_is_one_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    args = ["run", "--arch", "mha", "--task", CRASH, "--launcher", "ray",
            "--address", f"127.0.0.1:{port}", "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no Ray cluster answers at 127.0.0.1:{port}")
    assert err.count("\n") == 1
