"""Leaderboard per task: test scores over seeds with 95% t-intervals, at the validation-picked lr.

One row per configuration (architecture plus whatever else varies within the task: length,
width, knobs...). The learning rate of each row was chosen by
`seqbench.harness.store.select_best_lr`
on mean validation accuracy; test numbers never take part in that choice.
"""

from __future__ import annotations

import pandas as pd

from seqbench.architectures.param_match import REFERENCE
from seqbench.harness.report import fmt
from seqbench.harness.report.data import ReportData
from seqbench.harness.report.document import Paragraph, Section, Table
from seqbench.harness.report.intervals import METHOD, accuracy_ci
from seqbench.harness.store import group_columns

N1_POLICY = (
    METHOD + " A configuration with one ok seed shows its value marked (n=1) and no interval: "
    "one seed says nothing about the spread."
)


def leaderboard_section(data: ReportData) -> Section:
    section = Section("Leaderboard")
    if data.runs.empty:
        section.blocks.append(Paragraph("No training runs in this folder (profile records only)."))
        return section
    section.blocks.append(
        Paragraph(
            "Accuracy on held-out test data at the training length (token accuracy on scored "
            "positions) and exact match per sequence. The learning rate of each row was picked "
            "on validation accuracy (a run that failed counts as 0); the test split plays no "
            "part in it. " + N1_POLICY
        )
    )
    if data.superseded:
        section.blocks.append(
            Paragraph(
                f"{len(data.superseded)} configurations were recorded under more than one "
                "definition (a preset's recipe or a task's generator changed between runs); "
                "only the newest definition's runs are used: "
                + "; ".join(data.superseded[:5])
                + (" …" if len(data.superseded) > 5 else "")
            )
        )
    for task, best in data.best.groupby("task", sort=True):
        tried = data.runs[data.runs["task"] == task]
        section.subsections.append(Section(str(task), [task_table(best, tried)]))
    return section


COLUMN_LABELS = {"seq_len": "train length", "d_model": "width", "n_layers": "layers"}


def label(column: str) -> str:
    """Header of a configuration column: plain words for spec fields, knob/override names as
    they are written in suites ("knob.num_pairs", "set.attention.n_kv_heads")."""
    return COLUMN_LABELS.get(column, column)


def rate_ci(ok: pd.DataFrame, column: str):
    """Interval of an accuracy-like column over seeds, counting each seed's test sequences
    (`test_examples`) as its sample size (`seqbench.harness.report.intervals`)."""
    examples = ok["test_examples"] if "test_examples" in ok else [None] * len(ok)
    values = [None if v is None or v != v else float(v) for v in ok[column]]
    return accuracy_ci(values, [None] * len(values), list(examples))


def varying_columns(frame: pd.DataFrame) -> list[str]:
    """Configuration columns besides task and arch that take more than one value here; "not
    set" counts as a value (an override only some runs of an architecture carry)."""
    keys = [c for c in group_columns(frame) if c not in ("task", "arch")]
    return [c for c in keys if frame[c].astype(str).nunique(dropna=False) > 1]


BUDGET_TOLERANCE = 0.05  # presets are matched to mha within ±5% (architectures/param_match.py)


def reference_budget(best: pd.DataFrame) -> dict[tuple[int, int], int]:
    """Active parameters of the reference architecture at each (width, depth) in this table."""
    ref = best[best["arch"] == REFERENCE].dropna(subset=["params_active", "d_model", "n_layers"])
    return {
        (int(r.d_model), int(r.n_layers)): int(r.params_active)
        for r in ref.drop_duplicates(["d_model", "n_layers"]).itertuples()
    }


def budget_flag(group: pd.DataFrame, budget: dict[tuple[int, int], int]) -> str:
    """ " ⚠ +13% vs mha" when a row's active parameters are off the reference's by more than
    the tolerance at the same width (depths differ for hybrids; the width decides)."""
    first = group.iloc[0]
    if pd.isna(first["params_active"]) or first["arch"] == REFERENCE:
        return ""
    refs = [v for (d, _), v in budget.items() if d == first["d_model"]]
    if not refs:
        return ""
    ratio = float(first["params_active"]) / refs[0]
    if abs(ratio - 1) <= BUDGET_TOLERANCE:
        return ""
    return f" ⚠ {ratio - 1:+.0%} vs {REFERENCE}"


def code_versions(group: pd.DataFrame) -> str:
    """Which seqbench version and commit produced a row's runs ("0.1.0@1a2b3c4", joined by
    " + " when its seeds come from several)."""
    versions = group.get("env_seqbench", pd.Series(index=group.index, dtype=object))
    commits = group.get("git_commit", pd.Series(index=group.index, dtype=object))
    seen = dict.fromkeys(
        f"{v if isinstance(v, str) else '?'}@{c[:7] if isinstance(c, str) else '?'}"
        for v, c in zip(versions, commits, strict=True)
    )
    return " + ".join(seen)


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def matches(column: pd.Series, value: object) -> pd.Series:
    """Rows whose `column` equals a group key; a missing key (a knob or override only some
    runs set) matches the rows where it is missing, whether stored as None or NaN."""
    if is_missing(value):
        return column.map(is_missing)
    return column.astype(str) == str(value)


def task_table(best: pd.DataFrame, tried: pd.DataFrame) -> Table:
    extra = varying_columns(best)
    keys = ["arch", *extra]
    longer = best["longest_len"].fillna(best["seq_len"]) > best["seq_len"]
    budget = reference_budget(best)
    rows = []
    for key, group in best.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        ok = group[group["status"] == "ok"]
        same = tried
        for column, value in zip(keys, key, strict=True):
            same = same[matches(same[column], value)]
        test = rate_ci(ok, "test_accuracy")
        row = {
            "_sort": -test.mean if test.n else float("inf"),
            "architecture": str(key[0]),
            **{label(c): fmt.values([v]) for c, v in zip(extra, key[1:], strict=True)},
            "lr (of tried)": f"{fmt.num(group['lr'].iloc[0])} (of {same['lr'].nunique()})",
            "ok seeds": f"{len(ok)}/{len(group)}",
            "val acc": fmt.fixed(ok["val_accuracy"].mean()) if len(ok) else "–",
            "test acc": test.format(),
            "exact match": rate_ci(ok, "test_exact_match").format(),
        }
        if longer.any():
            longest = ok["longest_len"].max() if len(ok) else None
            at_longest = rate_ci(ok, "test_accuracy_longest").format() if len(ok) else "–"
            row["acc at longest test length"] = f"{at_longest} @ {fmt.num(longest)}"
        row["params"] = fmt.num(group["params_total"].iloc[0])
        row["active"] = fmt.num(group["params_active"].iloc[0]) + budget_flag(group, budget)
        row["code"] = code_versions(group)
        rows.append(row)
    rows.sort(key=lambda r: r["_sort"])
    headers = [h for h in rows[0] if h != "_sort"]
    numeric = [h not in ("architecture", "lr (of tried)", "code") for h in headers]
    return Table(
        headers,
        [[r[h] for h in headers] for r in rows],
        f"{best['task'].iloc[0]}: mean [95% interval] over seeds, best test accuracy first",
        numeric,
    )
