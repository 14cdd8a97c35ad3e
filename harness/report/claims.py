"""The claims check: textbook statements about these architectures, tested against records.

Each claim gets a verdict computed by a fixed rule from measured (or counted) numbers:
supported, contradicted, or not measured when the folder lacks the records the rule needs.
The thresholds live here, named, so that the report, docs/report.md and the tests all refer
to the same numbers; a verdict never depends on anything but the records and these constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Thresholds:
    """The numeric rules behind the verdicts (docs/report.md explains each choice)."""

    # KV cache: MHA's state bytes ÷ GQA/MQA's within this relative distance of heads ÷ kv-heads.
    kv_ratio_tolerance: float = 0.05
    # Log-log exponents over the longest half of the lengths: ≥ 1.5 (closer to 2 than to 1)
    # counts as quadratic; ≤ 1.2 as linear (allows lower-order terms and timing noise).
    quadratic_min_slope: float = 1.5
    linear_max_slope: float = 1.2
    min_slope_points: int = 3
    # Constant decode state: largest ÷ smallest state bytes ≤ this over contexts that span at
    # least `min_context_span` (max ÷ min context).
    constant_max_ratio: float = 1.01
    min_context_span: float = 4.0
    # Parallel training: processing a whole sequence at once (prefill) at least this many
    # times faster per token than stepping through it one token at a time, judged at contexts
    # of at least `parallel_min_context` tokens (shorter prefills are dominated by overheads).
    parallel_min_speedup: float = 4.0
    parallel_min_context: int = 1024
    # Flat MoE compute: FLOPs per token, largest ÷ smallest across expert counts at fixed k.
    flat_max_ratio: float = 1.10
    # GQA vs MHA quality on recall: MHA's mean test accuracy minus GQA's at most this, judged
    # only where MHA itself learned the task (mean accuracy ≥ learned_min).
    quality_max_gap: float = 0.02
    learned_min: float = 0.5


THRESHOLDS = Thresholds()


@dataclass
class Claim:
    statement: str
    verdict: str
    evidence: list[str] = field(default_factory=list)
    rule: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in (SUPPORTED, CONTRADICTED, NOT_MEASURED):
            raise ValueError(f"unknown verdict {self.verdict!r}")


def judge(ok: bool) -> str:
    return SUPPORTED if ok else CONTRADICTED
