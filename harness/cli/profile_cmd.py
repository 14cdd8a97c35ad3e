"""`seqbench profile`: time, memory, FLOPs, decode state and scaling exponents per architecture."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from seqbench.errors import UserError
from seqbench.harness.bounds import click_type
from seqbench.harness.cli.options import parse_sweeps
from seqbench.harness.lock import folder_lock

if TYPE_CHECKING:  # the profiler imports torch; keep `seqbench --help` fast
    from seqbench.harness.profile.sweep import SweepPlan

DEFAULT_OUT = "results/profile"


def listed(values: tuple[Any, ...], default: tuple[Any, ...] = ()) -> list[Any]:
    """A repeatable option's values in order, without repeats (the default when none given)."""
    return list(dict.fromkeys(values or default))


def resolve_device(device: str, where: str | None = None) -> str:
    """ "auto" -> cuda or cpu; `where`: the device of a launcher whose jobs run elsewhere."""
    import torch

    if where is not None:
        if device == "cuda" and where != "cuda":
            raise UserError("--device cuda was asked for but the launcher's jobs get no GPU")
        return where if device == "auto" else device
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA device")
    return device


def default_memory_gb() -> float | None:
    from seqbench.harness.profile.memory import available_memory_bytes

    available = available_memory_bytes()
    return None if available is None else round(available / 2**30 / 2, 1)


@click.command("profile")
@click.option("--arch", "archs", multiple=True, required=True, help="Preset (repeatable).")
@click.option(
    "--seq-len",
    "seq_lens",
    type=click_type("seq_len"),
    multiple=True,
    help="Training-step lengths in tokens (repeatable) [default: 256 … 8192, doubling].",
)
@click.option(
    "--batch", "batches", type=click_type("batch"), multiple=True, help="Batch sizes [1]."
)
@click.option(
    "--d-model",
    "d_models",
    type=click_type("d_model"),
    multiple=True,
    help="Widths (repeatable) [the preset's].",
)
@click.option(
    "--impl",
    "impls",
    type=click.Choice(["sdpa", "reference"]),
    multiple=True,
    help="Attention path: fused sdpa or explicit softmax (repeatable) [sdpa].",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Preset override (repeatable); a key given twice is swept, e.g. "
    "--set ffn.n_experts=8 --set ffn.n_experts=16.",
)
@click.option(
    "--context",
    "contexts",
    type=click_type("context"),
    multiple=True,
    help="Decode context lengths in tokens [256 1024 4096 16384].",
)
@click.option(
    "--counted-len",
    "counted_lens",
    type=click_type("counted_len"),
    multiple=True,
    help="Lengths in tokens counted on the meta device [1024 … 1048576, ×4].",
)
@click.option(
    "--mode",
    "modes",
    type=click.Choice(["train", "decode", "counted"]),
    multiple=True,
    help="What to profile (repeatable) [all three].",
)
@click.option(
    "--repeats",
    type=click_type("repeats"),
    default=3,
    show_default=True,
    help="Timed training steps per point (median).",
)
@click.option(
    "--decode-steps",
    type=click_type("decode_steps"),
    default=16,
    show_default=True,
    help="Timed decode steps per context (median).",
)
@click.option(
    "--budget-s",
    type=click_type("budget_s"),
    default=120.0,
    show_default=True,
    help="Per-point time budget in seconds; a point over it is killed and recorded failed, "
    "one predicted over it is skipped.",
)
@click.option(
    "--max-memory-gb",
    type=click_type("max_memory_gb"),
    default=None,
    help="Per-point memory cap on CPU in GiB; over it a point is recorded oom "
    "[half of the available memory].",
)
@click.option(
    "--threads",
    type=click_type("threads"),
    default=1,
    show_default=True,
    help="torch threads in each worker; 0 keeps torch's default. One is the default because "
    "on a CPU shared with other work, timings with more threads than free cores swing by 10x.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to measure (auto: CUDA when present).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default="float32",
    show_default=True,
    help="Parameter and activation dtype.",
)
@click.option(
    "--vocab",
    type=click_type("vocab_size"),
    default=64,
    show_default=True,
    help="Vocabulary size (tokens).",
)
@click.option(
    "--seed", type=click_type("seed"), default=0, show_default=True, help="Seed of init and data."
)
@click.option(
    "--out",
    "out_dir",
    default=DEFAULT_OUT,
    show_default=True,
    help="Result folder (records in OUT/runs/).",
)
@click.option(
    "--launcher",
    default="local",
    show_default=True,
    help="serial, local, slurm or ray (as for seqbench run); local measures each point in a "
    "worker process, which the RSS method and the time budget need.",
)
@click.option(
    "--workers",
    type=click_type("workers"),
    help="Points measured at once [1 for local: parallel points disturb each other's timings; "
    "all for slurm and ray].",
)
@click.option(
    "--address",
    help="Ray cluster to use with --launcher ray [RAY_ADDRESS, else a local Ray instance].",
)
@click.option("--force", is_flag=True, help="Re-measure points already recorded ok.")
def command(**opts: Any) -> None:  # fmt: skip
    """Profile architectures: tokens/s, peak memory (three named methods), FLOPs per token,
    prefill and decode latency, decode state bytes, counted FLOPs/bytes up to 1M tokens, and
    log-log scaling exponents with 95% intervals. Writes one record per point to OUT/runs/.
    """
    from seqbench.harness.cli.options import make_launcher
    from seqbench.harness.profile.summary import summary
    from seqbench.harness.profile.sweep import run_sweep, write_fits

    workers = opts["workers"] or (1 if opts["launcher"] == "local" else None)
    # threads=0: a worker keeps torch's own threads; each point sets its own (--threads)
    launcher = make_launcher(opts["launcher"], workers, opts["address"], threads=0)
    plan = build_plan(opts, launcher.device)
    records, result = run_sweep(plan, opts["out_dir"], launcher=launcher, force=opts["force"])
    with folder_lock(opts["out_dir"]):  # the one writers' lock, shared with run and report
        fits = write_fits(records, opts["out_dir"], plan.axes())
    click.echo("")
    if result.skipped:
        click.echo(f"{result.skipped} point(s) already recorded ok were skipped "
                   "(--force measures them again)")  # fmt: skip
    click.echo(summary(records, fits))
    click.echo(f"\n{len(records)} point records and {len(fits)} fit records in "
               f"{opts['out_dir']}/runs")  # fmt: skip
    asked = asked_modes(opts)
    unasked = [r for r in records if r["status"] == "failed" and r["spec"]["mode"] not in asked]
    if unasked:
        click.echo(f"{len(unasked)} failed point(s) came from defaults not asked for "
                   f"({', '.join(sorted({r['spec']['mode'] for r in unasked}))} mode): listed "
                   "above, they leave the exit code at 0")  # fmt: skip
    sys.exit(exit_code(records, asked))


