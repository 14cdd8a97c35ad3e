"""The CUDA path, run for real: one script for a GPU machine (issue 15, docs/gpu.md).

    python benchmarks/gpu_check.py --out results/gpu            # on the GPU: a 10-minute call
    python benchmarks/gpu_check.py --out /tmp/g --dry-run       # every step on CPU, tiny, seconds

Steps, each in its own process with its own time limit, so that a failure (an exception, a
CUDA fault that poisons the process, a hang) is recorded and the other steps go on. In order
of value (what a short lease must not miss first; docs/gpu.md gives the measured times):

1. `bf16`: every preset trains briefly in bf16 autocast, the harness's default on CUDA; each
   layer's `kernel_path` recorded (mamba-ssm's CUDA/Triton kernels, or our PyTorch scans);
2. `quick`: the quick suite on the GPU (bf16), wall time and accuracies, beside a CPU folder's;
3. `conformance`: the conformance gate on every registered sequence mixer, float32, on CUDA;
4. `agreement`: mamba-ssm's selective scan (Mamba) and chunk scan (Mamba-2) against our
   PyTorch scans on the same inputs and weights: outputs, final states and gradients, then the
   kernel test of tests/test_recurrent_mixers.py run by pytest;
5. `mfu`: a d_model 1024, 12-layer attention model and Mamba-2 in bf16: tokens/s and model
   FLOPs utilisation against the bf16 peak (datasheet and a measured matmul);
6. `profile`: training step time and CUDA peak memory, 1k-64k tokens, decode latency and state
   bytes at 1k-128k context, fitted exponents, for mha, gqa, mamba, mamba2, lru first, then
   the newer presets registered.

`bf16`, `quick` and `conformance` spread their work over several processes sharing the GPU
(Triton compiles the Mamba-2/3 kernels at first use, tens of seconds on one CPU core each).
A step keeps OUT/gpu_check/STEP.partial.json up to date as it goes, so a step stopped at its
limit is still recorded with what it finished.

Records go where the harness writes them (OUT/runs/, so `seqbench report OUT` renders runs and
profile points); each step's result is OUT/gpu_check/STEP.json, and OUT/gpu_check/summary.md
and summary.json gather them. Steps reuse the harness: run specs and `run_sweep` for training,
`seqbench profile` for the profile and MFU points, the conformance gate as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO), str(REPO / "benchmarks")):  # a plain checkout, as on the GPU machine
    if _path not in sys.path:
        sys.path.insert(0, _path)

from seqbench.harness.atomic import atomic_write_text  # noqa: E402
from seqbench.harness.records import atomic_write_json  # noqa: E402

H200_BF16_PEAK = 989.4e12  # dense bf16 FLOP/s, NVIDIA's H200 SXM datasheet
BASE_PROFILE = ["mha", "gqa", "mamba", "mamba2", "lru"]
OLDER_PRESETS = {"mha", "gqa", "mqa", "mha-moe", "mamba", "mamba2", "lru", "hybrid"}


@dataclass(frozen=True)
class Sizes:
    """Everything a step sizes by; `dry` shrinks it to seconds on a CPU."""

    device: str
    dtype: str  # for profiles ("bfloat16" on CUDA)
    train_steps: int  # the bf16 step's brief training
    quick_suite: str
    quick_steps: int | None  # None: the suite's own budgets
    workers: int  # processes sharing the device in `bf16`, `quick` and `conformance`
    quick_limit: int | None  # the suite's first N runs only (None: all)
    seq_lens: tuple[int, ...]
    contexts: tuple[int, ...]
    repeats: int
    decode_steps: int
    agree_len: int
    mfu: dict[str, Any]
    point_budget_s: float
    threads: str  # torch threads of profile workers ("0": torch's default)
    budget_s: float | None  # default --budget-s


FULL = Sizes(
    device="cuda",
    dtype="bfloat16",
    train_steps=50,
    quick_suite="quick",
    quick_steps=None,
    workers=8,
    quick_limit=None,
    # x4 apart: four lengths give an exponent over all and over the longer half; every point is
    # a fresh process (CUDA start, model, warm-up), so points cost seconds even when short
    seq_lens=(1024, 4096, 16384, 65536),
    contexts=(1024, 16384, 131072),
    repeats=3,
    decode_steps=16,
    agree_len=512,
    mfu={"d_model": 1024, "n_layers": 12, "seq_len": 2048, "batch": 8, "repeats": 3},
    # a Mamba-2 point at 1024 tokens went over 60 s on the H200: Triton compiled and autotuned
    # mamba-ssm's chunk-scan kernels at first call in that process
    point_budget_s=150.0,
    threads="0",
    budget_s=540.0,  # a 10-minute call with a minute to spare
)
DRY = Sizes(
    device="cpu",
    dtype="float32",
    train_steps=2,
    quick_suite="smoke",
    quick_steps=2,
    workers=2,
    quick_limit=4,
    seq_lens=(32, 64),
    contexts=(32, 64),
    repeats=1,
    decode_steps=2,
    agree_len=16,
    mfu={"d_model": 64, "n_layers": 2, "seq_len": 32, "batch": 2, "repeats": 1},
    point_budget_s=60.0,
    threads="1",
    budget_s=None,
)
# Each step's limit in seconds on the GPU (the dry run gets 300 s for each); a step also gets
# no more than what is left of --budget-s. In order of value: the steps a short lease must not
# miss come first. The first H200 call (torch 2.11, --budget-s 530; wall time of each step's
# process): agreement 76.8 s, mfu 103.8 s, quick 49.1 s in a second call (8 processes);
# conformance (one process) was stopped at 90 s, bf16 (one process) at 120 s and the profile
# at the 138 s left. They now run in several processes, with these limits, the profile at
# fewer lengths and last. Expect a whole run to leave the profile only part of its 300 s:
# `--steps profile` in a call of its own measures all of it.
LIMITS = {
    "bf16": 150,
    "quick": 90,
    "conformance": 120,
    "agreement": 100,
    "mfu": 130,
    "profile": 300,
}


# -- steps (each runs in its own process: `--step NAME`) ----------------------------------------
def step_conformance(out: Path, sizes: Sizes) -> dict[str, Any]:
    """The gate on every registered mixer, `sizes.workers` mixers at a time (one per process)."""
    from seqbench.architectures import MIXERS

    MIXERS.load_plugins()
    names = MIXERS.names()
    results: dict[str, Any] = {}

    def result() -> dict[str, Any]:
        return {
            "device": sizes.device,
            "dtype": "float32",
            "mixers": dict(sorted(results.items())),
            "passed": sum(r["passed"] for r in results.values()),
            "total": len(results),
            "of": len(names),
        }

    for name, outcome in map_processes(conformance_of, names, sizes.workers, sizes.device):
        results[name] = outcome
        print(f"conformance {name}: {outcome['passed']} ({outcome['seconds']} s)", flush=True)
        checkpoint(out, "conformance", result())
    return result()


def conformance_of(name: str, device: str) -> dict[str, Any]:
    """One mixer through the gate (in a worker process: a CUDA fault stays there)."""
    from seqbench.architectures import MIXERS
    from seqbench.architectures.conformance import GateConfig, check_registered_mixer

    MIXERS.load_plugins()
    started = time.perf_counter()
    try:
        report = check_registered_mixer(name, GateConfig(device=device))
        outcome = {
            "passed": report.passed,
            "failures": [f"{c.name}: {c.detail}" for c in report.failures()],
            "max_step_error": report.max_step_error,
        }
    except Exception as exc:
        outcome = {"passed": False, "failures": [one_line(exc)]}
    return outcome | {"seconds": round(time.perf_counter() - started, 2)}


# Mixers whose mamba-ssm kernels are Triton, compiled at their first call in a process: the
# presets that use them start first, so their compilation overlaps the other presets' runs.
TRITON_MIXERS = {"mamba2", "mamba3"}


def step_bf16(out: Path, sizes: Sizes) -> dict[str, Any]:
    """Every preset, a short mqar run in bf16 autocast (on the dry run's CPU too)."""
    from seqbench.architectures import PRESETS
    from seqbench.harness.spec import RunSpec

    def triton_last(arch: str) -> bool:
        return not TRITON_MIXERS & set(PRESETS.get(arch).config.layer_pattern)

    def result(records: list[dict[str, Any]]) -> dict[str, Any]:
        presets = {
            r["spec"]["arch"]: {
                "status": r["status"],
                "reason": r["reason"],
                "dtype": r["spec"]["dtype"],
                "kernel_paths": (r.get("metrics") or {}).get("kernel_paths") or {},
                "tokens_per_s": (r.get("timings") or {}).get("tokens_per_s"),
            }
            for r in records
        }
        return {"presets": dict(sorted(presets.items())), "of": len(specs), **mamba_ssm_state()}

    specs = [
        RunSpec.from_dict(
            {
                "arch": arch,
                "task": "mqar",
                "seq_len": 64,
                "steps": sizes.train_steps,
                "warmup": 1,
                "batch_size": 16,
                "eval_every": sizes.train_steps,
                "val_examples": 32,
                "test_examples": 32,
                "device": sizes.device,
                "dtype": "bfloat16",  # autocast: CUDA's default, and on the dry run's CPU too
                "knobs": {"num_pairs": 4, "vocab_size": 64},
            }
        )
        for arch in sorted(PRESETS.names(), key=triton_last)
    ]
    done: list[dict[str, Any]] = []

    def on_record(record: dict[str, Any]) -> None:
        done.append(record)
        checkpoint(out, "bf16", result(done))

    return result(sweep(specs, out, workers=sizes.workers, on_record=on_record))


def step_agreement(out: Path, sizes: Sizes) -> dict[str, Any]:
    """Kernel path against our torch path: same weights and inputs, float32."""
    import torch

    from seqbench.architectures import MIXERS

    results: dict[str, Any] = {}
    for name in ("mamba", "mamba2"):
        try:
            results[name] = compare_paths(MIXERS.get(name), sizes, torch)
        except Exception as exc:
            results[name] = {"error": one_line(exc)}
    test = "tests/test_recurrent_mixers.py::test_mamba_ssm_kernels_agree_with_the_torch_path"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=child_env(),
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    results["pytest"] = {"exit_code": proc.returncode, "tail": lines[-6:]}
    return {"tolerance": TOLERANCE, **results, **mamba_ssm_state()}


# Relative to the largest magnitude of the torch path's tensor: float32 scans in another order.
TOLERANCE = {"output": 1e-3, "state": 1e-3, "grad": 5e-3}


def compare_paths(cls: Any, sizes: Sizes, torch: Any) -> dict[str, Any]:
    d_model, length = 64, sizes.agree_len
    modules = {}
    for impl in ("auto", "torch"):
        torch.manual_seed(0)
        modules[impl] = cls(d_model, layer_idx=0, impl=impl).to(sizes.device)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, length, d_model, generator=gen).to(sizes.device)  # (B, L, D)
    grads, outs = {}, {}
    for impl, module in modules.items():
        xi = x.clone().requires_grad_(True)
        y, state = module.prefill(xi)
        weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(5)).to(y.device)
        (y * weights).sum().backward()
        outs[impl] = (y.detach(), state["ssm"].detach())
        grads[impl] = [xi.grad] + [p.grad for p in module.parameters()]
    errors = {
        "output": rel_err(outs["auto"][0], outs["torch"][0]),
        "state": rel_err(outs["auto"][1], outs["torch"][1]),
        "grad": max(
            rel_err(a, b)
            for a, b in zip(grads["auto"], grads["torch"], strict=True)
            if a is not None and b is not None
        ),
    }
    from seqbench.architectures.scans import cuda

    return {
        "kernel_path": modules["auto"].kernel_path,
        "kernel_engaged": modules["auto"].kernel_path
        == cuda.PATH_MAMBA_SSM,  # else: torch vs torch
        "shape": [2, length, d_model],
        "relative_error": errors,
        "within_tolerance": all(errors[k] <= TOLERANCE[k] for k in errors),
    }


