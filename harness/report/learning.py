"""How fast each architecture learns: learning curves and a sample-efficiency table.

Both read the learning curve every run record keeps (validation accuracy at each check, with
the training tokens seen so far) at the lr picked on validation. The table tells "cannot"
from "has not yet": seeds solved, tokens to 0.9 and 0.99, and seeds still improving when the
budget ran out (`seqbench.harness.protocol`).
"""

from __future__ import annotations

import math
from pathlib import Path

from seqbench.harness.findings.select import Evidence
from seqbench.harness.protocol import SOLVED, collapse, still_improving
from seqbench.harness.report import plotting
from seqbench.harness.report.data import ReportData
from seqbench.harness.report.document import Block, Paragraph, Section, Skipped, Table

MAX_PANELS = 24


def learning_section(data: ReportData, figures: Path) -> Section:
    if data.best_ok.empty:
        reason = "no ok training runs in this folder"
        return Section("Learning", [Skipped("Learning curves", reason)])
    evidence = Evidence(data.best, {r["run_id"]: r for r in data.records if r["kind"] == "run"})
    settings = evidence.settings(sorted(data.best_ok["task"].astype(str).unique()))
    return Section(
        "Learning",
        [
            Paragraph(
                f"A run is solved at validation accuracy ≥ {SOLVED} and stops there (early_stop); "
                "'still improving' marks unsolved seeds that gained in the last quarter of their "
                "budget — what they show is a budget, not a limit of the architecture; "
                "'collapsed' marks seeds whose final accuracy fell far below their best (the "
                "final model is the one tested)."
            ),
            curves_figure(settings, figures),
            efficiency_table(settings),
        ],
    )


def curves_figure(settings, folder: Path) -> Block:
    title = "Learning curves"
    shown = [s for s in settings if any(c.curves() for c in s.configs.values())][:MAX_PANELS]
    if not shown:
        return Skipped(title, "no run recorded a learning curve")
    names = sorted({n for s in shown for n in s.configs})
    colours = plotting.palette(names)
    fig, axes = plotting.grid(len(shown), width=4.6, height=3.2, max_cols=3)
    for ax, setting in zip(axes, shown, strict=False):
        for name, config in setting.configs.items():
            for k, curve in enumerate(config.curves()):
                xs = [p.get("tokens") or 0 for p in curve if p.get("accuracy") is not None]
                ys = [p["accuracy"] for p in curve if p.get("accuracy") is not None]
                if not xs:
                    continue
                ax.plot(xs, ys, color=colours[name], linewidth=1, alpha=0.8,
                        label=name if k == 0 else None)  # fmt: skip
        ax.set(title=setting.label, xlabel="training tokens", ylabel="val accuracy", ylim=(0, 1.02))
        ax.axhline(SOLVED, color="0.6", linestyle=":", linewidth=1)
        ax.legend(fontsize=7)
    return plotting.save(
        fig,
        folder,
        "learning_curves",
        title,
        "Validation accuracy against training tokens, one line per seed at the picked lr "
        f"(dotted: the solved threshold {SOLVED}).",
    )


def efficiency_table(settings) -> Table:
    rows = []
    for setting in settings:
        for name, config in setting.configs.items():
            curves = config.curves()
            if not curves:
                continue
            rows.append(
                [
                    setting.label,
                    name,
                    f"{config.solved_seeds}/{len(curves)}",
                    _tokens(config.tokens_to(0.9)),
                    _tokens(config.tokens_to(0.99)),
                    f"{sum(still_improving(c) for c in curves)}/{len(curves)}",
                    f"{sum(collapse(c) is not None for c in curves)}/{len(curves)}",
                    config.budget(),
                ]
            )
    return Table(
        [
            "setting",
            "architecture",
            "solved seeds",
            "tokens to 0.9",
            "tokens to 0.99",
            "still improving",
            "collapsed",
            "budget",
        ],
        rows,
        "Sample efficiency: median training tokens over seeds to reach validation accuracy "
        "0.9 / 0.99 ('never' when most seeds did not within the budget)",
        [False, False, True, True, True, True, True, False],
    )


def _tokens(value: float) -> str:
    if math.isnan(value):
        return "–"
    return "never" if math.isinf(value) else f"{value:,.0f}"
