"""Test-suite hooks: tests marked `slurm` need a real Slurm cluster (tests/slurm_cluster.py)."""

from __future__ import annotations

import pytest

from tests import slurm_cluster


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm") is None:
        return
    reason = slurm_cluster.unreachable()
    if reason is None:
        return
    if slurm_cluster.required():
        pytest.fail(f"a Slurm cluster is required here (SEQBENCH_REQUIRE_SLURM) but {reason}")
    pytest.skip(reason)
