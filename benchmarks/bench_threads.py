"""Threads of a run: torch's default against seqbench's beside a busy process, and what
thread-independent matrix products cost.

1. Beside one process that keeps a core busy (`python -c 'while True: pass'`), the same sweep
   (default: `seqbench run --suite smoke`, serial) three ways, wall seconds: one thread per
   usable core (`--threads N`: torch's default, what every run got before), one thread
   (`--threads 1`), and seqbench's default choice (no flag). Target: the default within 1.2x
   of the faster of the two fixed counts.
2. MKL's strict reproducibility mode (MKL_CBWR=AUTO,STRICT, seqbench's default, which makes
   products bitwise equal on any number of threads) against MKL_CBWR=AUTO: CPU seconds of one
   training step per preset at d_model 64, batch 16, one thread, in fresh processes that
   alternate, median over rounds. The ratio is the price of thread-independent products.

    python benchmarks/bench_threads.py                      # both, ~5 min on a 2-core CPU
    python benchmarks/bench_threads.py --part cnr --presets mha lru --rounds 5
    python benchmarks/bench_threads.py --part busy --sweep "--arch mamba --task mqar --steps 60"
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqbench.harness.common.threads import usable_cores

ROOT = Path(__file__).resolve().parents[1]
STEP = """
import sys, time, torch
from seqbench.harness.profile.points import PointOptions, build_model, make_spec, random_tokens
from seqbench.harness.profile.train_step import training_step
torch.set_num_threads(1)
spec = make_spec("train", sys.argv[1], {"d_model": 64}, int(sys.argv[2]), PointOptions(batch=16))
model, tokens = build_model(spec, "cpu"), random_tokens(spec, spec["seq_len"] + 1, "cpu")
for _ in range(2):
    training_step(model, tokens)
times = []
for _ in range(7):
    start = time.process_time()
    training_step(model, tokens)
    times.append(time.process_time() - start)
print(sorted(times)[3])
"""


def env(**values: str) -> dict[str, str]:
    """This environment with this checkout first on the path and OMP_NUM_THREADS unset."""
    out = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    return out | {"PYTHONPATH": str(ROOT)} | values


def sweep_seconds(args: list[str], threads: str | None) -> float:
    """Wall seconds of `seqbench run ARGS` into a fresh folder."""
    with tempfile.TemporaryDirectory() as out:
        flags = [] if threads is None else ["--threads", threads]
        cli = [sys.executable, "-c", "from seqbench.harness.cli import main; main()"]
        cmd = [*cli, "run", *args, *flags, "--out", out]
        start = time.perf_counter()
        subprocess.run(cmd, env=env(), check=True, capture_output=True)
        return time.perf_counter() - start


def beside_busy(args: list[str]) -> None:
    cores = usable_cores()
    print(f"1. `seqbench run {' '.join(args)}` beside one busy process, {cores} usable cores")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let the scheduler see it busy
        seconds = {
            f"--threads {cores} (torch's default)": sweep_seconds(args, str(cores)),
            "--threads 1": sweep_seconds(args, "1"),
            "default (no flag)": sweep_seconds(args, None),
        }
    finally:
        busy.kill()
        busy.wait()
    for label, s in seconds.items():
        print(f"   {label:28s} {s:7.1f} s")
    best = min(v for k, v in seconds.items() if k.startswith("--threads"))
    ratio = seconds["default (no flag)"] / best
    verdict = "meets" if ratio <= 1.2 else "MISSES"
    print(f"   default / best fixed = {ratio:.2f}x ({verdict} the <= 1.2x target)")


def step_cpu_seconds(preset: str, length: int, mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", STEP, preset, str(length)],
        env=env(MKL_CBWR=mode),
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def cnr_cost(presets: list[str], length: int, rounds: int) -> None:
    print(f"2. one training step, CPU ms (median of {rounds} fresh processes each), L={length}")
    print(f"   {'preset':10s} {'AUTO':>8s} {'STRICT':>8s}  STRICT / AUTO")
    ratios = []
    for preset in presets:
        times: dict[str, list[float]] = {"AUTO": [], "AUTO,STRICT": []}
        for _ in range(rounds):
            for mode in times:  # alternate, so load from other jobs hits both alike
                times[mode].append(step_cpu_seconds(preset, length, mode))
        auto, strict = (statistics.median(times[m]) for m in ("AUTO", "AUTO,STRICT"))
        ratios.append(strict / auto)
        print(f"   {preset:10s} {auto * 1e3:8.1f} {strict * 1e3:8.1f}  {strict / auto:6.3f}x")
    print(f"   median ratio {statistics.median(ratios):.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["busy", "cnr", "both"], default="both")
    parser.add_argument(
        "--sweep", default="--suite smoke", help="arguments of `seqbench run`, one string"
    )
    parser.add_argument("--presets", nargs="*", default=["mha", "mha-moe", "mamba", "lru"])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.part in ("busy", "both"):
        beside_busy(shlex.split(args.sweep))
    if args.part in ("cnr", "both"):
        cnr_cost(args.presets, args.length, args.rounds)


if __name__ == "__main__":
    main()
