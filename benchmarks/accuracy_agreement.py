"""Do two runs of one suite agree on accuracy? Each cell's mean against the other's seed interval.

Why: a faster kernel computes the same math with other float32 rounding, so training takes
another path from the first step on; what must not change is what the runs learn. For every
cell (arch, task, knobs, training length, lr, overrides, tested length) present in both folders this
prints the mean test accuracy over seeds in each, the reference folder's 95% interval (the
report's: logit scale over the seeds, widened to the pooled Wilson interval), and whether the
candidate's mean falls inside it. Exit status 1 when any cell falls outside.

    SEQBENCH_NATIVE=0 seqbench run --suite quick --launcher local --workers 2 --out /tmp/q-torch
    seqbench run --suite quick --launcher local --workers 2 --out /tmp/q-native
    python benchmarks/accuracy_agreement.py /tmp/q-torch /tmp/q-native
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from seqbench.harness.records import iter_records
from seqbench.harness.report.intervals import accuracy_ci

Cell = tuple[str, str, int, float, str, str]  # (arch, task + knobs, L, lr, overrides, tested)
Seeds = list[tuple[float, int | None, int | None]]  # (accuracy, scored, sequences) per seed


def cells(folder: Path) -> dict[Cell, Seeds]:
    """Test accuracy per seed of every ok run, by cell."""
    out: dict[Cell, Seeds] = defaultdict(list)
    for record in iter_records(folder):
        if record.get("kind", "run") != "run" or record.get("status") != "ok":
            continue
        spec = record["spec"]
        overrides = json.dumps(spec.get("overrides") or {}, sort_keys=True)
        task = f"{spec['task']} {json.dumps(spec.get('knobs') or {}, sort_keys=True)}"
        for length, result in (record["metrics"].get("test") or {}).items():
            key = (spec["arch"], task, spec["seq_len"], spec["lr"], overrides, length)
            out[key].append((result["accuracy"], result.get("scored"), result.get("sequences")))
    return out


def compare(reference: dict[Cell, Seeds], candidate: dict[Cell, Seeds]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(reference.keys() & candidate.keys(), key=str):
        ref = accuracy_ci(*zip(*reference[key], strict=True))
        mean = sum(a for a, _, _ in candidate[key]) / len(candidate[key])
        inside = ref.low is None or ref.low <= mean <= ref.high
        rows.append({"cell": key, "reference": ref, "candidate": mean, "inside": inside})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("candidate", type=Path)
    args = parser.parse_args()
    rows = compare(cells(args.reference), cells(args.candidate))
    if not rows:
        sys.exit("error: the two folders share no cell with an ok run")
    header = f"{'arch':8s} {'task':15s} {'L':>4s} {'lr':>6s} {'tested':>6s}"
    print(f"{header}  reference [95% CI]     candidate  knobs")
    for row in rows:
        arch, task, length, lr, overrides, tested = row["cell"]
        ref = row["reference"]
        interval = f"[{ref.low:.3f}, {ref.high:.3f}]" if ref.low is not None else "(one seed)"
        flag = "" if row["inside"] else "  OUTSIDE"
        name = arch if overrides == "{}" else f"{arch}{overrides}"
        task_name, knobs = task.split(" ", 1)
        where = f"{name:8s} {task_name:15s} {length:4d} {lr:6.0e} {tested:>6s}"
        print(f"{where}  {ref.mean:.3f} {interval:16s} {row['candidate']:.3f}{flag}  {knobs}")
    outside = sum(not row["inside"] for row in rows)
    print(f"{len(rows) - outside} of {len(rows)} cells inside the reference's interval")
    sys.exit(1 if outside else 0)


if __name__ == "__main__":
    main()
