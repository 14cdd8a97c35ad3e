"""Training throughput at small sizes: where a step's CPU time goes, and old vs new side by side.

For every preset (default mha, mamba, mamba2, lru) at d_model 64, batch 16, one thread, and
lengths 64 .. 1024, on the selective_copy task, one training step exactly as
`seqbench.harness.train` takes it (fresh batch, forward on the scored positions, loss,
backward, clipping, AdamW, lr schedule), plus validation as the suites do it (128 examples
every 50 steps, amortised per step). Printed per preset and length:

  - CPU seconds per step and training tokens per CPU-second, for the old and the new code,
    and their ratio;
  - phases: data, forward+backward, optimizer (clip + AdamW + schedule), evaluation;
  - forward+backward split by torch.profiler self-CPU time into matmuls, attention kernels,
    scan kernels (our autograd functions, C or PyTorch), elementwise ops (the fused C conv +
    SiLU included), and dispatch/Python
    overhead (the measured forward+backward time that no kernel accounts for: op dispatch,
    autograd bookkeeping, view ops, Python); plus the fixed cost of a step at batch 1 length 16;
  - model FLOPs per step (torch's counter: matmuls and attention) and MFU against both the
    single-thread 2048^2 matmul peak and the attainable rate of d_model-sized matmuls (the
    realistic roofline for these shapes; measured at the start);
  - the ceiling: the old step's time over a floor no same-math float32 step can beat on this
    core (its model FLOPs, causal attention counted at half, at the fastest matmul rate
    measured, everything else free), i.e. the largest speedup over the old code possible.

Old vs new: `--baseline COMMIT` (default 0c26418, the main this work started from) checks
that commit out once into a git worktree (`--baseline-dir`, default a temp folder) and runs
the same measurement there; `--baseline fallback` compares against this checkout with the C
kernels switched off (SEQBENCH_NATIVE=0, what a machine without a compiler runs);
`--baseline none` measures this checkout only. Every measurement runs in a fresh worker
process with that code on its path; old and new alternate per preset and round (round-robin),
and each time is the median over rounds, because this machine is shared (CPU seconds of the
process, `time.process_time`, so time taken by other jobs does not count).

    python benchmarks/bench_train.py                          # ~10 min on the shared box
    python benchmarks/bench_train.py --presets mamba --lengths 64 256 --rounds 1
    python benchmarks/bench_train.py --baseline fallback --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = "0c26418"
EVAL_EVERY, VAL_EXAMPLES = 50, 128  # the quick and standard suites' validation
MATMUL = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addbmm", "aten::mv")
VIEWS = {
    "aten::view", "aten::_unsafe_view", "aten::transpose", "aten::t", "aten::as_strided",
    "aten::select", "aten::slice", "aten::unbind", "aten::expand", "aten::reshape",
    "aten::permute", "aten::squeeze", "aten::unsqueeze", "aten::split", "aten::chunk",
    "aten::narrow", "aten::alias", "aten::detach", "aten::empty", "aten::empty_like",
    "aten::empty_strided", "aten::resolve_conj", "aten::resolve_neg", "aten::_reshape_alias",
    "aten::view_as_real", "aten::view_as_complex", "aten::unflatten", "aten::flatten",
    "aten::lift_fresh", "aten::contiguous", "aten::to", "aten::_to_copy", "aten::matmul",
    "aten::linear", "aten::split_with_sizes", "aten::real", "aten::imag", "aten::numpy_T",
    "aten::result_type", "aten::is_nonzero", "aten::item", "aten::_local_scalar_dense",
    "aten::detach_", "aten::zeros", "aten::zeros_like", "aten::ones", "aten::new_empty",
    "aten::new_zeros", "aten::clone",
}  # fmt: skip


# -- worker side (runs with the measured checkout first on sys.path) ---------------------------
def category(name: str) -> str:
    """Which share of forward+backward a profiled op's self time belongs to."""
    if name in MATMUL:
        return "matmul"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention"
    if "NativeCausalAttention" in name:  # our C attention kernel's autograd function
        return "attention"
    if "ScanFn" in name or "SSDFn" in name:  # our scan autograd functions, C or PyTorch
        return "scan"
    if "ConvSiluFn" in name:  # the fused conv + SiLU kernel: elementwise work, done in C
        return "elementwise"
    if name.startswith("aten::") and name not in VIEWS:
        return "elementwise"
    return "dispatch"  # view ops, autograd nodes, Python-level ranges


