"""The report's lead: a one-figure summary and the published findings' verdicts.

The summary heat map shows every architecture × task setting (test accuracy at the training
length, at the lr picked on validation) with its interval; the findings table right below it
says what the literature expects, what the records show, and the verdict with its budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqbench.harness.findings import FINDINGS, judge_findings
from seqbench.harness.findings.base import MARGINS
from seqbench.harness.findings.select import Evidence
from seqbench.harness.protocol import (
    COLLAPSE_DROP,
    IMPROVING_MIN_GAIN,
    IMPROVING_WINDOW,
    SOLVED,
)
from seqbench.harness.report import plotting
from seqbench.harness.report.data import ReportData
from seqbench.harness.report.document import Block, Bullets, Paragraph, Section, Skipped, Table
from seqbench.harness.report.intervals import METHOD

SUMMARY_TITLE = "Accuracy summary"


def evidence(data: ReportData) -> Evidence:
    return Evidence(data.best, {r["run_id"]: r for r in data.records if r["kind"] == "run"})


def summary_section(data: ReportData, figures: Path) -> Section:
    """The one-figure summary plus the verdict of each finding, one line each."""
    blocks: list[Block] = [summary_figure(data, figures)]
    if not data.runs.empty:
        results = judge_findings(data.best, data.records)
        blocks.append(
            Table(
                ["finding", "verdict", "budget"],
                [[r.finding.name, r.verdict, r.budget] for r in results],
                "Published findings at a glance (details in the next section)",
            )
        )
    return Section("Summary", blocks)


def summary_figure(data: ReportData, folder: Path) -> Block:
    if data.best_ok.empty:
        return Skipped(SUMMARY_TITLE, "no ok training runs in this folder")
    settings = evidence(data).settings(sorted(data.best_ok["task"].astype(str).unique()))
    if not settings:
        return Skipped(SUMMARY_TITLE, "no ok run records its length, steps and batch size")
    columns = [s.label for s in settings]
    rows = sorted({name for s in settings for name in s.configs})
    means = np.full((len(rows), len(columns)), np.nan)
    texts = [["" for _ in columns] for _ in rows]
    for j, setting in enumerate(settings):
        for name, config in setting.configs.items():
            ci = config.accuracy()
            if ci.n == 0:
                continue
            i = rows.index(name)
            means[i, j] = ci.mean
            texts[i][j] = f"{ci.mean:.2f}" + (
                f"\n[{ci.low:.2f},{ci.high:.2f}]" if ci.has_interval else "\nn=1"
            )
    width = min(24.0, 2.0 + 1.3 * len(columns))
    fig, axes = plotting.grid(1, width=width, height=1.2 + 0.55 * len(rows), max_cols=1)
    ax = axes[0]
    image = ax.imshow(means, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            if texts[i][j]:
                dark = not np.isnan(means[i, j]) and means[i, j] > 0.6
                ax.text(j, i, texts[i][j], ha="center", va="center", fontsize=7,
                        color="black" if dark else "white")  # fmt: skip
    ax.set_xticks(range(len(columns)), columns, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="test accuracy", fraction=0.03)
    return plotting.save(
        fig,
        folder,
        "summary_heatmap",
        SUMMARY_TITLE,
        "Test accuracy at the training length for every architecture (rows) and task setting "
        "(columns), mean over seeds at the lr picked on validation, with its 95% interval. "
        + METHOD,
    )


def findings_section(data: ReportData) -> Section:
    if data.runs.empty:
        return Section("Published findings", [Paragraph("No training runs in this folder.")])
    results = judge_findings(data.best, data.records)
    rows = []
    for result in results:
        observed = " | ".join(
            f"{o.setting}: {o.observed} → {o.verdict}" if o.setting else o.observed
            for o in result.settings
        )
        if result.collapsed:
            observed += f" | collapsed late (the final model is judged): {result.collapsed}"
        rows.append(
            [
                f"{result.finding.name} ({result.finding.citation})",
                result.finding.expected,
                observed or "no runs of its tasks",
                result.verdict,
                result.budget,
            ]
        )
    table = Table(
        ["finding", "expected", "observed (per setting, 95% intervals)", "verdict", "budget"],
        rows,
        "Each finding of the registry (seqbench list findings) judged on this folder's runs",
    )
    rules = Bullets([f"{f.name}: {f.statement} Grid: {f.grid}. Rule: {f.rule}." for f in FINDINGS])
    policy = Paragraph(
        "Verdicts: supported when the rule holds at every judged setting and at "
        f"{MARGINS.min_settings} settings at least; contradicted when the intervals exclude the "
        "expected ordering at a setting; inconclusive when they overlap, when a configuration "
        f"has fewer than {MARGINS.min_seeds} ok seeds, or when one setting alone could be "
        "judged; 'inconclusive: budget' when a run the rule needs was still improving at the "
        f"end of its budget (not solved — validation accuracy < {SOLVED} — and its last "
        f"{1 - IMPROVING_WINDOW:.0%} of steps gained more than {IMPROVING_MIN_GAIN} accuracy); "
        "'not measured' when the folder lacks the runs. A seed whose final validation accuracy "
        f"is more than {COLLAPSE_DROP} below its best is named as collapsed: the rules read the "
        "final model, as every record's test does. " + METHOD
    )
    return Section("Published findings", [table, policy, Paragraph("Rules:"), rules])
