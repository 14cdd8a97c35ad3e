"""One result, whatever the launcher: the same grid through serial, local, slurm and ray.

Needs both real clusters (.ci/slurm.sh and .ci/ray.sh, started by .ci/run); skipped where
either is missing, and a failure instead under SEQBENCH_REQUIRE_SLURM / SEQBENCH_REQUIRE_RAY.
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
# Measured times and rates differ between runs by nature; everything else must not.
TIMING = ("tokens_per_s", "train_s", "eval_s", "wall_s")


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