def rel_err(a: Any, b: Any) -> float:
    scale = float(b.abs().max()) or 1.0
    return float((a.float() - b.float()).abs().max()) / scale


def step_quick(out: Path, sizes: Sizes, cpu_dir: Path | None = None) -> dict[str, Any]:
    from seqbench.harness.spec import RunSpec
    from seqbench.harness.suites import load_builtin

    suite = load_builtin(sizes.quick_suite)
    specs = []
    for spec in suite.specs[: sizes.quick_limit]:
        data = spec.to_dict() | {"device": sizes.device}
        if sizes.quick_steps is not None:
            data |= {"steps": sizes.quick_steps, "warmup": 1, "eval_every": sizes.quick_steps}
        specs.append(RunSpec.from_dict(data))
    cpu = accuracy_table(list(iter_cpu_records(cpu_dir))) if cpu_dir else {}
    started = time.perf_counter()

    def result(records: list[dict[str, Any]]) -> dict[str, Any]:
        here = accuracy_table(records)
        return {
            "suite": sizes.quick_suite,
            "runs": len(records),
            "of": len(specs),
            "wall_s": round(time.perf_counter() - started, 1),
            "statuses": count(r["status"] for r in records),
            "accuracy": {k: {"gpu": v, "cpu": cpu.get(k)} for k, v in sorted(here.items())},
            "cpu_dir": str(cpu_dir) if cpu_dir else None,
        }

    done: list[dict[str, Any]] = []

    def on_record(record: dict[str, Any]) -> None:
        done.append(record)
        checkpoint(out, "quick", result(done))

    return result(sweep(specs, out, workers=sizes.workers, on_record=on_record))


