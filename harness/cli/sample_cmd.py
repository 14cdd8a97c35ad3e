"""`seqbench sample TASK [--KNOB VALUE ...] [--seed S] [--n N] [--variant V] [--json]`.

Look at a task's data.

The human form prints each example as columns: the input token on top and, under each scored
position, its target (`-` where nothing is scored), with special tokens by name. `--json`
prints exactly `{"inputs": [[...]], "targets": [[...]]}` with -100 at unscored positions.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from seqbench.harness.bounds import click_type

if TYPE_CHECKING:
    from seqbench.tasks.base import Task

WIDTH = 100  # characters per printed line


@click.command(
    "sample", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.argument("task")
@click.option(
    "--seed",
    type=click_type("seed"),
    default=0,
    show_default=True,
    help="Seed of the draw (the same seeds `seqbench run` takes).",
)
@click.option("--n", "count", type=click_type("n"), default=2, show_default=True, help="Examples.")
@click.option("--variant", help="A named knob setting of the task (see `seqbench list tasks`).")
@click.option("--json", "as_json", is_flag=True, help="Print inputs and targets as JSON.")
@click.pass_context
def command(
    ctx: click.Context, task: str, seed: int, count: int, variant: str | None, as_json: bool
) -> None:
    """Show examples of TASK; knobs go after it as --name value (see `seqbench list tasks`)."""
    from seqbench.tasks import TASKS, make_task
    from seqbench.tasks.base import variant_knobs
    from seqbench.tasks.knobs import parse_knob_args

    cls = TASKS.get(task)
    knobs = parse_knob_args(task, cls, list(ctx.args))
    if variant is not None:
        knobs = {**variant_knobs(cls, variant), **knobs}  # explicit knobs win
    instance = make_task(task, **knobs)
    batch = instance.sample(count, seed)
    if as_json:
        data = {"inputs": batch.inputs.tolist(), "targets": batch.targets.tolist()}
        click.echo(json.dumps(data))
        return
    click.echo(header(instance, seed))
    for i in range(count):
        click.echo("")
        click.echo(format_example(i, batch.inputs[i].tolist(), batch.targets[i].tolist(), instance))


def header(task: Task, seed: int) -> str:
    knobs = " ".join(f"{k}={v}" for k, v in task.knobs().items())
    names = task.token_names()
    special = ", ".join(f"{name} ({tok})" for tok, name in sorted(names.items()))
    lines = [
        f"{task.name}: {task.description}",
        f"knobs: {knobs}",
        f"seed {seed}; 'in' = input tokens, 'out' = target at scored positions ('-' elsewhere)",
    ]
    if special:
        lines.append(f"special tokens: {special}")
    return "\n".join(lines)


def format_example(index: int, inputs: list[int], targets: list[int], task: Task) -> str:
    """Aligned columns: inputs over targets, wrapped to WIDTH characters."""
    from seqbench.tasks.base import IGNORE_INDEX

    names = task.token_names()
    shown_in = [names.get(tok, str(tok)) for tok in inputs]
    shown_out = ["-" if t == IGNORE_INDEX else names.get(t, str(t)) for t in targets]
    width = max(len(s) for s in shown_in + shown_out)
    margin = len(str(len(inputs))) + 5
    per_line = max(1, (WIDTH - margin) // (width + 1))
    scored = sum(t != IGNORE_INDEX for t in targets)
    lines = [f"example {index}: {scored} of {len(inputs)} positions scored"]
    for start in range(0, len(inputs), per_line):
        cols = slice(start, start + per_line)
        pos = str(start).rjust(margin - 5)
        lines.append(f"{pos} in  " + " ".join(s.rjust(width) for s in shown_in[cols]))
        lines.append(
            " " * (margin - 5) + " out " + " ".join(s.rjust(width) for s in shown_out[cols])
        )
    return "\n".join(lines)
