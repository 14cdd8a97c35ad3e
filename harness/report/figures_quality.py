"""Quality figures: accuracy against training length, width, and evaluation length.

Lines are means over seeds at the learning rate picked on validation; bands are the same 95%
t-intervals the leaderboard prints (none for a single seed). A figure whose axis the records
never vary is skipped with that reason rather than drawn as a single dot per line.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import seaborn as sns

from seqbench.harness.report import fmt, plotting
from seqbench.harness.report.document import Block, Skipped
from seqbench.harness.report.stats import ci_band

AXES = {"seq_len": "training length", "d_model": "width (d_model)"}


def quality_figures(best_ok: pd.DataFrame, lengths: pd.DataFrame, folder: Path) -> list[Block]:
    if best_ok.empty:
        reason = "no ok training runs in this folder"
        return [
            Skipped(title, reason)
            for title in (
                "Accuracy vs training length",
                "Accuracy vs width",
                "Length extrapolation",
            )
        ]
    colours = plotting.palette(best_ok["arch"].astype(str))
    return [
        accuracy_vs(best_ok, "seq_len", folder, colours),
        accuracy_vs(best_ok, "d_model", folder, colours),
        extrapolation(lengths, folder, colours),
    ]


def varies(frame: pd.DataFrame, column: str) -> bool:
    """True when some architecture of the frame was run at two or more values of `column`."""
    return bool((frame.groupby("arch")[column].nunique() > 1).any())


def accuracy_vs(best_ok: pd.DataFrame, axis: str, folder: Path, colours: dict) -> Block:
    label = AXES[axis]
    title = f"Accuracy vs {label}"
    tasks = [t for t, g in best_ok.groupby("task", sort=True) if varies(g, axis)]
    if not tasks:
        return Skipped(
            title,
            f"the runs never vary the {label} of an architecture on a task "
            f"(values: {fmt.values(best_ok[axis])})",
        )
    other = [c for c in AXES if c != axis]
    fig = task_panels(best_ok, tasks, axis, "test_accuracy", label, other, colours)
    return plotting.save(
        fig,
        folder,
        f"accuracy_vs_{axis}",
        title,
        f"Test accuracy at the training length against the {label}; mean over seeds with 95% "
        "t-interval bands, at the learning rate picked on validation.",
    )


def extrapolation(lengths: pd.DataFrame, folder: Path, colours: dict) -> Block:
    """Accuracy against the test length in tokens, on a log2 axis ticked at every length
    tested (2^5 ... 2^14 and beyond), one panel per task; lengths recorded `oom` have no
    point (the leaderboard and findings say so)."""
    title = "Length extrapolation"
    if lengths.empty or not (lengths["ratio"] > 1).any():
        return Skipped(title, "no run was tested beyond its training length (eval_lengths)")
    tasks = sorted(lengths.loc[lengths["ratio"] != 1, "task"].astype(str).unique())
    xlabel = "test length (tokens, log2 axis)"
    fig = task_panels(lengths, tasks, "length", "accuracy", xlabel, list(AXES), colours)
    for ax, task in zip(fig.axes, tasks, strict=False):
        frame = lengths[lengths["task"] == task]
        tested = sorted({int(n) for n in frame["length"]})
        ax.set_xscale("log", base=2)
        ax.set_xticks(tested, [f"2^{math.log2(n):g}" if n & (n - 1) == 0 else str(n)
                               for n in tested], fontsize=7)  # fmt: skip
        ax.minorticks_off()
        for train in sorted({int(n) for n in frame["seq_len"]}):
            ax.axvline(train, color="0.5", linestyle=":", linewidth=1)
    return plotting.save(
        fig,
        folder,
        "length_extrapolation",
        title,
        "Test accuracy at every tested length (log2 axis) of models trained at the dotted "
        "length(s); mean over seeds with 95% t-interval bands. Lengths over the KV-cache cap "
        "(attention) are recorded oom and have no point.",
    )


def task_panels(
    data: pd.DataFrame,
    tasks: list[str],
    x: str,
    y: str,
    xlabel: str,
    split_by: list[str],
    colours: dict,
):
    """One panel per task: a line per architecture (log x), and a line style per value of the
    `split_by` columns that vary within the task, so different settings are never averaged."""
    fig, axes = plotting.grid(len(tasks), width=6.0, height=3.4, max_cols=1)
    for ax, task in zip(axes, tasks, strict=True):
        frame = data[data["task"] == task].copy()
        varying = [c for c in split_by if frame[c].nunique() > 1]
        style = None
        if varying:
            style = ", ".join(AXES[c] for c in varying)
            frame[style] = frame[varying].astype(str).agg(", ".join, axis=1)
        sns.lineplot(
            data=frame,
            x=x,
            y=y,
            hue="arch",
            style=style,
            marker="o",
            errorbar=ci_band,
            palette=colours,
            ax=ax,
        )
        ax.set(xscale="log", title=str(task), xlabel=xlabel, ylabel="test accuracy", ylim=(0, 1.02))
        plotting.plain_log_ticks(ax, frame[x])
        plotting.legend_right(ax)
    return fig