def step_profile(out: Path, sizes: Sizes) -> dict[str, Any]:
    """The base five first (training, then decode), then the newer presets: each group's
    exponents are fitted when its `seqbench profile` call ends, so a step stopped at its
    limit keeps the fits of the groups it finished."""
    from seqbench.architectures import PRESETS

    groups = [BASE_PROFILE, sorted(set(PRESETS.names()) - OLDER_PRESETS)]
    archs = [arch for group in groups for arch in group]
    common = [
        "--out",
        str(out),
        "--device",
        sizes.device,
        "--dtype",
        sizes.dtype,
        "--budget-s",
        str(sizes.point_budget_s),
        "--threads",
        sizes.threads,
    ]
    modes = {
        "train": [
            "--repeats",
            str(sizes.repeats),
            *[a for n in sizes.seq_lens for a in ("--seq-len", str(n))],
        ],
        "decode": [
            "--decode-steps",
            str(sizes.decode_steps),
            *[a for n in sizes.contexts for a in ("--context", str(n))],
        ],
    }
    runs: dict[str, Any] = {}
    for i, group in enumerate(groups):
        arch_args = [a for arch in group for a in ("--arch", arch)]
        for mode, args in modes.items():
            print(f"profile {mode}: {', '.join(group)}", flush=True)
            runs[f"{mode}/{i}"] = seqbench("profile", *arch_args, *common, "--mode", mode, *args)
            checkpoint(out, "profile", profile_result(out, archs, runs))
    return profile_result(out, archs, runs)


