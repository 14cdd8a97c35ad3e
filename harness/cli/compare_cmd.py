"""`seqbench compare DIR_A DIR_B`: metric deltas between two result folders, run by run."""

from __future__ import annotations

import json
from pathlib import Path

import click

from seqbench.harness.cli.format import table


@click.command("compare")
@click.argument("folder_a", metavar="DIR_A", type=click.Path(path_type=Path))
@click.argument("folder_b", metavar="DIR_B", type=click.Path(path_type=Path))
@click.option(
    "--ignore",
    multiple=True,
    metavar="FIELD",
    help="Spec field to ignore when matching runs (repeatable), e.g. device; a name that is "
    "no spec field of either folder is an error.",
)
@click.option("--all-metrics", is_flag=True, help="Compare every metric, not just the main ones.")
@click.option("--flagged", is_flag=True, help="Show only deltas larger than the seeds' spread.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def command(
    folder_a: Path,
    folder_b: Path,
    ignore: tuple[str, ...],
    all_metrics: bool,
    flagged: bool,
    as_json: bool,
) -> None:
    """Match the runs of DIR_A and DIR_B by spec (seed aside) and print B − A per metric.

    A delta is flagged (!) when it is larger than the seeds' spread: the larger of the two
    folders' ranges (max − min) over seeds. Exact metrics (FLOPs, bytes, parameters) have no
    spread, so any change in them is flagged.
    """
    from seqbench.harness.report.compare import compare
    from seqbench.harness.report.data import skipped_lines

    result = compare(folder_a, folder_b, ignore=ignore, every_metric=all_metrics)
    for line in skipped_lines(result.skipped):
        click.echo(line, err=True)
    deltas = [d for d in result.deltas if d.flagged or not flagged]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "a": str(folder_a),
                    "b": str(folder_b),
                    "matched": result.matched,
                    "only_a": result.only_a,
                    "only_b": result.only_b,
                    "status_changes": result.status_changes,
                    "torch_threads": result.threads,
                    "deltas": [d.to_dict() for d in deltas],
                },
                indent=1,
            )
        )
        return
    rows = [
        [
            d.what,
            d.metric,
            _num(d.mean_a, d.n_a),
            _num(d.mean_b, d.n_b),
            f"{d.delta:+.4g}",
            "–" if d.relative is None else f"{d.relative:+.1%}",
            "–" if d.spread is None else f"{d.spread:.3g}",
            "!" if d.flagged else "",
        ]
        for d in deltas
    ]
    if rows:
        headers = [
            "run (seed aside)",
            "metric",
            "A (seeds)",
            "B (seeds)",
            "B − A",
            "rel",
            "spread",
            "flag",
        ]
        click.echo(table(headers, rows))
    n_flagged = sum(d.flagged for d in result.deltas)
    click.echo(
        f"\n{result.matched} configurations matched; {n_flagged} deltas larger than the "
        f"seeds' spread (!)"
    )
    note = result.threads_note()
    if note:
        click.echo(note)
    for title, items in (
        ("only in A", result.only_a),
        ("only in B", result.only_b),
        ("runs not ok", result.status_changes),
    ):
        if items:
            click.echo(f"{title} ({len(items)}):")
            for item in items:
                click.echo(f"  {item}")


def _num(value: float, n: int) -> str:
    return f"{value:.4g} ({n})"
