"""One profile point, measured in the process that runs it: `run_point(spec, ...) -> record`.

Launchers run points like training runs (`seqbench.harness.launchers.base.execute_job`); the
`local` launcher (the default of `seqbench profile`) runs each in a worker process, which is
why:
- the RSS method needs a fresh process whose peak reflects only this step (training points
  are jobs with `fresh_process`);
- an out-of-memory point fails in its own address space (a capped one, see
  `memory.limit_address_space`) and an over-budget point can be killed, while the sweep goes on.

The local launcher's forkserver preloads this module (and torch._dynamo with it) once, so a
fresh worker costs milliseconds. For debugging, `python -m seqbench.harness.profile.worker <
specs.json` measures a JSON list of point specs in this process and prints one record per line.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
from typing import Any

import torch

# FlopCounterMode imports torch._dynamo (about 800 modules) on first use; importing it here
# puts it in the forkserver once instead of costing every fresh worker seconds.
import torch._dynamo

from seqbench import architectures  # noqa: F401  (registers every preset before the fork)
from seqbench.harness.common.outcome import exception_outcome
from seqbench.harness.profile.decode import measure_decode
from seqbench.harness.profile.memory import lift_address_space_limit, limit_address_space
from seqbench.harness.profile.meta import count_on_meta
from seqbench.harness.profile.points import point_id
from seqbench.harness.profile.train_step import measure_train
from seqbench.harness.records import make_record

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def fix_malloc_thresholds() -> bool:
    """glibc: every allocation ≥ 64 KiB gets its own mapping, returned to the OS when freed.

    Without this, glibc raises its mmap threshold after the first large free and keeps freed
    blocks on the heap; the measured step would then reuse pages the warm-up step touched and
    its RSS peak would under-count (measured: up to 3x too low at short lengths).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
    )


def run_point(
    spec: dict[str, Any], budget_s: float | None = None, max_memory_bytes: int | None = None
) -> dict[str, Any]:
    """Measure one point and return its record: ok, oom or failed (with a one-line reason).

    `budget_s` bounds the timed repeats of a training point; `max_memory_bytes` caps this
    process's address space on CPU while it measures (lifted afterwards).
    """
    started = time.perf_counter()
    status, reason, metrics = "ok", None, {}
    limited = spec["device"] == "cpu" and max_memory_bytes is not None
    prepare_process()
    if spec.get("threads"):
        # Why a knob: on a CPU shared with other work, each parallel op waits for its slowest
        # thread; with more threads than free cores that is a descheduled one, so small ops
        # take a time slice each (measured: Mamba 7x slower on 2 threads than on 1).
        torch.set_num_threads(spec["threads"])
    try:
        if limited:
            limit_address_space(max_memory_bytes)
        if spec["mode"] == "train":
            metrics = measure_train(spec, budget_s)
        elif spec["mode"] == "decode":
            metrics = measure_decode(spec)
        else:
            metrics = count_on_meta(spec)
    except Exception as exc:  # classified and recorded; the sweep goes on
        status, reason = exception_outcome(exc)
        if status == "oom" and limited:
            reason += f" (per-point memory cap {max_memory_bytes / 2**20:,.0f} MiB)"
    finally:
        if limited:
            lift_address_space_limit()
    return make_record(
        kind="profile",
        run_id=point_id(spec),
        spec=spec,
        status=status,
        reason=reason,
        metrics=metrics,
        timings={"point_s": time.perf_counter() - started},
        device=spec["device"],
    )


_PREPARED = False


def prepare_process() -> None:
    """Once per process: glibc's malloc thresholds fixed and torch's threads started."""
    global _PREPARED
    if not _PREPARED:
        fix_malloc_thresholds()
        start_thread_pools()
        _PREPARED = True


def start_thread_pools() -> None:
    """Create torch's intra-op threads now, before any memory cap.

    A thread started under the address-space cap can abort the whole process (glibc: "cannot
    allocate memory for thread-local data") instead of raising an error we could record.
    """
    a = torch.ones(256, 256)
    (a @ a).add_(1).sum()


def main() -> None:
    for spec in json.load(sys.stdin):
        print(json.dumps(run_point(spec)), flush=True)


if __name__ == "__main__":
    main()