def profile_result(out: Path, archs: list[str], runs: dict[str, Any]) -> dict[str, Any]:
    """The profile's points and fits of `archs` in OUT's records (not MFU's batch-8 points)."""
    from seqbench.harness.records import iter_records

    points, fits = [], []
    for record in iter_records(out, kind="profile"):
        spec = record["spec"]
        if spec.get("arch") not in archs and spec.get("series", {}).get("arch") not in archs:
            continue
        if spec.get("mode") == "fit":
            fits.append(fit_row(record))
        elif (
            spec.get("mode") in ("train", "decode") and spec.get("batch") == 1  # not MFU's
        ):
            points.append(point_row(record))
    return {"archs": archs, "commands": runs, "points": points, "fits": fits}


def step_mfu(out: Path, sizes: Sizes) -> dict[str, Any]:
    m = sizes.mfu
    archs = ["mha", "mamba2"]
    run = seqbench(
        "profile",
        *[a for arch in archs for a in ("--arch", arch)],
        "--out",
        str(out),
        "--device",
        sizes.device,
        "--dtype",
        sizes.dtype,
        "--mode",
        "train",
        "--d-model",
        str(m["d_model"]),
        "--set",
        f"n_layers={m['n_layers']}",
        "--seq-len",
        str(m["seq_len"]),
        "--batch",
        str(m["batch"]),
        "--repeats",
        str(m["repeats"]),
        "--threads",
        sizes.threads,
        "--budget-s",
        "120",
    )
    from seqbench.harness.records import iter_records

    peak = matmul_peak(sizes)
    datasheet = H200_BF16_PEAK if sizes.device == "cuda" else None
    rows = {}
    for record in iter_records(out, kind="profile"):
        spec, metrics = record["spec"], record["metrics"]
        if (
            spec.get("mode") != "train"
            or spec.get("arch") not in archs
            or spec.get("d_model") != m["d_model"]
            or spec.get("n_layers") != m["n_layers"]
            or spec.get("batch") != m["batch"]
        ):
            continue
        row: dict[str, Any] = {"status": record["status"], "reason": record["reason"]}
        if record["status"] == "ok":
            achieved = metrics["flops_per_step"] / metrics["step_s"]
            row |= {
                "tokens_per_s": metrics["tokens_per_s"],
                "step_s": metrics["step_s"],
                "flops_per_step": metrics["flops_per_step"],
                "achieved_flops": achieved,
                "mfu_datasheet": achieved / datasheet if datasheet else None,
                "mfu_measured_peak": achieved / peak,
            }
        rows[spec["arch"]] = row
    return {
        "model": m,
        "matmul_peak_flops": peak,
        "datasheet_peak_flops": datasheet,
        "command": run,
        "archs": rows,
    }


