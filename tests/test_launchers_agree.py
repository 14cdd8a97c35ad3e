"""One result, whatever the launcher: the same grid through serial, local, slurm and ray.

With one thread in every process, and at each launcher's defaults, where the thread counts
differ (serial: the free cores; local: the free cores shared by its workers; ray: a task's
CPUs; slurm: a job's). The four-launcher tests need both real clusters (.ci/slurm.sh and
.ci/ray.sh, started by .ci/run); they are skipped where either is missing, and fail instead
under SEQBENCH_REQUIRE_SLURM / SEQBENCH_REQUIRE_RAY. Serial against local runs everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqbench.harness.records import iter_records
from tests.cli_helpers import run_cli
from tests.harness_support import FIRST
from tests.test_ray import cluster_address
from tests.test_slurm_cluster import slurm_env

GRID = ["run", "--arch", "mha", "--task", FIRST, "--seq-len", "8", "--d-model", "16",
        "--n-layers", "1", "--steps", "10", "--warmup", "2", "--batch-size", "8",
        "--seed", "0", "--seed", "1", "--set", "attention.n_heads=2",
        "--set", "attention.n_kv_heads=2", "--device", "cpu"]  # fmt: skip
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # equal arithmetic in every process
DEFAULTS = {"OMP_NUM_THREADS": ""}  # unset: each launcher chooses its threads
# 2048 tokens a step: weight gradients are products over 2048 numbers, which a BLAS splits
# between threads, and an expert of the MoE gets more rows than one thread's share of an op.
WIDE = ["run", "--arch", "mha", "--arch", "mha-moe", "--task", "mqar", "--seq-len", "64",
        "--batch-size", "32", "--d-model", "64", "--n-layers", "1", "--steps", "4",
        "--warmup", "1", "--seed", "0", "--device", "cpu"]  # fmt: skip
# Measured times and rates differ between runs by nature; everything else must not.
TIMING = ("tokens_per_s", "train_s", "eval_s", "wall_s")


def differing_metrics(folder_a: Path, folder_b: Path) -> tuple[list, dict]:
    """(every metric but times that differs, the torch threads of each side)."""
    result = run_cli("compare", str(folder_a), str(folder_b), "--all-metrics", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["matched"] >= 1 and not report["only_a"] and not report["only_b"]
    assert not report["status_changes"]
    differing = [
        (d["what"], d["metric"], d["delta"])
        for d in report["deltas"]
        if d["metric"] not in TIMING and d["delta"] != 0
    ]
    return differing, report["torch_threads"]


def test_results_do_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    for threads in ("1", "2"):
        result = run_cli(*WIDE, "--threads", threads, "--out", str(tmp_path / threads))
        assert result.code == 0, result.stderr
    differing, threads = differing_metrics(tmp_path / "1", tmp_path / "2")
    assert threads == {"a": [1], "b": [2]}
    assert not differing, differing
    text = run_cli("compare", str(tmp_path / "1"), str(tmp_path / "2")).stdout
    assert "A ran with 1 torch thread(s), B with 2" in text  # compare says what differs


def test_serial_and_local_agree_at_their_defaults(tmp_path: Path) -> None:
    for name, flags in (("serial", []), ("local", ["--launcher", "local"])):
        result = run_cli(*WIDE, *flags, "--out", str(tmp_path / name), env=DEFAULTS)
        assert result.code == 0, result.stderr
        assert "torch threads: " in result.stderr  # the choice is announced
    differing, _ = differing_metrics(tmp_path / "serial", tmp_path / "local")
    assert not differing, differing


@pytest.mark.slurm
@pytest.mark.ray
def test_four_launchers_record_the_same_metrics(tmp_path: Path) -> None:
    address = cluster_address()
    launchers = {
        "serial": ([], ONE_THREAD),
        "local": (["--launcher", "local", "--workers", "2"], ONE_THREAD),
        "slurm": (["--launcher", "slurm"], ONE_THREAD | slurm_env(tmp_path / "submitit")),
        "ray": (["--launcher", "ray", "--address", address], ONE_THREAD),
    }
    for name, (flags, env) in launchers.items():
        result = run_cli(*GRID, *flags, "--out", str(tmp_path / name), env=env, timeout=600)
        assert result.code == 0, f"{name}: {result.stderr}"
        records = list(iter_records(tmp_path / name))
        assert len(records) == 2 and {r["status"] for r in records} == {"ok"}, name
        assert {r["environment"]["launcher"] for r in records} == {name}
    for name in ("local", "slurm", "ray"):
        result = run_cli("compare", str(tmp_path / "serial"), str(tmp_path / name),
                         "--all-metrics", "--json")  # fmt: skip
        assert result.code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["matched"] == 1 and not report["only_a"] and not report["only_b"]
        assert not report["status_changes"]
        differing = [
            (d["metric"], d["delta"])
            for d in report["deltas"]
            if d["metric"] not in TIMING and d["delta"] != 0
        ]
        assert not differing, f"{name} differs from serial: {differing}"


@pytest.mark.slurm
@pytest.mark.ray
def test_four_launchers_agree_at_their_defaults(tmp_path: Path) -> None:
    address = cluster_address()
    launchers = {
        "serial": ([], DEFAULTS),
        "local": (["--launcher", "local"], DEFAULTS),
        "slurm": (["--launcher", "slurm"], DEFAULTS | slurm_env(tmp_path / "submitit")),
        "ray": (["--launcher", "ray", "--address", address], DEFAULTS),
    }
    for name, (flags, env) in launchers.items():
        result = run_cli(*WIDE, *flags, "--out", str(tmp_path / name), env=env, timeout=600)
        assert result.code == 0, f"{name}: {result.stderr}"
    for name in ("local", "slurm", "ray"):
        differing, threads = differing_metrics(tmp_path / "serial", tmp_path / name)
        assert not differing, f"{name} ({threads}) differs from serial: {differing}"
