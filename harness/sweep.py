"""A sweep: prepare every spec up front, skip what is recorded, gate plugins, launch, record.

Order of events, and why:
1. every spec is prepared (validated and resolved) before anything trains, so one bad spec
   fails the sweep in its first second with one line;
2. specs resolving to the same run_id run once; those already recorded `ok` are skipped
   (`force` reruns them);
3. each out-of-tree architecture passes the conformance gate once; runs using one that fails
   are recorded as failed without training;
4. the launcher runs the rest; each record is written atomically as it arrives;
5. runs with a calibrated budget go last: their steps come from their setting's reference
   runs, recorded in step 4 (`seqbench.harness.calibration`).
In steps 4 and 5, `lr_search` "first-solved" launches a configuration's learning rates one
after another and stops at the first that solves it on every seed (`seqbench.harness.lr_search`).
The folder's writer lock (`seqbench.harness.lock`, shared with profile and report) keeps two
writers out of one folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seqbench.harness.calibration import calibrate, check_references, setting_key
from seqbench.harness.launchers import Job, Launcher, SerialLauncher, failed_record
from seqbench.harness.lock import check_writable, folder_lock
from seqbench.harness.lr_search import LrSearch, solved_configs
from seqbench.harness.prepare import Prepared, prepare
from seqbench.harness.progress import Progress
from seqbench.harness.records import (
    is_done,
    read_record,
    record_path,
    runs_dir,
    write_record,
)
from seqbench.harness.spec import RunSpec
from seqbench.registry import import_dotted, is_dotted_path


@dataclass
class SweepResult:
    run_ids: list[str] = field(default_factory=list)  # every run of the sweep, in order
    ran: int = 0
    skipped: int = 0
    left_out: int = 0  # runs at learning rates the lr search did not need
    statuses: dict[str, int] = field(default_factory=dict)


def plan(specs: Sequence[RunSpec], device: str | None = None) -> list[Prepared]:
    """Prepare every spec (raising one UserError line for the first bad one), deduplicated;
    `device`: where the runs execute when not here (`Launcher.device`)."""
    seen: dict[str, Prepared] = {}
    for spec in specs:
        prepared = prepare(spec, device)
        seen.setdefault(prepared.run_id, prepared)
    return list(seen.values())


def run_sweep(
    specs: Sequence[RunSpec],
    out_dir: str | os.PathLike,
    *,
    launcher: Launcher | None = None,
    force: bool = False,
    progress: Progress | None = None,
    lr_search: str = "all",
) -> SweepResult:
    """Run `specs` into `out_dir`: first every run whose budget is known, then the calibrated
    runs, whose budgets come from their references' records (harness/calibration.py)."""
    launcher = launcher or SerialLauncher()
    search = LrSearch(lr_search)  # a bad mode fails before anything runs
    prepared = plan(specs, launcher.device)  # calibrated runs at their caps: checked, not run
    check_references([p.spec for p in prepared])
    first = [p for p in prepared if p.spec.budget != "calibrated"]
    # as given (warm-up and the like resolve from the calibrated steps), keyed by the resolved
    followers = {setting_key(p.spec): [] for p in prepared}
    for spec in specs:
        if spec.budget == "calibrated":
            followers[setting_key(prepare(spec, launcher.device).spec)].append(spec)
    result = SweepResult()
    with folder_lock(out_dir):
        todo = [p for p in first if force or not is_done(out_dir, p.run_id)]
        if todo or len(first) < len(prepared):  # a rerun with nothing to do needs no write access
            check_writable(runs_dir(out_dir))
        progress = progress or Progress(len(prepared))
        search.read(out_dir)
        try:
            tried = launch_by_lr(first, out_dir, launcher, progress, result, force, search)
            budgets = calibrate(followers, reference_records(tried, out_dir))
            calibrated = plan(budgets, launcher.device)
            progress.skip(len(prepared) - len(first) - len(calibrated))  # one budget, one run
            tried += launch_by_lr(calibrated, out_dir, launcher, progress, result, force, search)
        finally:
            progress.close()
    result.run_ids = list(dict.fromkeys(p.run_id for p in tried))
    result.skipped = len(result.run_ids) - result.ran
    result.left_out = len(first) + len(calibrated) - len(result.run_ids)
    return result


