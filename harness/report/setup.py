"""The setup section: where and with what the records were made, and what was run.

Everything comes from the records themselves (their `environment`, `spec` and `status`), so a
reader can tell a mixed folder — two machines, two torch versions — at a glance.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from seqbench.harness.calibration import setting_key
from seqbench.harness.records import STATUSES
from seqbench.harness.report import fmt
from seqbench.harness.report.data import ReportData, is_point
from seqbench.harness.report.document import Paragraph, Section, Table

ENVIRONMENT_FIELDS = (
    ("device", "device"),
    ("gpu", "GPU"),
    ("cpu", "CPU"),
    ("cpu_count", "CPU cores"),
    ("torch_threads", "torch threads"),
    ("mkl_cbwr", "MKL_CBWR (thread-independent products)"),
    ("platform", "platform"),
    ("python", "Python"),
    ("torch", "torch"),
    ("cuda", "CUDA (torch build)"),
    ("numpy", "numpy"),
    ("mamba_ssm", "mamba-ssm"),
    ("seqbench", "seqbench"),
)


def setup_section(data: ReportData) -> Section:
    created = sorted(r.get("created") or "" for r in data.records if r.get("created"))
    span = f", written {created[0]} … {created[-1]}" if created else ""
    kinds = Counter(record_kind(r) for r in data.records)
    fits = kinds.get(FIT, 0)
    intro = Paragraph(
        f"Built from {len(data.records)} records in {data.folder / 'runs'}: "
        f"{kinds.get('run', 0)} training runs and {kinds.get('profile', 0)} profile points"
        + (f" (plus {fits} scaling fits the profiler derived from them)" if fits else "")
        + f"{span}."
    )
    blocks = [intro, status_table(data.records), environment_table(data.records)]
    if not data.runs.empty:
        blocks += [suite_table(data.runs), budget_paragraph(data.runs)]
        calibration = calibration_table(data.records)
        if calibration is not None:
            blocks.append(calibration)
    if not data.profile.empty:
        blocks.append(profile_paragraph(data.profile))
    return Section("Setup", blocks)


FIT = "profile fit"


def record_kind(record: dict[str, Any]) -> str:
    """ "run", "profile" (a point) or "profile fit" (derived by the profiler from points)."""
    return record["kind"] if record["kind"] == "run" or is_point(record) else FIT


def status_table(records: list[dict[str, Any]]) -> Table:
    counts = Counter((record_kind(r), r["status"]) for r in records)
    rows = []
    for kind in sorted({record_kind(r) for r in records}):
        per = [counts.get((kind, s), 0) for s in STATUSES]
        rows.append([kind, *map(str, per), str(sum(per))])
    return Table(
        ["records", *STATUSES, "total"],
        rows,
        "Records by kind and status",
        [False] + [True] * (len(STATUSES) + 1),
    )


def environment_table(records: list[dict[str, Any]]) -> Table:
    envs = [r.get("environment") or {} for r in records]
    rows = [[label, fmt.counted(e.get(key) for e in envs)] for key, label in ENVIRONMENT_FIELDS]
    rows.append(["git commit", fmt.counted(r.get("git_commit") for r in records)])
    rows = [row for row in rows if row[1] != "–"]
    return Table(["", "value (number of records, where they differ)"], rows, "Machine and versions")


def suite_table(runs: pd.DataFrame) -> Table:
    """The grid that was run, per task, reconstructed from the run specs."""
    rows = []
    for task, group in runs.groupby("task", sort=True):
        knob_cols = [c for c in group.columns if c.startswith("knob.")]
        knob_values = {c[5:]: fmt.values(group[c]) for c in knob_cols if group[c].notna().any()}
        tested = {L for lengths in group["eval_lengths"] for L in (lengths or ())}
        rows.append(
            [
                str(task),
                fmt.values(group["arch"]),
                fmt.values(group["seq_len"]),
                fmt.values(tested),
                fmt.knobs(knob_values),
                fmt.values(group["d_model"]),
                fmt.values(group["n_layers"]),
                fmt.values(group["lr"]),
                fmt.values(group["seed"]),
                f"{fmt.values(group['steps'])} × {fmt.values(group['batch_size'])}",
                str(len(group)),
            ]
        )
    headers = [
        "task",
        "architectures",
        "train length",
        "longer test lengths",
        "knobs",
        "width",
        "layers",
        "lr",
        "seeds",
        "steps × batch",
        "runs",
    ]
    return Table(headers, rows, "Suite: the grid found in the run records")


def budget_paragraph(runs: pd.DataFrame) -> Paragraph:
    ok = runs[runs["status"] == "ok"]
    tokens = (runs["steps"] * runs["batch_size"] * runs["seq_len"]).astype(float)
    early = int(ok["stopped_early"].fillna(False).astype(bool).sum()) if len(ok) else 0
    return Paragraph(
        f"Training budget per run: {fmt.values(runs['steps'])} optimiser steps "
        f"(at most {fmt.num(tokens.max())} training tokens); {early} of {len(ok)} ok runs "
        f"stopped early at 100% validation accuracy (median {fmt.num(ok['steps_run'].median())} "
        f"steps run). Training time {fmt.seconds(runs['train_s'].sum())}, wall time "
        f"{fmt.seconds(runs['wall_s'].sum())} summed over runs; devices "
        f"{fmt.values(runs['device'])}, dtypes {fmt.values(runs['dtype'])}."
    )


def calibration_table(records: list[dict[str, Any]]) -> Table | None:
    """Per setting with calibrated budgets: the reference, the steps it needed (S, the most
    over seeds of each seed's fewest over lrs) and what the other models got
    (harness/calibration.py). None when no run was calibrated."""
    rows: dict[str, dict[str, set]] = {}
    for record in records:
        spec = record.get("spec") or {}
        if record.get("kind") != "run" or spec.get("budget") not in ("reference", "calibrated"):
            continue
        row = rows.setdefault(setting_key(spec), {k: set() for k in CALIBRATION_COLUMNS})
        row["setting"].add(setting_label(spec))
        if spec["budget"] == "reference":
            row["reference"].add(spec.get("arch"))
        else:
            ref = spec.get("reference_steps")
            row["S"].add("unsolved: cap" if ref is None else str(ref))
            row["multiple"].add(f"{spec.get('budget_multiple', 3.0):g}x")
            row["budget"].add(str(spec.get("steps")))
    if not any(row["budget"] for row in rows.values()):
        return None
    body = [[", ".join(sorted(map(str, row[k]))) or "–" for k in CALIBRATION_COLUMNS]
            for row in rows.values()]  # fmt: skip
    headers = ["setting", "reference", "reference's steps (S)", "multiple", "others' steps"]
    return Table(headers, sorted(body), "Calibrated budgets: the reference trained until solved")


CALIBRATION_COLUMNS = ("setting", "reference", "S", "multiple", "budget")


def setting_label(spec: dict[str, Any]) -> str:
    knobs = ", ".join(f"{k}={v}" for k, v in sorted((spec.get("knobs") or {}).items()))
    lengths = f"L{spec.get('seq_len')}"
    if spec.get("min_seq_len"):
        lengths = f"L{spec['min_seq_len']}-{spec.get('seq_len')}"
    return f"{spec.get('task')} {lengths} {knobs}".strip()


def profile_paragraph(profile: pd.DataFrame) -> Paragraph:
    modes = Counter(profile["mode"])
    return Paragraph(
        "Profile points: "
        + ", ".join(f"{n} {mode}" for mode, n in sorted(modes.items()))
        + f" over {fmt.values(profile['series'])}; lengths {fmt.values(profile['length'])}; "
        f"batch {fmt.values(profile['batch'])}; width {fmt.values(profile['d_model'])}; "
        f"devices {fmt.values(profile['device'])}. "
        "Counted points ran on the meta device: FLOPs and bytes counted, nothing timed."
    )