def matmul_peak(sizes: Sizes) -> float:
    """FLOP/s of a large matmul in the profile's dtype: the ceiling this device reaches."""
    import torch

    n = 8192 if sizes.device == "cuda" else 256
    dtype = getattr(torch, sizes.dtype)
    a = torch.randn(n, n, device=sizes.device).to(dtype)
    b = torch.randn(n, n, device=sizes.device).to(dtype)
    for _ in range(3):
        a @ b
    sync(sizes.device)
    reps = 10
    started = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(sizes.device)
    return 2 * n**3 * reps / (time.perf_counter() - started)


STEPS: dict[str, Callable[..., dict[str, Any]]] = {  # in order of value (LIMITS)
    "bf16": step_bf16,
    "quick": step_quick,
    "conformance": step_conformance,
    "agreement": step_agreement,
    "mfu": step_mfu,
    "profile": step_profile,
}


# -- helpers --------------------------------------------------------------------------------------
def sweep(
    specs: list[Any],
    out: Path,
    workers: int = 1,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run specs through the harness (records in OUT/runs/); their records, in order.
    workers > 1: the local launcher's processes, sharing the GPU (small models leave it idle).
    Progress lines go to stdout (a step stopped at its limit shows them in its log tail);
    `on_record` sees each record as it is written."""
    from seqbench.harness.launchers import LocalLauncher, SerialLauncher
    from seqbench.harness.progress import Progress
    from seqbench.harness.records import read_record, record_path
    from seqbench.harness.sweep import run_sweep

    class Reporting(Progress):
        def finished(self, job: Any, record: dict[str, Any]) -> None:
            super().finished(job, record)
            if on_record is not None:
                on_record(record)

    launcher = LocalLauncher(workers) if workers > 1 else SerialLauncher()
    result = run_sweep(specs, out, launcher=launcher, progress=Reporting(len(specs)))
    return [r for i in result.run_ids if (r := read_record(record_path(out, i))) is not None]


def map_processes(
    fn: Callable[..., dict[str, Any]], items: list[str], workers: int, *args: Any
) -> Any:
    """(item, fn(item, *args)) as each finishes, in `workers` spawned processes (CUDA cannot
    fork); inline for one worker. A crashed process is a failed result, not a crashed step."""
    if workers <= 1:
        for item in items:
            yield item, fn(item, *args)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=context) as pool:
        futures = {pool.submit(fn, item, *args): item for item in items}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # BrokenProcessPool: a worker died (a CUDA fault, OOM)
                yield futures[future], {"passed": False, "failures": [one_line(exc)], "seconds": 0}


def checkpoint(out: Path, name: str, result: dict[str, Any]) -> None:
    """What a step has finished so far; the driver keeps it if the step is stopped."""
    atomic_write_json(partial_path(out, name), result)


def seqbench(*args: str) -> dict[str, Any]:
    """`seqbench ARGS` in a child process; its exit code and the last lines it printed."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "from seqbench.harness.cli import main; main()", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=child_env(),
    )
    tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()][-8:]
    return {
        "args": list(args),
        "exit_code": proc.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "tail": tail,
    }


