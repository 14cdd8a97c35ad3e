"""benchmarks/bench_suite_step.py: its batched-seeds variant trains the same models the harness
would (each stacked model's loss equals its own eager loss), so its timings compare like with
like."""

from __future__ import annotations

import argparse
import sys

import pytest

from tests.cli_helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench_suite_step


@pytest.mark.parametrize("variant", ["eager", "seeds-vmap"])
def test_a_variant_measures_a_step_of_the_suites_memorisation_model(variant: str) -> None:
    args = argparse.Namespace(steps=1, rounds=1, seeds=2)
    got = bench_suite_step.run_child("memo-d16", variant, args)  # its own process, as run
    assert "error" not in got, got
    assert got["ms"] > 0 and got["warmup_s"] >= 0
    if variant == "seeds-vmap":
        assert got["check"] < 1e-5  # the stacked models are the per-seed models
    else:
        assert got["check"] is None
