"""A profile sweep: the grid of points, skipping what is done, launching, recording, fitting.

Points are jobs like training runs: they go through the same launchers (serial, local, slurm,
ray), the same progress display and the same outcome rules (`seqbench.harness.sweep`,
`seqbench.harness.launchers`). What is particular to profiles is the order. Points of one
series (the same model and mode at growing lengths) run shortest first, in waves: wave k
holds the k-th shortest point still to measure of every series, so a launcher with several
workers measures different series side by side. Between waves:
- after a point ends oom or failed, or is skipped, the longer points of its series are
  recorded `skipped` instead of being tried;
- a point that would exceed its budget even if its time only grew linearly from the shorter
  point just measured is recorded `skipped`, with the prediction, without running it.
A skipped point is no failure (nothing went wrong: the budget said no); a rerun tries it
again, as any point not recorded ok.
Training points run in a fresh worker process each (`Job.fresh_process`, for the RSS method).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seqbench.errors import UserError
from seqbench.harness.common.profile_frame import LENGTH_FIELD
from seqbench.harness.launchers import Job, Launcher, LocalLauncher, failed_record
from seqbench.harness.lock import check_writable, folder_lock
from seqbench.harness.profile.fits import fit_id, fit_records
from seqbench.harness.profile.points import (
    MODES,
    PointOptions,
    make_spec,
    point_id,
    point_label,
    point_length,
    series_key,
)
from seqbench.harness.progress import Progress
from seqbench.harness.records import (
    iter_records,
    make_record,
    read_record,
    record_path,
    runs_dir,
    write_record,
)
from seqbench.harness.sweep import SweepResult, finish

PREDICTION_MARGIN = 1.25  # skip only when the linear prediction is clearly over budget

DEFAULT_SEQ_LENS = (256, 512, 1024, 2048, 4096, 8192)
DEFAULT_CONTEXTS = (256, 1024, 4096, 16384)
DEFAULT_COUNTED_LENS = (1024, 4096, 16384, 65536, 262144, 1048576)


@dataclass
class SweepPlan:
    archs: list[str]
    seq_lens: list[int] = field(default_factory=lambda: list(DEFAULT_SEQ_LENS))
    contexts: list[int] = field(default_factory=lambda: list(DEFAULT_CONTEXTS))
    counted_lens: list[int] = field(default_factory=lambda: list(DEFAULT_COUNTED_LENS))
    batches: list[int] = field(default_factory=lambda: [1])
    d_models: list[int] = field(default_factory=list)  # empty: the preset's width
    impls: list[str] = field(default_factory=lambda: ["sdpa"])
    sets: dict[str, list[Any]] = field(default_factory=dict)  # override key -> swept values
    modes: list[str] = field(default_factory=lambda: list(MODES))
    options: PointOptions = field(default_factory=PointOptions)
    budget_s: float = 120.0
    max_memory_bytes: int | None = None

    def axes(self) -> list[str]:
        """Swept variables besides the length, for the fits."""
        axes = ["d_model"] if len(self.d_models) > 1 else []
        axes += [k for k, values in self.sets.items() if len(values) > 1]
        if len(self.batches) > 1:
            axes.append("batch")
        return axes


def variants(plan: SweepPlan) -> list[tuple[str, dict[str, Any], bool]]:
    """(arch, overrides, first_impl) for every architecture × impl × width × --set combination.

    Attention's impl applies only to presets with an attention layer; decode runs only for the
    first impl listed (the decode step and its state do not depend on it, prefill barely does).
    """
    from seqbench.architectures import build_config

    if "d_model" in plan.sets and plan.d_models:
        raise UserError("give the width with --d-model or --set d_model=…, not both")
    if "attention.impl" in plan.sets:
        raise UserError("give the attention implementation with --impl, not --set")
    keys = list(plan.sets)
    out = []
    for arch in plan.archs:
        has_attention = (
            "attention" in build_config(arch, vocab_size=plan.options.vocab_size).layer_pattern
        )
        impls = plan.impls if has_attention else [None]
        for i, impl in enumerate(impls):
            for d_model in plan.d_models or [None]:
                for combo in itertools.product(*(plan.sets[k] for k in keys)):
                    overrides: dict[str, Any] = dict(zip(keys, combo, strict=True))
                    if d_model is not None:
                        overrides["d_model"] = d_model
                    if impl is not None:
                        overrides["attention.impl"] = impl
                    out.append((arch, overrides, i == 0))
    return out


def plan_specs(plan: SweepPlan) -> dict[str, list[dict[str, Any]]]:
    """Every point's spec per mode, series together and shortest first (validates all)."""
    lengths = {"train": plan.seq_lens, "decode": plan.contexts, "counted": plan.counted_lens}
    specs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in plan.modes}
    for arch, overrides, first_impl in variants(plan):
        for batch in plan.batches:
            options = replace(plan.options, batch=batch)
            for mode in plan.modes:
                if mode == "decode" and not first_impl:
                    continue
                for length in sorted(set(lengths[mode])):
                    specs[mode].append(make_spec(mode, arch, overrides, length, options))
    for mode in specs:
        order = {key: i for i, key in enumerate(dict.fromkeys(series_key(s) for s in specs[mode]))}
        specs[mode].sort(key=lambda s: (order[series_key(s)], point_length(s)))
    return specs