def child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def mamba_ssm_state() -> dict[str, Any]:
    """Which mamba-ssm entry points import here (the kernels a CUDA run can engage)."""
    from seqbench.architectures.scans import cuda

    return {
        "mamba_ssm": {
            "selective_scan_cuda": cuda.compiled_extension_available(),
            "ssd_triton": cuda._import(
                "mamba_ssm.ops.triton.ssd_combined", "mamba_chunk_scan_combined"
            )
            is not None,
            "causal_conv1d": cuda._import("causal_conv1d", "causal_conv1d_fn") is not None,
        }
    }


def accuracy_table(records: list[dict[str, Any]]) -> dict[str, float]:
    """Mean test accuracy at the training length per "arch/task" over ok runs."""
    sums: dict[str, list[float]] = {}
    for r in records:
        if r["status"] != "ok":
            continue
        test = r["metrics"].get("test", {}).get(str(r["spec"]["seq_len"]), {})
        if test.get("accuracy") is not None:
            sums.setdefault(f"{r['spec']['arch']}/{r['spec']['task']}", []).append(test["accuracy"])
    return {k: round(sum(v) / len(v), 4) for k, v in sums.items()}


def iter_cpu_records(folder: Path) -> Any:
    from seqbench.harness.records import iter_records

    yield from (r for r in iter_records(folder, kind="run") if r["spec"].get("device") == "cpu")


def point_row(record: dict[str, Any]) -> dict[str, Any]:
    spec, m = record["spec"], record["metrics"]
    row = {
        "arch": spec["arch"],
        "mode": spec["mode"],
        "status": record["status"],
        "length": spec.get("seq_len") or spec.get("context"),
    }
    if spec["mode"] == "train":
        row |= {
            "step_s": m.get("step_s"),
            "cuda_peak_bytes": (m.get("memory_bytes") or {}).get("cuda_peak_allocated"),
        }
    else:
        row |= {
            "decode_s_per_token": m.get("decode_s_per_token"),
            "state_bytes": m.get("state_bytes"),
        }
    if record["status"] != "ok":
        row["reason"] = record["reason"]
    return row


def fit_row(record: dict[str, Any]) -> dict[str, Any]:
    spec, fits = record["spec"], record["metrics"]["fits"]
    row = {"arch": spec["series"].get("arch"), "of_mode": spec["of_mode"], "x": spec["x"]}
    for quantity in (
        "step_s",
        "memory_bytes.cuda_peak_allocated",
        "decode_s_per_token",
        "state_bytes",
    ):
        entry = fits.get(quantity)
        for part in ("all", "long"):
            fit = entry and entry.get(part)
            if fit:
                row[f"{quantity}:{part}"] = [fit["slope"], fit["ci_low"], fit["ci_high"]]
    return row


def count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


# -- the driver ---------------------------------------------------------------------------------
def run_step(name: str, out: Path, sizes: Sizes, cpu_dir: Path | None) -> None:
    """In the step's own process: run it, write OUT/gpu_check/NAME.json."""
    started = time.perf_counter()
    try:
        kwargs = {"cpu_dir": cpu_dir} if name == "quick" else {}
        result = {"status": "ok", "reason": None, "result": STEPS[name](out, sizes, **kwargs)}
    except Exception as exc:
        result = {
            "status": "failed",
            "reason": one_line(exc),
            "result": None,
            "traceback": traceback.format_exc()[-4000:],
        }
    result |= {
        "step": name,
        "seconds": round(time.perf_counter() - started, 1),
        "environment": environment(sizes),
    }
    atomic_write_json(step_path(out, name), result)


def step_path(out: Path, name: str) -> Path:
    return out / "gpu_check" / f"{name}.json"


def partial_path(out: Path, name: str) -> Path:
    return out / "gpu_check" / f"{name}.partial.json"


def environment(sizes: Sizes) -> dict[str, Any]:
    from seqbench.harness.records import environment as env

    return env(sizes.device)