def launch_by_lr(
    prepared: list[Prepared],
    out_dir: str | os.PathLike,
    launcher: Launcher,
    progress: Progress,
    result: SweepResult,
    force: bool,
    search: LrSearch,
) -> list[Prepared]:
    """Launch `prepared` (what is recorded ok is skipped unless `force`), stage by stage of the
    lr search, leaving out what an earlier stage made unnecessary; returns the runs tried."""
    tried: list[Prepared] = []
    solved: set[str] = set()
    for stage in search.stages(prepared):
        batch = [p for p in stage if search.wanted(p, solved)]
        todo = [p for p in batch if force or not is_done(out_dir, p.run_id)]
        progress.skip(len(stage) - len(todo))
        launch(todo, out_dir, launcher, progress, result)
        tried += batch
        if search.mode != "all":
            # a stage holds every seed of its configurations' lr: its records alone decide
            solved |= solved_configs(batch, lambda rid: read_record(record_path(out_dir, rid)))
    return tried


def launch(
    todo: list[Prepared],
    out_dir: str | os.PathLike,
    launcher: Launcher,
    progress: Progress,
    result: SweepResult,
) -> None:
    """Gate, launch and record `todo`, longest first; runs refused by the gate are recorded
    failed."""
    jobs = [Job(p.run_id, p.spec.to_dict(), p.spec.label()) for p in longest_first(todo)]
    refused = gate_failures(todo)
    for job in jobs:
        if job.run_id in refused:
            progress.started(job)
            finish(out_dir, job, failed_record(job, refused[job.run_id]), progress, result)
    runnable = [j for j in jobs if j.run_id not in refused]
    if runnable:
        for job, record in launcher.run(runnable, progress.started):
            finish(out_dir, job, record, progress, result, launcher)


def longest_first(todo: list[Prepared]) -> list[Prepared]:
    """`todo` by training tokens (steps x batch x length; a reference counts at its cap), the
    most first, ties in the given order: a pool of workers then starts its longest runs early
    and the sweep does not end on one of them running alone while the other workers idle."""
    return sorted(todo, key=lambda p: -p.spec.steps * p.spec.batch_size * p.spec.seq_len)


def reference_records(
    prepared: Sequence[Prepared], out_dir: str | os.PathLike
) -> dict[str, list[dict[str, Any]]]:
    """The recorded reference runs of the sweep, by setting."""
    found: dict[str, list[dict[str, Any]]] = {}
    for p in prepared:
        if p.spec.budget == "reference":
            record = read_record(record_path(out_dir, p.run_id))
            if record is not None:
                found.setdefault(setting_key(p.spec), []).append(record)
    return found


def finish(
    out_dir: str | os.PathLike,
    job: Job,
    record: dict[str, Any],
    progress: Progress,
    result: SweepResult,
    launcher: Launcher | None = None,
) -> None:
    """Write a finished job's record (naming the launcher that ran it) and count it."""
    if record["run_id"] != job.run_id:  # the worker resolved another definition than the plan
        reason = (
            f"identity mismatch: the worker resolved this run to {record['run_id']}, the sweep "
            f"to {job.run_id} (different seqbench code where the run executed?)"
        )
        record = {**record, "run_id": job.run_id, "status": "failed", "reason": reason}
    if launcher is not None:
        record.setdefault("environment", {})["launcher"] = launcher.name
    write_record(out_dir, record)
    result.ran += 1
    result.statuses[record["status"]] = result.statuses.get(record["status"], 0) + 1
    progress.finished(job, record)


# -- the conformance gate for out-of-tree architectures --------------------------------------------
_GATE_CACHE: dict[str, str | None] = {}


def gate_failures(prepared: Sequence[Prepared]) -> dict[str, str]:
    """run_id -> reason, for runs whose out-of-tree architecture fails the conformance gate."""
    refused = {}
    for p in prepared:
        for target in p.gate_targets:
            reason = gate(target)
            if reason is not None:
                refused[p.run_id] = reason
                break
    return refused


def gate(target: str) -> str | None:
    """None when `target` passes the conformance gate, else a one-line reason (cached)."""
    if target not in _GATE_CACHE:
        from seqbench.architectures import Preset
        from seqbench.architectures.conformance import check_architecture, check_preset

        try:
            obj = import_dotted(target) if is_dotted_path(target) else None
            report = check_preset(obj) if isinstance(obj, Preset) else check_architecture(target)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _GATE_CACHE[target] = f"conformance gate could not check {target}: {first}"
        else:
            failures = report.refusal()
            _GATE_CACHE[target] = (
                None if report.passed else f"conformance gate refused {target}: {failures}"
            )
    return _GATE_CACHE[target]
