"""`seqbench run --suite NAME | --config FILE.toml | --arch A [--arch B ...] --task T [...]`.

Ad-hoc runs take the grid from flags: every repeatable flag (--arch, --task, --seq-len,
--d-model, --lr, --seed) is an axis. Task knobs come as `--KNOB VALUE` (typed by the knob's
field, exactly as `seqbench sample` reads them) or `--knob KEY=VALUE`; architecture fields
as `--set KEY=VALUE`. `--set`/`--knob` values are read as JSON when they parse (8, 0.5,
true, [4, 8] — a list sweeps), else as text (mamba,attention).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from seqbench.errors import UserError
from seqbench.harness.bounds import click_type
from seqbench.harness.cli.options import parse_pairs
from seqbench.harness.lr_search import LR_SEARCHES
from seqbench.registry import did_you_mean

# Flags of the ad-hoc grid -> RunSpec field (repeatable ones are axes).
ADHOC_FIELDS = {
    "arch": "arch",
    "task": "task",
    "seq_len": "seq_len",
    "min_seq_len": "min_seq_len",
    "eval_len": "eval_lengths",
    "d_model": "d_model",
    "n_layers": "n_layers",
    "steps": "steps",
    "batch_size": "batch_size",
    "lr": "lr",
    "warmup": "warmup",
    "weight_decay": "weight_decay",
    "seed": "seed",
}


SWEEP = " Repeatable: each value is one axis point of the grid."


class RunCommand(click.Command):
    """`seqbench run --help` also lists the task-knob flags (`--KNOB VALUE`), which click
    cannot know: they come from the task classes."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        rows = knob_help_rows()
        if rows:
            with formatter.section("Task knobs (--KNOB VALUE, typed by the task's field)"):
                formatter.write_dl(rows)


def knob_help_rows() -> list[tuple[str, str]]:
    """(flag, 'int, default 8; tasks: mqar, ...') for every knob of every registered task."""
    from seqbench.tasks import TASKS
    from seqbench.tasks.knobs import option_name

    knobs: dict[str, tuple[str, list[str]]] = {}
    for task in TASKS.names():
        try:
            cls = TASKS.get(task)
            fields = dataclasses.fields(cls)
        except Exception:  # a plugin task that fails to import: left out of the help
            continue
        for f in fields:
            if f.name == "seq_len":
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            knobs.setdefault(option_name(f.name), (kind, []))[1].append(task)
    return [
        (f"{flag} {kind.upper() or 'VALUE'}", f"knob of {', '.join(tasks)}")
        for flag, (kind, tasks) in sorted(knobs.items())
    ]


