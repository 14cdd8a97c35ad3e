"""The comparisons findings are made of, each from the seeds' accuracy intervals.

Every rule first checks what it needs (seeds, budget) and then reads only interval bounds and
means, with the margins of `base.MARGINS`:

- `above(a, b)`: a is far above b. Supported when a's interval lies wholly above b's and the
  means differ by at least `far`; contradicted when even a's upper bound exceeds b's lower
  bound by less than `far` (no reading of the intervals leaves a far above b).
- `close(a, b)`: a is close to b. Supported when the means differ by at most `close` and the
  intervals overlap; contradicted when b's lower bound exceeds a's upper bound by more than
  `close`.
- `at_least(a, level)` / `below(a, level)`: a's interval wholly at or above / below a level;
  the opposite side for contradicted.

`gate` turns any of these into "inconclusive" when a configuration has fewer than
`min_seeds` ok seeds, and into "inconclusive: budget" when a run it needs was still improving
at the end of its budget, whatever the intervals say: a verdict is never drawn from a run
that had not finished learning.
"""

from __future__ import annotations

from collections.abc import Sequence

from seqbench.harness.findings.base import (
    BUDGET,
    CONTRADICTED,
    INCONCLUSIVE,
    MARGINS,
    NOT_MEASURED,
    SUPPORTED,
)
from seqbench.harness.findings.evidence import Config


def above(a: Config, b: Config, length: int | None = None) -> str:
    ca, cb = a.accuracy(length), b.accuracy(length)
    (a_low, a_high), (b_low, b_high) = ca.bounds(), cb.bounds()
    if a_low > b_high and ca.mean - cb.mean >= MARGINS.far:
        return SUPPORTED
    if a_high - b_low < MARGINS.far:
        return CONTRADICTED
    return INCONCLUSIVE


def close(a: Config, b: Config, length: int | None = None) -> str:
    ca, cb = a.accuracy(length), b.accuracy(length)
    (a_low, a_high), (b_low, b_high) = ca.bounds(), cb.bounds()
    if abs(ca.mean - cb.mean) <= MARGINS.close and a_low <= b_high and b_low <= a_high:
        return SUPPORTED
    if b_low - a_high > MARGINS.close:
        return CONTRADICTED
    return INCONCLUSIVE


def at_least(a: Config, level: float, length: int | None = None) -> str:
    low, high = a.accuracy(length).bounds()
    if low >= level:
        return SUPPORTED
    if high < level:
        return CONTRADICTED
    return INCONCLUSIVE


def below(a: Config, level: float, length: int | None = None) -> str:
    low, high = a.accuracy(length).bounds()
    if high < level:
        return SUPPORTED
    if low >= level:
        return CONTRADICTED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """All parts of one setting's rule: contradicted beats inconclusive beats supported."""
    if not verdicts:
        return NOT_MEASURED
    for verdict in (NOT_MEASURED, CONTRADICTED, BUDGET, INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return SUPPORTED


def gate(configs: Sequence[Config], verdict: str) -> str:
    """The verdict, unless a configuration has too few seeds or was still improving."""
    if any(c.improving for c in configs):
        return BUDGET
    if any(c.n_ok < MARGINS.min_seeds for c in configs):
        return INCONCLUSIVE
    return verdict


def across_settings(verdicts: Sequence[str]) -> str:
    """A finding's verdict from its settings' (see `base` for the policy)."""
    measured = [v for v in verdicts if v != NOT_MEASURED]
    if not measured:
        return NOT_MEASURED
    if CONTRADICTED in measured:
        return CONTRADICTED
    if BUDGET in measured:
        return BUDGET
    if INCONCLUSIVE in measured or len(measured) < MARGINS.min_settings:
        return INCONCLUSIVE
    return SUPPORTED