def point_job(spec: dict[str, Any], plan: SweepPlan) -> Job:
    return Job(
        run_id=point_id(spec),
        spec=spec,
        label=point_label(spec),
        kind="profile",
        budget_s=plan.budget_s,
        max_memory_bytes=plan.max_memory_bytes,
        fresh_process=spec["mode"] == "train",
    )


def predicted_over_budget(shorter: tuple[int, float] | None, job: Job) -> str | None:
    """A reason when linear growth from the shorter point already exceeds the budget."""
    if shorter is None or job.budget_s is None:
        return None
    length, seconds = shorter
    predicted = seconds * point_length(job.spec) / length
    if predicted <= PREDICTION_MARGIN * job.budget_s:
        return None
    field = LENGTH_FIELD[job.spec["mode"]]
    return (
        f"predicted over the per-point time budget of {job.budget_s:g} s: {seconds:.1f} s at "
        f"{field}={length}, so at least {predicted:.0f} s at {point_length(job.spec)} "
        f"(linear growth); not run (--budget-s raises the budget)"
    )


def run_sweep(
    plan: SweepPlan,
    out_dir: str | Path,
    *,
    launcher: Launcher | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], SweepResult]:
    """Measure every point not already recorded ok, through `launcher` (default: one local
    worker); returns this sweep's point records (recorded before or now) and its counts."""
    launcher = launcher or LocalLauncher(workers=1)
    specs = plan_specs(plan)
    with folder_lock(out_dir):
        records = {r["run_id"]: r for r in iter_records(out_dir, kind="profile")}
        series: dict[str, deque[Job]] = {}
        for mode in plan.modes:
            for spec in specs[mode]:
                series.setdefault(f"{mode}/{series_key(spec)}", deque()).append(
                    point_job(spec, plan)
                )
        wanted = [job.run_id for queue in series.values() for job in queue]
        done = {
            run_id
            for run_id in wanted
            if not force and records.get(run_id, {}).get("status") == "ok"
        }
        result = SweepResult(run_ids=wanted, skipped=len(done))
        if len(done) < len(wanted):  # a rerun with nothing to do needs no write access
            check_writable(runs_dir(out_dir))
        progress = progress or Progress(len(wanted) - len(done), len(done))
        shorter: dict[str, tuple[int, float]] = {}  # series -> (length, seconds) last ok
        ended: dict[str, str] = {}  # series -> status of the point that was not ok
        try:
            while any(series.values()):
                wave = []
                for key, queue in series.items():
                    while queue and queue[0].run_id in done:
                        shorter[key] = _length_and_time(records[queue.popleft().run_id])
                    if not queue:
                        continue
                    job = queue.popleft()
                    if key in ended:
                        reason = f"a shorter point of this series {ended[key]}; not run"
                    else:
                        reason = predicted_over_budget(shorter.get(key), job)
                    if reason is None:
                        wave.append((key, job))
                        continue
                    progress.started(job)
                    record = failed_record(job, reason, "skipped")
                    finish(out_dir, job, record, progress, result)
                    records[job.run_id] = record
                    ended.setdefault(key, "was skipped")
                keys = {job.run_id: key for key, job in wave}
                for job, record in launcher.run([job for _, job in wave], progress.started):
                    finish(out_dir, job, record, progress, result, launcher)
                    records[job.run_id] = record
                    if record["status"] == "ok":
                        shorter[keys[job.run_id]] = _length_and_time(record)
                    else:
                        ended[keys[job.run_id]] = f"ended {record['status']}"
        finally:
            progress.close()
    return [records[run_id] for run_id in wanted if run_id in records], result


def _length_and_time(record: dict[str, Any]) -> tuple[int, float]:
    return point_length(record["spec"]), float(record["timings"].get("point_s") or 0.0)


def write_fits(
    point_records: list[dict[str, Any]], out_dir: str | Path, axes: list[str]
) -> list[dict[str, Any]]:
    """Fit every series touched by this sweep over all its ok points in the store."""
    touched = {r["run_id"] for r in point_records}
    every = [r for r in iter_records(out_dir, kind="profile") if r["spec"].get("mode") != "fit"]
    fits = []
    for spec, metrics in fit_records(every, axes):
        if not touched.intersection(metrics["point_ids"]):
            continue
        record = make_record(
            kind="profile", run_id=fit_id(spec), spec=spec, status="ok", metrics=metrics
        )
        old = read_record(record_path(out_dir, record["run_id"]))
        if old is None or old["metrics"] != metrics:  # a rerun with nothing new writes nothing
            write_record(out_dir, record)
        fits.append(record)
    return fits
