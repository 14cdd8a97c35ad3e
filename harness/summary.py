"""The table `seqbench run` prints at the end: one line per configuration, seeds averaged."""

from __future__ import annotations

import pandas as pd

from seqbench.harness.store import group_columns

SHOWN = ["task", "arch", "seq_len", "d_model", "lr"]


def summary_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean validation/test accuracy over seeds per configuration, with run and ok counts.

    Besides task/arch/length/width/lr, any other spec column that varies within one (task,
    arch) becomes a key too, so different configurations are never averaged together; knobs
    that merely differ between tasks, or settings of one architecture, are not shown.
    """
    keys = [c for c in SHOWN if c in frame.columns]
    keys += [c for c in group_columns(frame) if c not in SHOWN and _varies(frame, c)]
    ok = frame.assign(ok=frame["status"] == "ok")
    # When the step budget is itself a key (budgets differ within one task and architecture),
    # the steps actually run get their own name beside it.
    run = "steps_run" if "steps" in keys else "steps"
    table = ok.groupby(keys, dropna=False, sort=True).agg(
        runs=("run_id", "count"),
        ok=("ok", "sum"),
        **{run: ("steps_run", "mean")},
        val_acc=("val_accuracy", "mean"),
        test_acc=("test_accuracy", "mean"),
        longest=("longest_len", "max"),
        test_acc_longest=("test_accuracy_longest", "mean"),
        wall_s=("wall_s", "sum"),
    )
    table = table.reset_index()
    for column in (run, "longest"):
        table[column] = table[column].round().astype("Int64")  # whole numbers print as such
    if (table["longest"] == table["seq_len"]).all():
        table = table.drop(columns=["longest", "test_acc_longest"])
    return table


def _varies(frame: pd.DataFrame, column: str) -> bool:
    counts = frame.groupby(["task", "arch"])[column].nunique(dropna=False)
    return bool((counts > 1).any())


def summary_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "no runs recorded"
    text = summary_frame(frame).to_string(index=False, float_format=lambda v: f"{v:.3f}")
    failures = frame[frame["status"] != "ok"]
    if not failures.empty:
        lines = [
            f"  {r.status:<8} {r.arch} {r.task} seed {r.seed}: {r.reason}"
            for r in failures.itertuples()
        ]
        text += "\n\nnot ok:\n" + "\n".join(lines)
    return text
