"""`seqbench compare A B`: metric deltas between two result folders, run by run.

Records are matched by their spec: the canonical spec JSON without the seed (seeds are the
replicates whose spread a difference is measured against) and without fields that only say
where output went (`IGNORED_FIELDS`; more with --ignore, e.g. `device` to compare a CPU folder
with a GPU one). For every matched configuration and metric: mean in A, mean in B, the delta,
and the seeds' spread — the larger of the two folders' ranges (max − min over seeds). A delta
larger than that spread is flagged. With one seed on both sides there is no spread and
nothing is flagged, except for metrics that are exact by construction (counted FLOPs, state
and saved-activation bytes, parameter counts), whose spread is zero.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seqbench.errors import UserError
from seqbench.harness.common.profile_frame import point_row
from seqbench.harness.records import canonical_json
from seqbench.harness.report.data import is_point, load_folder, spec_label
from seqbench.harness.store import flatten
from seqbench.registry import did_you_mean

IGNORED_FIELDS = ("out", "out_dir", "output", "output_dir")
RUN_PRIMARY = ("test_accuracy", "test_exact_match", "val_accuracy", "test_accuracy@")
RUN_OTHER = (
    "test_loss",
    "val_loss",
    "train_loss",
    "steps_run",
    "params_total",
    "params_active",
    "tokens_per_s",
    "train_s",
    "wall_s",
    "moe_load_max",
    "test_exact_match@",
)
PROFILE_PRIMARY = (
    "step_s",
    "tokens_per_s",
    "flops_per_token",
    "state_bytes",
    "saved_activations",
    "cpu_rss_delta",
    "cuda_peak_allocated",
    "decode_s_per_token",
    "prefill_s",
)
PROFILE_OTHER = ("params_total", "params_active")
EXACT = (
    "flops_per_token",
    "state_bytes",
    "saved_activations",
    "params_total",
    "params_active",
)


@dataclass
class Delta:
    kind: str
    what: str
    metric: str
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    spread: float | None

    @property
    def delta(self) -> float:
        return self.mean_b - self.mean_a

    @property
    def relative(self) -> float | None:
        return self.delta / abs(self.mean_a) if self.mean_a else None

    @property
    def flagged(self) -> bool:
        return self.spread is not None and abs(self.delta) > self.spread

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "delta": self.delta,
            "relative": self.relative,
            "flagged": self.flagged,
        }


@dataclass
class Comparison:
    deltas: list[Delta]
    only_a: list[str]
    only_b: list[str]
    status_changes: list[str]  # configurations whose ok-seed count differs
    matched: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # files not read, with why
    # torch threads the matched records ran with, per side (`environment.torch_threads`)
    threads: dict[str, list[int]] = field(default_factory=lambda: {"a": [], "b": []})

    def threads_note(self) -> str | None:
        """One line when the two sides ran with different torch threads: what it can explain."""
        if not self.threads["a"] or not self.threads["b"] or self.threads["a"] == self.threads["b"]:
            return None
        a, b = (", ".join(map(str, self.threads[side])) for side in ("a", "b"))
        return (
            f"note: A ran with {a} torch thread(s), B with {b}: float results can differ in "
            "their last bits where torch splits an op between threads (docs/harness.md, Threads)"
        )


def config_key(record: dict[str, Any], ignore: Iterable[str]) -> str:
    skip = {"seed", *IGNORED_FIELDS, *ignore}
    spec = {k: v for k, v in record["spec"].items() if k not in skip}
    return f"{record['kind']}\n{canonical_json(spec)}"


def metric_values(record: dict[str, Any], every_metric: bool) -> dict[str, float]:
    """The numeric metrics of one record that compare looks at."""
    if record["kind"] == "run":
        row, names = flatten(record), RUN_PRIMARY + (RUN_OTHER if every_metric else ())
        # test_*@<training length> repeats test_*: keep only the longer lengths.
        row = {k: v for k, v in row.items() if not k.endswith(f"@{record['spec'].get('seq_len')}")}
    else:
        row, names = point_row(record), PROFILE_PRIMARY + (PROFILE_OTHER if every_metric else ())
    out = {}
    for column, value in row.items():
        chosen = any(column == n or (n.endswith("@") and column.startswith(n)) for n in names)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if chosen and numeric and math.isfinite(value):
            out[column] = float(value)
    return out


def compare(
    folder_a: str | os.PathLike,
    folder_b: str | os.PathLike,
    *,
    ignore: Iterable[str] = (),
    every_metric: bool = False,
) -> Comparison:
    ignore = tuple(ignore)
    scans = {"a": load_folder(folder_a), "b": load_folder(folder_b)}
    check_ignored(ignore, scans["a"].records + scans["b"].records)
    groups: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"a": [], "b": []})
    for side, scan in scans.items():
        for record in scan.records:
            if record["kind"] == "profile" and not is_point(record):
                continue  # the profiler's fit records are derived from points, not measured
            groups[config_key(record, ignore)][side].append(record)
    deltas, only_a, only_b, changes, matched = [], [], [], [], 0
    threads: dict[str, set[int]] = {"a": set(), "b": set()}
    for sides in groups.values():
        first = (sides["a"] or sides["b"])[0]
        what = spec_label({k: v for k, v in first["spec"].items() if k != "seed"}, first["kind"])
        ok_a = [r for r in sides["a"] if r["status"] == "ok"]
        ok_b = [r for r in sides["b"] if r["status"] == "ok"]
        if not sides["a"] or not sides["b"]:
            (only_a if sides["a"] else only_b).append(what)
            continue
        matched += 1
        for side, ok in (("a", ok_a), ("b", ok_b)):
            threads[side].update(_threads_of(ok))
        if len(ok_a) != len(sides["a"]) or len(ok_b) != len(sides["b"]):
            changes.append(
                f"{what}: ok {len(ok_a)}/{len(sides['a'])} in A, {len(ok_b)}/{len(sides['b'])} in B"
            )
        deltas += config_deltas(first["kind"], what, ok_a, ok_b, every_metric)
    deltas.sort(key=lambda d: (not d.flagged, d.kind, d.what, d.metric))
    skipped = scans["a"].skipped + scans["b"].skipped
    used = {side: sorted(values) for side, values in threads.items()}
    return Comparison(
        deltas, sorted(only_a), sorted(only_b), sorted(changes), matched, skipped, used
    )


def _threads_of(records: list[dict[str, Any]]) -> set[int]:
    """The torch threads recorded by `records` (records of other writers may lack them)."""
    values = ((r.get("environment") or {}).get("torch_threads") for r in records)
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}


def check_ignored(ignore: tuple[str, ...], records: list[dict[str, Any]]) -> None:
    """A field to ignore must be a spec field of some record: a typo (`--ignore devise`) would
    otherwise silently ignore nothing."""
    known = sorted({key for r in records for key in r["spec"]} | set(IGNORED_FIELDS))
    for name in ignore:
        if name not in known:
            hint = did_you_mean(name, known)
            raise UserError(
                f"--ignore {name!r} is no spec field of these records{hint} "
                f"(fields: {', '.join(known)})"
            )


def config_deltas(
    kind: str, what: str, ok_a: list[dict], ok_b: list[dict], every_metric: bool
) -> list[Delta]:
    values_a = [metric_values(r, every_metric) for r in ok_a]
    values_b = [metric_values(r, every_metric) for r in ok_b]
    shared = set().union(*values_a) & set().union(*values_b) if values_a and values_b else set()
    out = []
    for metric in sorted(shared):
        a = [v[metric] for v in values_a if metric in v]
        b = [v[metric] for v in values_b if metric in v]
        spread = seed_spread(a, b, exact=kind == "profile" and metric in EXACT)
        out.append(
            Delta(kind, what, metric, sum(a) / len(a), sum(b) / len(b), len(a), len(b), spread)
        )
    return out


def seed_spread(a: list[float], b: list[float], *, exact: bool) -> float | None:
    """The larger range over seeds of the two sides; None when neither has two seeds."""
    ranges = [max(v) - min(v) for v in (a, b) if len(v) > 1]
    if ranges:
        return max(ranges)
    return 0.0 if exact else None
