"""`seqbench list [architectures|tasks|suites|findings]`."""

from __future__ import annotations

import json

import click

from seqbench.harness.cli.format import table

KINDS = ("architectures", "tasks", "suites", "findings")


def architecture_rows() -> list[dict[str, object]]:
    """Every preset with its family, layer pattern and parameter count at its default size."""
    from seqbench.architectures import PRESETS, LanguageModel, build_config
    from seqbench.architectures.presets import DEFAULT_VOCAB

    rows = []
    for name in PRESETS.names():
        preset = PRESETS.get(name)
        config = build_config(name, vocab_size=DEFAULT_VOCAB)
        counts = LanguageModel(config).parameter_counts()
        rows.append(
            {
                "name": name,
                "family": preset.family,
                "layers": f"{config.n_layers} x {','.join(config.layer_pattern)} + {config.ffn}",
                "d_model": config.d_model,
                "params": counts["total"],
                "active": counts["active"],
                "description": preset.description,
            }
        )
    return rows


def task_rows() -> list[dict[str, object]]:
    """Every task with its one-line description, knobs with defaults and named variants."""
    from seqbench.tasks import TASKS
    from seqbench.tasks.knobs import describe_knobs

    rows = []
    for name in TASKS.names():
        cls = TASKS.get(name)
        rows.append(
            {
                "name": name,
                "description": cls.description,
                "knobs": describe_knobs(cls),
                "variants": dict(cls.variants),
            }
        )
    return rows


def print_tasks(rows: list[dict[str, object]]) -> None:
    """One block per task: name and description, then its knobs (as CLI options) and variants."""
    from seqbench.tasks.knobs import option_name

    for row in rows:
        click.echo(f"{row['name']}  {row['description']}")
        knobs = row["knobs"]
        assert isinstance(knobs, dict)
        click.echo("    " + "  ".join(f"{option_name(k)} {v}" for k, v in knobs.items()))
        variants = row["variants"]
        assert isinstance(variants, dict)
        for variant, overrides in variants.items():
            sets = " ".join(f"{option_name(k)} {v}" for k, v in overrides.items())
            click.echo(f"    variant {variant}: {sets}")
    click.echo("\nsee examples with: seqbench sample TASK [--KNOB VALUE ...] [--n N] [--seed S]")


@click.command("list")
@click.argument("kind", type=click.Choice(KINDS), default="architectures")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def command(kind: str, as_json: bool) -> None:
    """List architectures (presets), tasks, suites or published findings."""
    if kind == "findings":
        from seqbench.harness.findings import finding_rows

        rows = finding_rows()
        if not as_json:
            rows = [{k: v for k, v in r.items() if k != "statement"} for r in rows]
    elif kind == "suites":
        from seqbench.harness.suites import suite_rows

        rows = suite_rows()
    else:
        rows = task_rows() if kind == "tasks" else architecture_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if kind == "tasks":
        print_tasks(rows)
        return
    headers = list(rows[0]) if rows else []
    click.echo(table(headers, [list(r.values()) for r in rows]))
    if kind == "findings":
        click.echo("\nstatements, grids and rules: docs/findings.md; verdicts: seqbench report DIR")
        return
    if kind == "suites":
        click.echo("\nrun one with: seqbench run --suite NAME (or your own: --config FILE.toml)")
        return
    from seqbench.architectures.presets import DEFAULT_VOCAB

    click.echo(
        f"\nparameters at the default size with a {DEFAULT_VOCAB}-token vocabulary; "
        "override any field with --set KEY=VALUE"
    )