LENGTH_FLAGS = {"train": "seq_lens", "decode": "contexts", "counted": "counted_lens"}


def asked_modes(opts: dict[str, Any]) -> set[str]:
    """The modes the user asked for: named with --mode, or given lengths (--seq-len, --context,
    --counted-len); the others run at their defaults. Neither given: all three (the default
    profile is what was asked for)."""
    named = {mode for mode, flag in LENGTH_FLAGS.items() if mode in opts["modes"] or opts[flag]}
    return named or set(LENGTH_FLAGS)


def exit_code(records: list[dict[str, Any]], asked: set[str]) -> int:
    """1 when a point the user asked for is recorded failed, as `seqbench run` does for its
    runs. Points that only defaults asked for never fail the command, nor do points skipped
    for the budget, or oom ones (measurements, not failures)."""
    return int(any(r["status"] == "failed" and r["spec"]["mode"] in asked for r in records))


def build_plan(opts: dict[str, Any], where: str | None = None) -> SweepPlan:
    from seqbench.harness.profile.points import MODES, PointOptions
    from seqbench.harness.profile.sweep import (
        DEFAULT_CONTEXTS,
        DEFAULT_COUNTED_LENS,
        DEFAULT_SEQ_LENS,
        SweepPlan,
    )

    memory_gb = opts["max_memory_gb"] or default_memory_gb()
    options = PointOptions(
        vocab_size=opts["vocab"],
        device=resolve_device(opts["device"], where),
        dtype=opts["dtype"],
        seed=opts["seed"],
        repeats=opts["repeats"],
        decode_steps=opts["decode_steps"],
        threads=opts["threads"] or None,
    )
    return SweepPlan(
        archs=listed(opts["archs"]),
        seq_lens=listed(opts["seq_lens"], DEFAULT_SEQ_LENS),
        contexts=listed(opts["contexts"], DEFAULT_CONTEXTS),
        counted_lens=listed(opts["counted_lens"], DEFAULT_COUNTED_LENS),
        batches=listed(opts["batches"], (1,)),
        d_models=listed(opts["d_models"]),
        impls=listed(opts["impls"], ("sdpa",)),
        sets=parse_sweeps(opts["sets"], "--set"),
        modes=[m for m in MODES if m in (opts["modes"] or MODES)],
        options=options,
        budget_s=opts["budget_s"],
        max_memory_bytes=None if memory_gb is None else int(memory_gb * 2**30),
    )
