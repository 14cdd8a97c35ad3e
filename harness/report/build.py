"""`seqbench report DIR`: records -> report.md, report.html, figures/*.png, runs.csv.

The report is a pure function of DIR/runs/*.json: rebuilding it after more runs land (or
after a crash) replaces every artefact, and figures a previous build drew but this one does
not are removed, so figures/ never shows a stale plot.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from seqbench.harness.atomic import atomic_write_text
from seqbench.harness.report import html, markdown, plotting
from seqbench.harness.report.data import ReportData, load
from seqbench.harness.report.document import Document, Paragraph
from seqbench.harness.report.findings_section import findings_section, summary_section
from seqbench.harness.report.leaderboard import leaderboard_section
from seqbench.harness.report.learning import learning_section
from seqbench.harness.report.sections import (
    claims_section,
    efficiency_section,
    failures_section,
    quality_section,
)
from seqbench.harness.report.setup import setup_section


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    runs_csv: Path
    profile_csv: Path | None
    figures: list[Path]


def build_report(folder: str | os.PathLike) -> ReportFiles:
    """Load DIR's records (one-line UserError when there are none) and write the report."""
    return write_report(load(folder))


def write_report(data: ReportData) -> ReportFiles:
    out = data.folder
    fig_dir = out / "figures"
    for stale in fig_dir.glob("*.png") if fig_dir.is_dir() else []:
        stale.unlink()
    plotting.style()
    try:
        doc = build_document(data, fig_dir)
    finally:
        plotting.close_all()
    files = ReportFiles(
        markdown=atomic_write_text(out / "report.md", markdown.render(doc, out)),
        html=atomic_write_text(out / "report.html", html.render(doc)),
        runs_csv=atomic_write_text(out / "runs.csv", csv_text(runs_table(data))),
        profile_csv=None,
        figures=[f.path for f in doc.figures()],
    )
    if not data.profile.empty:
        files.profile_csv = atomic_write_text(out / "profile.csv", csv_text(data.profile))
    return files


def build_document(data: ReportData, fig_dir: Path) -> Document:
    intro = Paragraph(
        f"Comparison report of {data.folder}, built by seqbench report from the records alone "
        "(rebuild it at any time). Quality numbers are on held-out test data; memory and time "
        "name their measuring method; counted numbers (meta device) are marked as such."
    )
    # Results first (summary figure and findings' verdicts), setup and machine at the end.
    sections = [
        summary_section(data, fig_dir),
        findings_section(data),
        leaderboard_section(data),
        learning_section(data, fig_dir),
        quality_section(data, fig_dir),
        efficiency_section(data, fig_dir),
        claims_section(data),
        failures_section(data),
        setup_section(data),
    ]
    return Document(f"seqbench report: {data.folder.resolve().name}", [intro], sections)


def runs_table(data: ReportData) -> pd.DataFrame:
    """Every run record, one row each, with `lr_picked` marking the rows the report uses."""
    if data.runs.empty:
        return data.runs
    picked = set(data.best["run_id"])
    return data.runs.assign(lr_picked=data.runs["run_id"].isin(picked))


def csv_text(frame: pd.DataFrame) -> str:
    """CSV with nested values (dicts, lists, tuples) as JSON so every cell is one field."""
    plain = frame.copy()
    for column in plain.columns:
        if plain[column].map(lambda v: isinstance(v, (dict, list, tuple))).any():
            plain[column] = plain[column].map(_json_cell)
    return plain.to_csv(index=False)


def _json_cell(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return value
