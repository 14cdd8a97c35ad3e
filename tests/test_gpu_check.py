"""benchmarks/gpu_check.py, the script for the GPU machine, tested by its CPU dry run: every
step runs at tiny sizes, records land where `seqbench report` reads them, and a step that
fails or hangs is recorded while the others go on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_helpers import REPO, cli_env

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def dry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("gpu-dry")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=cli_env(),
    )  # fmt: skip
    return out, proc


@pytest.mark.slow
def test_the_dry_run_runs_every_step(dry) -> None:
    out, proc = dry
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "gpu_check" / "summary.json").read_text())
    assert set(summary["steps"]) == set(gpu_check.STEPS)
    assert {s["status"] for s in summary["steps"].values()} == {"ok"}, summary["steps"]
    steps = {name: s["result"] for name, s in summary["steps"].items()}

    conformance = steps["conformance"]
    assert conformance["device"] == "cpu" and conformance["passed"] == conformance["total"] >= 4

    # On CPU the "kernel" is our C scan where a compiler exists (else the torch scan itself):
    # it must agree with the torch scan within the stated tolerances.
    cpu_paths = {"torch-scan", "c-native"}
    for name in ("mamba", "mamba2"):
        agreement = steps["agreement"][name]
        assert agreement["kernel_path"] in cpu_paths and agreement["within_tolerance"], agreement
        assert set(agreement["relative_error"]) == {"output", "state", "grad"}
    assert steps["agreement"]["pytest"]["exit_code"] == 0  # ran, and skipped without CUDA

    presets = steps["bf16"]["presets"]
    assert {"mha", "mamba", "mamba2", "lru"} <= set(presets)
    assert all(p["status"] == "ok" for p in presets.values()), presets
    assert {p["dtype"] for p in presets.values()} == {"bfloat16"}  # CPU autocast here
    assert set(presets["mamba"]["kernel_paths"].values()) <= cpu_paths
    assert steps["bf16"]["mamba_ssm"]["selective_scan_cuda"] is False

    mfu = steps["mfu"]["archs"]
    assert set(mfu) == {"mha", "mamba2"}
    assert all(a["mfu_measured_peak"] > 0 for a in mfu.values()), mfu

    profile = steps["profile"]
    assert {p["arch"] for p in profile["points"]} >= set(gpu_check.BASE_PROFILE)
    assert {p["mode"] for p in profile["points"]} == {"train", "decode"}
    fitted = {(f["arch"], f["of_mode"]) for f in profile["fits"]}
    assert ("mha", "train") in fitted and ("mamba", "decode") in fitted

    quick = steps["quick"]
    assert quick["suite"] == "smoke" and quick["statuses"] == {"ok": quick["runs"]}

    markdown = (out / "gpu_check" / "summary.md").read_text()
    for heading in ("## Conformance", "## Kernel agreement", "## Training per preset",
                    "## MFU", "## Profile", "## The smoke suite"):  # fmt: skip
        assert heading in markdown
    assert (out / "report.md").is_file() and (out / "profile.csv").is_file()


def test_a_step_that_raises_is_recorded(tmp_path: Path, monkeypatch) -> None:
    def broken(out: Path, sizes: gpu_check.Sizes) -> dict:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setitem(gpu_check.STEPS, "conformance", broken)
    gpu_check.run_step("conformance", tmp_path, gpu_check.DRY, None)
    result = json.loads(gpu_check.step_path(tmp_path, "conformance").read_text())
    assert result["status"] == "failed" and result["result"] is None
    assert result["reason"] == "RuntimeError: CUDA error: an illegal memory access was encountered"


def test_a_step_over_its_limit_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time; child = subprocess.Popen(['sleep', '60']);"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)"
    )
    started = time.perf_counter()
    ended, _ = gpu_check.run_limited([sys.executable, "-c", code], limit=3)
    assert ended == "over its 3 s limit" and time.perf_counter() - started < 30
    child = Path("/proc") / pid_file.read_text()
    deadline = time.monotonic() + 10
    while child.exists() and "Z" not in (child / "stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the step's child outlived the step"
        time.sleep(0.1)


def test_a_stopped_step_keeps_what_it_finished(tmp_path: Path) -> None:
    """A step killed at its limit is recorded failed with its last checkpoint, marked partial."""
    (tmp_path / "gpu_check").mkdir()
    finished = {"presets": {"mha": {"status": "ok"}}, "of": 18}
    gpu_check.checkpoint(tmp_path, "bf16", finished)
    gpu_check.record_stopped(tmp_path, "bf16", "over its 150 s limit", "[1/18] ok mha", 150.2)
    result = json.loads(gpu_check.step_path(tmp_path, "bf16").read_text())
    assert result["status"] == "failed" and result["partial"] is True
    assert result["result"] == finished and result["log_tail"] == "[1/18] ok mha"
    assert "over its 150 s limit" in result["reason"]
    finished = {"presets": {"mha": {"status": "ok", "reason": None, "dtype": "bfloat16",
                "kernel_paths": {}, "tokens_per_s": 1.0}}, "of": 18, "mamba_ssm": {}}  # fmt: skip
    gpu_check.checkpoint(tmp_path, "bf16", finished)
    gpu_check.record_stopped(tmp_path, "bf16", "over its 150 s limit", "", 150.2)
    summary = gpu_check.write_summary(tmp_path, ["bf16"], 151.0)
    markdown = (tmp_path / "gpu_check" / "summary.md").read_text()
    assert summary["steps"]["bf16"]["partial"] and "1 of 18 presets" in markdown
    assert "Partial: `bf16` was stopped" in markdown
    gpu_check.record_stopped(tmp_path, "quick", "exit code -9", "", 3.0)  # no checkpoint
    quick = json.loads(gpu_check.step_path(tmp_path, "quick").read_text())
    assert quick["result"] is None and quick["partial"] is False
