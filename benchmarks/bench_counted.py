"""Counting on the meta device: CPU seconds of every preset's counted points up to 1M tokens.

`seqbench profile` counts FLOPs and saved bytes of a training step (and the decode state after
prefill) on meta tensors at `--counted-len` 1k … 1M by default. Nothing is computed there, so
the cost is Python: one dispatch per op. A scan that looped over chunks of time steps made that
cost grow with the length (Mamba: 85 s at 65k tokens, so its longer points were skipped); the
scans now issue their loops' ops batched over chunks on meta (`architectures/scans/counting.py`).

Printed per preset: CPU seconds (`time.process_time`, so other jobs on the machine do not
count) of its whole counted series, the slowest point, and the total over every preset against
the target of 10 s. With `--reference S` each preset's series is also counted the old way,
looping (`loops_on_meta`), stopping a series after its first point over S seconds, and the
ratio loop / batched is printed over the lengths both counted. The counts themselves are held
equal by tests/test_profile_counted.py.

    python benchmarks/bench_counted.py                    # every preset, 1k … 1M (≈10 s)
    python benchmarks/bench_counted.py --presets mamba --reference 30
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from seqbench.architectures import PRESETS
from seqbench.architectures.scans.counting import loops_on_meta
from seqbench.harness.profile.meta import count_on_meta
from seqbench.harness.profile.points import PointOptions, make_spec
from seqbench.harness.profile.sweep import DEFAULT_COUNTED_LENS

TARGET_S = 10.0


def count_series(
    arch: str, lengths: list[int], cap_s: float | None = None, loop: bool = False
) -> dict[int, float]:
    """CPU seconds per counted length; a series stops after its first point over `cap_s`."""
    seconds: dict[int, float] = {}
    for length in lengths:
        spec = make_spec("counted", arch, {}, length, PointOptions())
        started = time.process_time()
        if loop:
            with loops_on_meta():
                count_on_meta(spec)
        else:
            count_on_meta(spec)
        seconds[length] = time.process_time() - started
        if cap_s is not None and seconds[length] > cap_s:
            break
    return seconds


def tokens(length: int) -> str:
    return f"{length // 1024}k" if length < 2**20 else f"{length // 2**20}M"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", help="presets [every registered one]")
    parser.add_argument("--lengths", nargs="*", type=int, default=list(DEFAULT_COUNTED_LENS))
    parser.add_argument(
        "--reference", type=float, metavar="S", help="also count looping, S s cap per series"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    presets = args.presets or sorted(PRESETS.names())
    lengths = sorted(args.lengths)
    count_series("mha", lengths[:1])  # warm-up: torch's meta kernels, the FLOP counter
    span = f"{tokens(lengths[0])} … {tokens(lengths[-1])}"
    print(f"counted points at {len(lengths)} lengths, {span} tokens, one thread; CPU seconds")
    header = f"{'preset':18s} {'series':>8s} {'slowest':>8s}"
    print(header + ("  loop (reached)   loop / batched" if args.reference else ""))
    total = 0.0
    for arch in presets:
        batched = count_series(arch, lengths)
        total += sum(batched.values())
        line = f"{arch:18s} {sum(batched.values()):8.2f} {max(batched.values()):8.2f}"
        if args.reference:
            line += reference_column(arch, lengths, args.reference, batched, count_series)
        print(line, flush=True)
    verdict = "meets" if total <= TARGET_S else "MISSES"
    print(f"\ntotal {total:.2f} s CPU for {len(presets)} presets "
          f"({verdict} the <= {TARGET_S:g} s target)")  # fmt: skip


def reference_column(
    arch: str,
    lengths: list[int],
    cap_s: float,
    batched: dict[int, float],
    count: Callable[..., dict[int, float]],
) -> str:
    """Loop seconds over the lengths the loop reached within its cap, and their ratio."""
    looped = count(arch, lengths, cap_s, loop=True)
    reached = list(looped)
    ratio = sum(looped.values()) / sum(batched[n] for n in reached)
    return f"  {sum(looped.values()):8.2f} ({tokens(reached[-1]):>4s})   {ratio:8.1f}x"


if __name__ == "__main__":
    main()