def worker(job: dict[str, Any]) -> dict[str, Any]:
    import torch
    from torch.profiler import record_function

    from seqbench.architectures import build_config
    from seqbench.architectures.model import LanguageModel
    from seqbench.harness.evaluate import evaluate
    from seqbench.harness.spec import RunSpec
    from seqbench.harness.train import build_optimizer, clip_gradients, lr_factor, scored_loss
    from seqbench.tasks.base import make_task

    torch.set_num_threads(1)
    cpu = time.process_time

    def setup(length: int, batch: int):
        task = make_task("selective_copy", vocab_size=16, num_tokens=4, seq_len=length)
        spec = RunSpec(
            arch=job["preset"], task="selective_copy", seq_len=length, steps=1000,
            batch_size=batch, lr=1e-3, device="cpu", dtype="float32",
        )  # fmt: skip
        config = build_config(
            job["preset"], vocab_size=task.vocab_size, overrides={"d_model": job["d_model"]}
        )
        torch.manual_seed(0)
        model = LanguageModel(config).train()
        optimizer = build_optimizer(model, spec)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, spec))
        return task, spec, model, optimizer, schedule

    def step(task, spec, model, optimizer, schedule, i: int, phases: dict[str, float]) -> None:
        t0 = cpu()
        with record_function("bench.data"):
            batch = task.split_batch(spec.batch_size, spec.seed, "train", i)
            scored = batch.scored
        t1 = cpu()
        with record_function("bench.fwd_bwd"):
            _, loss = scored_loss(model, batch.inputs, scored, batch.targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        t2 = cpu()
        with record_function("bench.optimizer"):
            clip_gradients(model, spec)
            optimizer.step()
            schedule.step()
            float(loss.detach())
        t3 = cpu()
        for key, value in (("data", t1 - t0), ("fwd_bwd", t2 - t1), ("optimizer", t3 - t2)):
            phases[key] = phases.get(key, 0.0) + value

    import seqbench.architectures as arch_pkg

    out: dict[str, Any] = {"points": {}, "code": str(Path(arch_pkg.__file__).parent)}
    tiny = setup(16, 1)
    for i in range(3):
        step(*tiny, i, {})
    tiny_phases: dict[str, float] = {}
    for i in range(5):
        step(*tiny, 3 + i, tiny_phases)
    out["tiny_step_s"] = sum(tiny_phases.values()) / 5
    for length in job["lengths"]:
        task, spec, model, optimizer, schedule = setup(length, job["batch"])
        for i in range(2):
            step(task, spec, model, optimizer, schedule, i, {})
        phases: dict[str, float] = {}
        for i in range(job["steps"]):
            step(task, spec, model, optimizer, schedule, 2 + i, phases)
        point = {k: v / job["steps"] for k, v in phases.items()}
        val = task.split_batch(VAL_EXAMPLES, spec.seed, "val")
        t0 = cpu()
        evaluate(model, val, batch_size=spec.batch_size, device="cpu", dtype="float32")
        point["eval"] = (cpu() - t0) / EVAL_EVERY
        point["step_s"] = sum(point.values())
        point["kernel_paths"] = sorted(
            {str(getattr(b.mixer, "kernel_path", "-")) for b in model.blocks}
        )
        if job["breakdown"]:
            point.update(breakdown(task, spec, model, optimizer, schedule, step, point, torch))
        out["points"][str(length)] = point
    return out


def breakdown(task, spec, model, optimizer, schedule, step, point, torch) -> dict[str, Any]:
    """Shares of forward+backward by op category, and the model FLOPs of one step.

    The profiler's times are wall-clock and inflated by its own hooks, so only its *shares*
    are used: each category's self time over the whole forward+backward range, applied to the
    unprofiled CPU time of that phase. Whatever no kernel category accounts for (view ops,
    autograd bookkeeping, dispatch, Python between ops) is the dispatch share.
    """
    from torch.profiler import ProfilerActivity, profile

    from seqbench.harness.profile.flops import flop_counter, flops_by_op

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(2):
            step(task, spec, model, optimizer, schedule, 100 + i, {})
    events = prof.events()
    total, sums = 0.0, dict.fromkeys(("matmul", "attention", "scan", "elementwise"), 0.0)
    for event in events:
        if event.name == "bench.fwd_bwd":
            total += event.cpu_time_total
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.name.startswith("bench."):
            parent = parent.cpu_parent
        if parent is None or parent.name != "bench.fwd_bwd":
            continue
        cat = category(event.name)
        if cat != "dispatch":
            sums[cat] += event.self_cpu_time_total
    split = {k: point["fwd_bwd"] * v / max(total, 1e-9) for k, v in sums.items()}
    split["dispatch"] = max(0.0, point["fwd_bwd"] - sum(split.values()))
    counter = flop_counter()
    with counter:
        step(task, spec, model, optimizer, schedule, 200, {})
    # Matmuls and attention only: torch's counter overcounts depthwise conv backward by ~100x.
    by_op = {op: n for op, n in flops_by_op(counter).items() if "conv" not in op}
    attention = sum(n for op, n in by_op.items() if "scaled_dot_product" in op)
    return {"split": split, "flops": int(sum(by_op.values())), "attention_flops": int(attention)}


# -- parent side ----------------------------------------------------------------------------------
def matmul_rates(rows: list[int], d_model: int) -> dict[str, float]:
    """GFLOP/s of one thread: the 2048^2 peak, and d_model-sized shapes at B x L rows."""
    import torch

    torch.set_num_threads(1)

    def rate(m: int, k: int, n: int) -> float:
        a, b = torch.randn(m, k), torch.randn(k, n)
        out = torch.empty(m, n)
        reps = max(3, int(2e9 / (2 * m * k * n)))
        torch.mm(a, b, out=out)
        times = []
        for _ in range(3):
            t0 = time.process_time()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            times.append((time.process_time() - t0) / reps)
        return 2 * m * k * n / min(times) / 1e9

    rates = {"peak_2048": rate(2048, 2048, 2048)}
    widths = [d_model, 2 * d_model, int(3.5 * d_model), 7 * d_model]
    for m in rows:
        shapes = [(m, d_model, w) for w in widths] + [(m, w, d_model) for w in widths]
        shapes += [(d_model, m, w) for w in widths]  # weight gradients: contraction over rows
        rates[f"d_model_rows_{m}"] = statistics.median(rate(*s) for s in shapes)
    return rates


def floor_seconds(flops: int, attention_flops: int, rates: dict[str, float]) -> float:
    """A lower bound on a step's time for the same math in float32 on this core: its model
    FLOPs at the fastest matmul rate measured, with everything else (elementwise work,
    scans, optimizer, data, evaluation, dispatch) free. The counter counts causal attention
    as the full L x L products; a causal kernel needs half, so half is taken."""
    needed = flops - attention_flops / 2
    return needed / (max(rates.values()) * 1e9) if needed > 0 else 0.0


def baseline_root(commit: str, folder: Path | None) -> Path:
    """A git worktree of `commit` (made once, reused)."""
    target = folder or Path(tempfile.gettempdir()) / f"seqbench-baseline-{commit}"
    if not (target / "pyproject.toml").is_file():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(target), commit],
            check=True, capture_output=True,
        )  # fmt: skip
    return target


