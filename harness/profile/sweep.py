"""A profile sweep: the grid of points, skipping what is done, running, recording, fitting.

Order: training points first (one fresh worker each, for the RSS method), then decode points
and counted points (one worker per mode, restarted only after a failure). Within a series,
lengths run shortest first so that after an out-of-memory or over-budget point the longer
ones are recorded as skipped instead of being tried.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from seqbench.errors import UserError
from seqbench.harness.profile.fits import fit_id, fit_records
from seqbench.harness.profile.points import MODES, PointOptions, make_spec, point_length, series_key
from seqbench.harness.profile.runner import Job, run_jobs
from seqbench.harness.records import (
    is_done,
    iter_records,
    make_record,
    read_record,
    record_path,
    write_record,
)

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


ProgressFn = Callable[[str, dict[str, Any], dict[str, Any] | None], None]


def run_sweep(
    plan: SweepPlan, out_dir: str | Path, *, force: bool = False, progress: ProgressFn
) -> list[dict[str, Any]]:
    """Run every point not already recorded ok; returns this sweep's point records.

    `progress(event, spec, record)` is called with "skip" (already ok), "start" and "done".
    """
    specs = plan_specs(plan)
    records: dict[str, dict[str, Any]] = {
        r["run_id"]: r for r in iter_records(out_dir, kind="profile")
    }
    wanted = []
    for mode in plan.modes:
        jobs = []
        for spec in specs[mode]:
            job = Job(spec, plan.budget_s, plan.max_memory_bytes)
            wanted.append(job.run_id)
            if not force and is_done(out_dir, job.run_id):
                progress("skip", spec, records.get(job.run_id))
            else:
                jobs.append(job)
        remaining = {job.run_id: job for job in jobs}
        if jobs:
            progress("start", jobs[0].spec, None)
        for job, result in run_jobs(jobs, fresh_each=mode == "train"):
            remaining.pop(job.run_id, None)
            record = make_record(
                kind="profile",
                run_id=job.run_id,
                spec=job.spec,
                status=result["status"],
                reason=result["reason"],
                metrics=result["metrics"],
                timings=result["timings"],
                device=job.spec["device"],
            )
            write_record(out_dir, record)
            records[job.run_id] = record
            progress("done", job.spec, record)
            if remaining:
                progress("start", next(iter(remaining.values())).spec, None)
    return [records[run_id] for run_id in wanted if run_id in records]


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