@click.command(
    "run",
    cls=RunCommand,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog="Flags marked 'Repeatable' sweep: the runs are the cartesian product of their "
    "values. Numeric bounds are listed in docs/harness.md (Bounds).",
)
@click.option("--suite", help="Built-in suite (seqbench list suites).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), help="Suite TOML file.")
@click.option("--arch", multiple=True, help="Architecture preset or pkg.mod:Class." + SWEEP)
@click.option(
    "--task",
    multiple=True,
    help="Task name or pkg.mod:Class." + SWEEP + " With --suite/--config: keeps those tasks' runs.",
)
@click.option(
    "--seq-len", type=click_type("seq_len"), multiple=True, help="Training length." + SWEEP
)
@click.option(
    "--min-seq-len",
    type=click_type("min_seq_len"),
    help="Shortest training length: each batch's length is drawn from MIN..--seq-len.",
)
@click.option(
    "--eval-len",
    type=click_type("eval_lengths"),
    multiple=True,
    help="Extra test length (repeatable: every length is tested in each run).",
)
@click.option("--d-model", type=click_type("d_model"), multiple=True, help="Model width." + SWEEP)
@click.option("--n-layers", type=click_type("n_layers"), help="Number of layers.")
@click.option("--steps", type=click_type("steps"), help="Training budget (optimiser steps).")
@click.option("--batch-size", type=click_type("batch_size"), help="Sequences per step.")
@click.option("--lr", type=click_type("lr"), multiple=True, help="Peak learning rate." + SWEEP)
@click.option("--warmup", type=click_type("warmup"), help="Warm-up steps [10% of steps].")
@click.option("--weight-decay", type=click_type("weight_decay"), help="Decoupled weight decay.")
@click.option(
    "--seed",
    type=click_type("seed"),
    multiple=True,
    help="Seed of init and data." + SWEEP + " With --suite/--config: replaces the suite's seeds.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Architecture field, e.g. attention.n_heads=4 (repeatable, one value per key; "
    "a JSON list value sweeps).",
)
@click.option(
    "--knob",
    "knobs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Task knob, like --KNOB VALUE (repeatable, one value per key; a JSON list sweeps).",
)
@click.option(
    "--test-knob",
    "test_knobs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Task knob of the test split only, e.g. score=last (repeatable, one value per key).",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Result folder [results/NAME]."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where to train [auto].")
@click.option(
    "--launcher", default="serial", show_default=True, help="serial, local, slurm or ray."
)
@click.option(
    "--workers",
    type=click_type("workers"),
    help="Processes of --launcher local; most jobs running at once for slurm and ray.",
)
@click.option(
    "--address",
    help="Ray cluster to use with --launcher ray [RAY_ADDRESS, else a local Ray instance].",
)
@click.option(
    "--threads",
    type=click_type("threads"),
    help="torch threads per run; 0 keeps torch's default [the cores this process may use "
    "that other work leaves free, shared out among --launcher local's workers; the CPUs of a "
    "slurm or ray job].",
)
@click.option(
    "--lr-search",
    type=click.Choice(LR_SEARCHES),
    help="Train every lr of a configuration, or its lrs in turn until one solves every seed "
    "[the suite's lr_search; all for ad-hoc grids].",
)
@click.option("--force", is_flag=True, help="Rerun runs already recorded ok.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the runs, their number and a projected time (from timed steps); train nothing.",
)
@click.pass_context
def command(ctx: click.Context, **opts: Any) -> None:
    """Train and evaluate a suite or an ad-hoc grid; one JSON record per run in OUT/runs/."""
    from seqbench.harness.cli.options import make_launcher
    from seqbench.harness.sweep import plan, run_sweep

    name, specs, lr_search = gather_specs(opts, ctx.args)
    lr_search = opts["lr_search"] or lr_search
    if opts["device"]:
        specs = [dataclasses.replace(s, device=opts["device"]) for s in specs]
    out = opts["out"] or Path("results") / name
    # its device decides run ids
    launcher = make_launcher(opts["launcher"], opts["workers"], opts["address"], opts["threads"])
    if opts["dry_run"]:
        from seqbench.harness.projection import project

        plans = plan(specs, launcher.device)
        for prepared in plans:
            click.echo(f"{prepared.run_id}  {prepared.spec.label()}")
        click.echo(f"\n{name}: " + project(plans).line(opts["workers"] or 1))
        if lr_search != "all":
            click.echo(
                f"lr_search = {lr_search!r}: a configuration's later learning rates run only "
                "where the earlier ones left a seed unsolved, so the suite may run fewer of these"
            )
        return
    result = run_sweep(specs, out, launcher=launcher, force=opts["force"], lr_search=lr_search)
    print_summary(out, result.run_ids, result.skipped, result.left_out)
    sys.exit(1 if result.statuses.get("failed") else 0)


def gather_specs(opts: dict[str, Any], extra: list[str]) -> tuple[str, list, str]:
    """(name for the default output folder, specs, lr search) from the suite, file or ad-hoc
    flags (an ad-hoc grid tries every lr it is given)."""
    from seqbench.harness.suites import expand, load_builtin, load_file

    adhoc = [f"--{k.replace('_', '-')}" for k in ADHOC_FIELDS if opts[k] and k not in SELECTORS]
    adhoc += ["--set"] * bool(opts["sets"]) + ["--knob"] * bool(opts["knobs"])
    adhoc += ["--test-knob"] * bool(opts["test_knobs"])
    sources = [s for s in ("suite", "config") if opts[s]]
    if len(sources) > 1 or (sources and (adhoc or extra)):
        given = [f"--{s}" for s in sources] + adhoc + extra[:1]
        raise UserError(f"give one of --suite, --config or ad-hoc flags, not {' and '.join(given)}")
    if sources:
        suite = load_builtin(opts["suite"]) if opts["suite"] else load_file(opts["config"])
        specs = with_seeds(only_tasks(suite.specs, opts["task"]), opts["seed"])
        return suite.name, specs, suite.lr_search
    if not opts["arch"] or not opts["task"]:
        raise UserError("give --suite NAME, --config FILE.toml, or --arch A --task T")
    grid: dict[str, Any] = {
        key: list(opts[flag]) if isinstance(opts[flag], tuple) else opts[flag]
        for flag, key in ADHOC_FIELDS.items()
        if opts[flag] not in (None, ())
    }
    grid["overrides"] = parse_pairs(opts["sets"], "--set")
    grid["knobs"] = parse_pairs(opts["knobs"], "--knob")
    grid["test_knobs"] = parse_pairs(opts["test_knobs"], "--test-knob")
    grid["knobs"].update(parse_knob_flags(extra, grid["task"]))
    return "adhoc", expand({"grid": [grid]}, "command line"), "all"


# Flags that, with --suite/--config, select from the suite instead of making a grid.
SELECTORS = ("seed", "task")


def only_tasks(specs: list, tasks: tuple[str, ...]) -> list:
    """The suite's runs of `tasks` (all of them when none are given): one part of a suite,
    e.g. the MQAR part of paper-long, with its references."""
    if not tasks:
        return specs
    from seqbench.tasks import TASKS

    wanted = {TASKS.canonical(t) for t in tasks}
    kept = [s for s in specs if TASKS.canonical(s.task) in wanted]
    if not kept:
        have = ", ".join(dict.fromkeys(s.task for s in specs))
        raise UserError(f"the suite has no runs of {', '.join(sorted(wanted))} (tasks: {have})")
    return kept


def with_seeds(specs: list, seeds: tuple[int, ...]) -> list:
    """A suite's runs with its seeds replaced by `seeds` (every configuration once per seed):
    the same suite measured again on other seeds. No seeds given: the suite as written."""
    if not seeds:
        return specs
    configs = {s.spec_id: s for s in (dataclasses.replace(s, seed=0) for s in specs)}
    return [dataclasses.replace(s, seed=seed) for s in configs.values() for seed in seeds]


def parse_knob_flags(args: list[str], tasks: list[str]) -> dict[str, Any]:
    """`--num-pairs 8` / `--num_pairs=8` -> {"num_pairs": 8}, typed by the task's field
    (`seqbench.tasks.knobs`, as `seqbench sample` reads them); every task given must have the knob.
    A word that is no knob of any task gets a hint over run options and knobs alike."""
    from seqbench.tasks import TASKS
    from seqbench.tasks.knobs import parse_knob_args

    classes = {task: TASKS.get(task) for task in tasks}
    known = sorted({f.name for cls in classes.values() for f in dataclasses.fields(cls)})
    for word in args:
        name = word[2:].partition("=")[0] if word.startswith("--") else ""
        if name and name.replace("-", "_") not in known:
            raise UserError(unknown_option_message(name, tasks, known))
    knobs: dict[str, Any] = {}
    for task, cls in classes.items():
        knobs.update(parse_knob_args(task, cls, list(args)))
    if "seq_len" in knobs:
        raise UserError("give the training length with --seq-len (a grid axis), not as a knob")
    return knobs


def unknown_option_message(name: str, tasks: list[str], knobs: list[str]) -> str:
    options = [p.opts[0] for p in command.params if isinstance(p, click.Option)]
    candidates = options + [f"--{k.replace('_', '-')}" for k in knobs]
    hint = did_you_mean(f"--{name}", candidates)
    where = ", ".join(repr(t) for t in tasks)
    return f"no such option --{name} (neither a run option nor a knob of {where}){hint}"


def print_summary(out: Path, run_ids: list[str], skipped: int, left_out: int = 0) -> None:
    from seqbench.harness.store import load_records
    from seqbench.harness.summary import summary_table

    frame = load_records(out)
    frame = frame[frame["run_id"].isin(run_ids)]
    click.echo("")
    if skipped:
        click.echo(f"{skipped} run(s) already recorded ok were skipped (--force reruns them)")
    if left_out:
        click.echo(
            f"{left_out} run(s) at later learning rates were not needed: an earlier one solved "
            "their configuration on every seed (lr_search = first-solved)"
        )
    click.echo(summary_table(frame))
    click.echo(f"\nrecords: {out / 'runs'}  ({len(frame)} of {len(run_ids)} runs recorded)")