def run_worker(root: Path, env_extra: dict[str, str], job: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    code = (
        f"import sys, json; sys.path.insert(0, {str(root)!r}); "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_train; "
        "print('RESULT', json.dumps(bench_train.worker(json.loads(sys.argv[1]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(job)],
        env=env, capture_output=True, text=True, cwd=str(root),
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker failed in {root}: {done.stderr.strip()[-2000:]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["mha", "mamba", "mamba2", "lru"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[64, 256, 1024])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per point per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit | fallback | none")
    parser.add_argument("--baseline-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    sides: dict[str, tuple[Path, dict[str, str]]] = {"new": (ROOT, {})}
    if args.baseline == "fallback":
        sides = {"old": (ROOT, {"SEQBENCH_NATIVE": "0"}), **sides}
    elif args.baseline != "none":
        sides = {"old": (baseline_root(args.baseline, args.baseline_dir), {}), **sides}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"load average at start: {load}; baseline: {args.baseline}", flush=True)
    rows = sorted({args.batch * n for n in args.lengths})
    rates = matmul_rates(rows, args.d_model)
    print("matmul GFLOP/s, one thread: " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()))

    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rnd in range(args.rounds):
        for preset in args.presets:
            for side, (root, env) in sides.items():
                job = {
                    "preset": preset, "d_model": args.d_model, "batch": args.batch,
                    "lengths": args.lengths, "steps": args.steps, "breakdown": rnd == 0,
                }  # fmt: skip
                start = time.perf_counter()
                res = run_worker(root, env, job)
                results.setdefault(preset, {}).setdefault(side, []).append(res)
                print(
                    f"  round {rnd} {preset:7s} {side}: {time.perf_counter() - start:5.1f} s wall",
                    file=sys.stderr, flush=True,
                )  # fmt: skip
    report = summarise(results, args, rates)
    report["load_average"] = {"start": load, "end": os.getloadavg() if load else None}
    print(f"load average at end: {report['load_average']['end']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def summarise(results, args, rates) -> dict[str, Any]:
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "rates": rates}
    head = (
        f"{'preset':7s} {'L':>5s} {'old ms':>8s} {'new ms':>8s} {'speedup':>7s} "
        f"{'new tok/cpu-s':>13s} | data fwd+bwd opt eval (ms) | matmul attn scan elem "
        f"dispatch (% of fwd+bwd) | GFLOP/step MFU-peak MFU-dmodel | ceiling | paths"
    )
    print(head)
    for preset, by_side in results.items():
        for side, runs in by_side.items():
            tiny = statistics.median(r["tiny_step_s"] for r in runs)
            print(f"{preset:7s} {side}: fixed cost of a B1 L16 step {tiny * 1e3:.1f} ms")
        for length in args.lengths:
            key = str(length)
            each = {
                side: [r["points"][key]["step_s"] for r in runs] for side, runs in by_side.items()
            }
            med = {side: statistics.median(times) for side, times in each.items()}
            first = by_side["new"][0]["points"][key]
            tokens = args.batch * length
            flops = first.get("flops", 0)
            floor = floor_seconds(flops, first.get("attention_flops", 0), rates)
            attainable = rates[f"d_model_rows_{tokens}"]
            achieved = flops / med["new"] / 1e9
            split = first.get("split", {})
            fb = max(first["fwd_bwd"], 1e-12)
            old = med.get("old")
            row = {
                "preset": preset, "length": length, "new_step_s": med["new"],
                "old_step_s": old, "speedup": old / med["new"] if old else None,
                "new_tokens_per_cpu_s": tokens / med["new"],
                "old_tokens_per_cpu_s": tokens / old if old else None,
                "phases_new": {k: first[k] for k in ("data", "fwd_bwd", "optimizer", "eval")},
                "split_new": split, "flops_per_step": flops, "gflops_achieved": achieved,
                "mfu_peak": achieved / rates["peak_2048"], "mfu_dmodel": achieved / attainable,
                "rounds_step_s": each,
                "kernel_paths_new": first["kernel_paths"], "floor_step_s": floor,
                "ceiling": old / floor if old and floor else None,
            }  # fmt: skip
            if old:
                old_first = by_side["old"][0]["points"][key]
                row["phases_old"] = {
                    k: old_first[k] for k in ("data", "fwd_bwd", "optimizer", "eval")
                }
                row["split_old"] = old_first.get("split", {})
            report.setdefault("points", []).append(row)
            shares = " ".join(
                f"{100 * split.get(k, 0) / fb:4.0f}"
                for k in ("matmul", "attention", "scan", "elementwise", "dispatch")
            )
            phases = " ".join(
                f"{1e3 * first[k]:.1f}" for k in ("data", "fwd_bwd", "optimizer", "eval")
            )
            old_ms = f"{old * 1e3:8.1f}" if old else f"{'-':>8s}"
            speed = f"{old / med['new']:6.2f}x" if old else f"{'-':>7s}"
            print(
                f"{preset:7s} {length:5d} {old_ms} {med['new'] * 1e3:8.1f} {speed} "
                f"{tokens / med['new']:13.0f} | {phases} | {shares} | {flops / 1e9:.2f} "
                f"{100 * row['mfu_peak']:.1f}% {100 * row['mfu_dmodel']:.1f}% | "
                f"{row['ceiling'] or 0:5.2f}x | {','.join(first['kernel_paths'])}"
            )
            if old and row.get("split_old"):
                ob = max(old_first["fwd_bwd"], 1e-12)
                old_shares = " ".join(
                    f"{100 * row['split_old'].get(k, 0) / ob:4.0f}"
                    for k in ("matmul", "attention", "scan", "elementwise", "dispatch")
                )
                old_phases = " ".join(
                    f"{1e3 * old_first[k]:.1f}" for k in ("data", "fwd_bwd", "optimizer", "eval")
                )
                print(f"{'':7s} {'(old)':>5s} {'':37s}   | {old_phases} | {old_shares} |")
    return report


if __name__ == "__main__":
    main()
