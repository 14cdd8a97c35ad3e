"""The report's sections besides setup and leaderboard: figures, claims, failures."""

from __future__ import annotations

from pathlib import Path

from seqbench.harness.report.claim_checks import all_claims
from seqbench.harness.report.claims import THRESHOLDS
from seqbench.harness.report.data import ReportData, spec_label
from seqbench.harness.report.document import Bullets, Paragraph, Section, Table
from seqbench.harness.report.figures_efficiency import efficiency_figures
from seqbench.harness.report.figures_quality import quality_figures

REASON_LIMIT = 300


def quality_section(data: ReportData, figures: Path) -> Section:
    return Section("Quality", quality_figures(data.best_ok, data.lengths, figures))


def efficiency_section(data: ReportData, figures: Path) -> Section:
    runs_ok = data.runs[data.runs["status"] == "ok"] if not data.runs.empty else data.runs
    return Section("Efficiency", efficiency_figures(data.profile, runs_ok, figures))


def claims_section(data: ReportData) -> Section:
    claims = all_claims(data)
    table = Table(
        ["claim", "evidence", "verdict"],
        [[c.statement, "; ".join(c.evidence), c.verdict] for c in claims],
        "Each verdict is computed from the records by the rule below; 'not measured' names the "
        "records it would need.",
    )
    t = THRESHOLDS
    rules = Bullets([f"{c.statement} — {c.rule}" for c in claims])
    why = Paragraph(
        f"Why these thresholds: an exponent of {t.quadratic_min_slope} is half-way between linear "
        f"and quadratic, so a model at or above it is closer to L² than to L; {t.linear_max_slope} "
        "leaves room for lower-order terms and timing noise over a linear law. Exponents are "
        "fitted over the longest half of the lengths, where the leading term dominates. The "
        f"±{t.kv_ratio_tolerance:.0%} on the KV-cache ratio and the {t.flat_max_ratio}× on MoE "
        "FLOPs leave room for bytes and FLOPs that do not scale with heads or experts (position "
        "counters, the router)."
    )
    return Section("Claims", [table, Paragraph("Rules:"), rules, why])


def failures_section(data: ReportData) -> Section:
    """Every record not ok; profile points skipped for their budget (never run) apart."""
    bad = [r for r in data.records if r["status"] not in ("ok", "skipped")]
    skipped = [r for r in data.records if r["status"] == "skipped"]
    if not bad and not skipped:
        return Section("Failures", [Paragraph(f"All {len(data.records)} records are ok.")])
    parts: list = []
    if bad:
        parts.append(
            Table(
                ["run id", "kind", "what", "status", "reason"],
                [[*_described(r)[:3], r["status"], _described(r)[3]] for r in _sorted(bad)],
                f"{len(bad)} of {len(data.records)} records are not ok",
            )
        )
    else:
        parts.append(Paragraph(f"No record of {len(data.records)} failed."))
    if skipped:
        parts.append(
            Table(
                ["run id", "kind", "what", "reason"],
                [_described(r) for r in _sorted(skipped)],
                f"{len(skipped)} profile points were skipped, not run (no failure: their time "
                "budget, or a shorter point of their series, stopped them)",
            )
        )
    return Section("Failures", parts)


def _sorted(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r["kind"], r["status"], spec_label(r["spec"], r["kind"])))


def _described(record: dict) -> list[str]:
    """run id, kind, what it was, and its reason (cut to REASON_LIMIT)."""
    reason = (record.get("reason") or "(no reason recorded)")[:REASON_LIMIT]
    return [record["run_id"], record["kind"], spec_label(record["spec"], record["kind"]), reason]
