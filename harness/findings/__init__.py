"""Published findings as checked claims: the registry (`catalog.FINDINGS`) and their verdicts.

`judge_findings(best, records)` applies every finding's rule to a folder's runs at the picked
learning rate; `seqbench list findings` prints the registry and the report's "Published
findings" section prints the verdicts (docs/findings.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from seqbench.harness.findings.base import Finding, Outcome
from seqbench.harness.findings.catalog import FINDINGS
from seqbench.harness.findings.evidence import budget_text, collapse_text
from seqbench.harness.findings.rules import across_settings
from seqbench.harness.findings.select import Evidence


@dataclass
class FindingResult:
    finding: Finding
    verdict: str
    settings: list[Outcome]
    budget: str
    collapsed: str = ""  # seeds whose final model lost what it had learnt (protocol.collapse)


def judge_findings(best: pd.DataFrame, records: list[dict[str, Any]]) -> list[FindingResult]:
    """Every registered finding's verdict from the runs at the picked lr (`best`)."""
    evidence = Evidence(best, {r["run_id"]: r for r in records if r.get("kind") == "run"})
    results = []
    for finding in FINDINGS:
        outcomes = finding.judge(evidence)
        verdict = across_settings([o.verdict for o in outcomes])
        settings = evidence.settings(finding.tasks)
        configs = [c for s in settings for c in s.configs.values()]
        budget = budget_text(configs)
        results.append(
            FindingResult(finding, verdict, outcomes, budget or "–", collapse_text(configs))
        )
    return results


def finding_rows() -> list[dict[str, str]]:
    """The registry for `seqbench list findings`."""
    return [
        {
            "name": f.name,
            "citation": f.citation,
            "suite": ", ".join(f.suites),
            "statement": f.statement,
        }
        for f in FINDINGS
    ]


__all__ = ["FINDINGS", "Finding", "FindingResult", "finding_rows", "judge_findings"]
