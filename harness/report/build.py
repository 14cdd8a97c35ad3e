"""`seqbench report DIR`: records -> report.md, report.html, figures/*.png, runs.csv.

The report is a pure function of DIR/runs/*.json: rebuilding it after more runs land (or
after a crash) replaces every artefact, and figures a previous build drew but this one does
not are removed, so figures/ never shows a stale plot.

Why a staging folder: the report is a set of files (markdown, html, csv, figures) that refer
to each other. The whole set is built in a temporary folder beside it (`.report~HOST~PID~…
.tmp`); only when every file is complete are they renamed into place. A full disk or a
killed build therefore leaves the old report whole, never a new report.md beside an old
report.html. The output folder is held under the writers' lock (`seqbench.harness.lock`)
while the set is built and swapped.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from seqbench.harness.atomic import atomic_write_text, naming
from seqbench.harness.lock import TEMP_SUFFIX, folder_lock, temp_prefix
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


REPORT_FILES = ("report.md", "report.html", "runs.csv", "profile.csv")
FIGURES = "figures"


def build_report(folder: str | os.PathLike, out: str | os.PathLike | None = None) -> ReportFiles:
    """Load DIR's records (one-line UserError when there are none) and write the report into
    `out` (default: DIR itself)."""
    return write_report(load(folder), out)


def write_report(data: ReportData, out: str | os.PathLike | None = None) -> ReportFiles:
    """Build the report's files in a staging folder inside `out`, then swap them in."""
    target = Path(out) if out is not None else data.folder
    with folder_lock(target):
        stage = Path(tempfile.mkdtemp(prefix=temp_prefix("report"), suffix=TEMP_SUFFIX, dir=target))
        try:
            staged = write_files(data, stage)
            swap_in(stage, target)
        except OSError as exc:  # name the report's file, not its staged twin
            raise naming(exc, _unstaged(exc, stage, target)) from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return ReportFiles(
        markdown=target / "report.md",
        html=target / "report.html",
        runs_csv=target / "runs.csv",
        profile_csv=None if staged.profile_csv is None else target / "profile.csv",
        figures=[target / FIGURES / path.name for path in staged.figures],
    )


def _unstaged(exc: OSError, stage: Path, target: Path) -> str:
    name = str(exc.filename2 or exc.filename or target)
    return name.replace(str(stage), str(target), 1)


def write_files(data: ReportData, out: Path) -> ReportFiles:
    """Every file of the report, written into `out` (an empty folder)."""
    fig_dir = out / FIGURES
    fig_dir.mkdir()
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


def swap_in(stage: Path, target: Path) -> None:
    """Rename the staged report into `target`: renames within one filesystem need no space,
    so once every file is staged the swap cannot fail for a full disk. A file the new report
    does not have (profile.csv) is removed; the old figures folder goes to the stage, which
    the caller deletes."""
    old_figures = target / FIGURES
    if old_figures.is_dir() and not old_figures.is_symlink():
        os.replace(old_figures, stage / "figures.old")
    os.replace(stage / FIGURES, old_figures)
    for name in REPORT_FILES:
        if (stage / name).exists():
            os.replace(stage / name, target / name)
        else:
            (target / name).unlink(missing_ok=True)


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
