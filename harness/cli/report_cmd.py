"""`seqbench report DIR [--out OUT]`: build report.md, report.html, figures/*.png and runs.csv
from records."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("report")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the report into (created if missing) [default: DIR]. Lets a "
    "read-only results folder be reported.",
)
def command(folder: Path, out: Path | None) -> None:
    """Build the comparison report of DIR from its records (DIR/runs/*.json).

    Writes OUT/report.md, OUT/report.html (self-contained, figures embedded), OUT/figures/*.png
    and OUT/runs.csv (plus OUT/profile.csv when there are profile records); OUT is DIR unless
    --out says otherwise. The set is built aside and swapped in whole. Safe to rerun at any
    time: everything is rebuilt from the records alone. Files that are not valid records are
    skipped, one warning line each.
    """
    from seqbench.harness.report.build import write_report
    from seqbench.harness.report.data import load, skipped_lines

    data = load(folder)  # a missing or empty folder is a one-line error before anything else
    for line in skipped_lines(data.skipped):
        click.echo(line, err=True)
    target = out or folder
    if sys.stderr.isatty():
        click.echo(f"building the report of {len(data.records)} records in {target} …", err=True)
    files = write_report(data, target)
    click.echo(f"report:  {files.markdown}")
    click.echo(f"html:    {files.html}")
    click.echo(f"figures: {len(files.figures)} in {target / 'figures'}")
    for path in (files.runs_csv, files.profile_csv):
        if path is not None:
            click.echo(f"table:   {path}")
