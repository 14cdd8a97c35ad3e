"""`seqbench report DIR`: build report.md, report.html, figures/*.png and runs.csv from records."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("report")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
def command(folder: Path) -> None:
    """Build the comparison report of DIR from its records (DIR/runs/*.json).

    Writes DIR/report.md, DIR/report.html (self-contained, figures embedded), DIR/figures/*.png
    and DIR/runs.csv (plus DIR/profile.csv when there are profile records). Safe to rerun at
    any time: everything is rebuilt from the records alone.
    """
    from seqbench.harness.report.build import write_report
    from seqbench.harness.report.data import load

    data = load(folder)  # a missing or empty folder is a one-line error before anything else
    if sys.stderr.isatty():
        click.echo(f"building the report of {len(data.records)} records in {folder} …", err=True)
    files = write_report(data)
    click.echo(f"report:  {files.markdown}")
    click.echo(f"html:    {files.html}")
    click.echo(f"figures: {len(files.figures)} in {folder / 'figures'}")
    for path in (files.runs_csv, files.profile_csv):
        if path is not None:
            click.echo(f"table:   {path}")