def drive(args: argparse.Namespace) -> int:
    out = Path(args.out).absolute()
    (out / "gpu_check").mkdir(parents=True, exist_ok=True)
    steps = args.steps.split(",") if args.steps else list(STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        print(
            f"error: unknown step(s) {', '.join(unknown)}; steps: {', '.join(STEPS)}",
            file=sys.stderr,
        )
        return 2
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print(
                "error: no CUDA device here (use --dry-run to test the script on a CPU)",
                file=sys.stderr,
            )
            return 2
    sizes = DRY if args.dry_run else FULL
    budget = args.budget_s or sizes.budget_s or float("inf")
    total = time.perf_counter()
    for name in steps:
        left = budget - (time.perf_counter() - total)
        limit = int(min(300 if args.dry_run else LIMITS[name], left))
        if limit < 20:
            atomic_write_json(
                step_path(out, name),
                {
                    "step": name,
                    "status": "not run",
                    "result": None,
                    "seconds": 0,
                    "reason": f"not run: {left:.0f} s of --budget-s {budget:g} left",
                },
            )
            print(f"{name:12s} not run (budget)", flush=True)
            continue
        command = [sys.executable, str(Path(__file__).resolve()), "--out", str(out), "--step", name]
        command += ["--dry-run"] if args.dry_run else []
        command += ["--cpu-dir", args.cpu_dir] if args.cpu_dir else []
        started = time.perf_counter()
        step_path(out, name).unlink(missing_ok=True)
        partial_path(out, name).unlink(missing_ok=True)
        ended, log = run_limited(command, limit)
        seconds = round(time.perf_counter() - started, 1)
        if not step_path(out, name).exists():  # it died or hung before writing its result
            record_stopped(out, name, ended, log, seconds)
        partial_path(out, name).unlink(missing_ok=True)
        status = json.loads(step_path(out, name).read_text())["status"]
        print(f"{name:12s} {status:7s} {seconds:7.1f} s", flush=True)
    summary = write_summary(out, steps, time.perf_counter() - total)
    report = seqbench("report", str(out))
    print(f"summary: {out / 'gpu_check' / 'summary.md'}; report: exit {report['exit_code']}")
    return 0 if all(s["status"] == "ok" for s in summary["steps"].values()) else 1


def record_stopped(out: Path, name: str, ended: str, log: str, seconds: float) -> None:
    """A step whose process ended without its result: failed, with what it had finished
    (its last checkpoint, marked partial) and the tail of its output."""
    partial = partial_path(out, name)
    atomic_write_json(
        step_path(out, name),
        {
            "step": name,
            "status": "failed",
            "reason": f"the step's process ended: {ended}",
            "result": json.loads(partial.read_text()) if partial.exists() else None,
            "partial": partial.exists(),
            "seconds": seconds,
            "log_tail": log[-4000:],
        },
    )


def run_limited(command: list[str], limit: int) -> tuple[str, str]:
    """Run a step's process in its own session; past `limit` seconds, kill the whole session
    (a profile's workers too), so that nothing outlives the step holding the GPU."""
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(),
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=limit)
        return f"exit code {proc.returncode}", log
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        return f"over its {limit} s limit", log


def write_summary(out: Path, steps: list[str], wall: float) -> dict[str, Any]:
    from gpu_summary import markdown  # beside this file

    results = {name: json.loads(step_path(out, name).read_text()) for name in steps}
    summary = {"wall_s": round(wall, 1), "steps": results}
    atomic_write_json(out / "gpu_check" / "summary.json", summary)
    atomic_write_text(out / "gpu_check" / "summary.md", markdown(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/gpu", help="records and summary folder")
    parser.add_argument("--dry-run", action="store_true", help="every step on CPU, tiny sizes")
    parser.add_argument("--steps", help=f"comma-separated subset of: {', '.join(STEPS)}")
    parser.add_argument("--cpu-dir", help="a CPU run of the quick suite to compare accuracies")
    parser.add_argument(
        "--budget-s",
        type=float,
        help="wall-clock seconds for all steps; later steps are not run when it is spent "
        "[540 on the GPU: a 10-minute call with a minute to spare; none for --dry-run]",
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)  # internal: run one step here
    args = parser.parse_args(argv)
    sizes = DRY if args.dry_run else FULL
    if args.step:
        run_step(args.step, Path(args.out), sizes, Path(args.cpu_dir) if args.cpu_dir else None)
        return 0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
