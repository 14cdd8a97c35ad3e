"""`seqbench check-arch NAME|pkg.mod:Class [--json]`: the conformance gate from the shell."""

from __future__ import annotations

import json
import sys

import click

from seqbench.harness.bounds import click_type


@click.command("check-arch")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--d-model",
    type=click_type("d_model"),
    default=None,
    help="Width of the probe (mixers and classes; presets use their own).",
)
def command(name: str, as_json: bool, d_model: int | None) -> None:
    """Run the conformance checks on a preset, a registered mixer or a pkg.mod:Class.

    Exit code 0 only when every check passes.
    """
    from seqbench.architectures.conformance import GateConfig, check_architecture

    cfg = GateConfig() if d_model is None else GateConfig(d_model=d_model)
    report = check_architecture(name, cfg)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format())
    sys.exit(0 if report.passed else 1)
