"""The comparisons findings are made of, each from the seeds' accuracy intervals.

Every rule first checks what it needs (seeds, budget) and then reads only interval bounds and
means, with the margins of `base.MARGINS`:

- `above(a, b)`: a is far above b. Supported when a's interval lies wholly above b's and the
  means differ by at least `far`; contradicted when even a's upper bound exceeds b's lower
  bound by less than `far` (no reading of the intervals leaves a far above b).
- `close(a, b)`: a is close to b. Supported when the means differ by at most `close` and the
  intervals overlap; contradicted when b's lower bound exceeds a's upper bound by more than
  `close`.
- `not_below(a, b)`: a is at least as good as b ("a ≥ b"): supported when a's mean is no more
  than `close` under b's and the intervals overlap or a's lies above; contradicted when b's
  lower bound exceeds a's upper bound by more than `close`.
- `gap_grows(a_few, b_few, a_many, b_many)`: a's lead over b is larger in the harder setting
  by at least `far`, from the most and least favourable ends of the four intervals.
- `at_least(a, level)` / `below(a, level)`: a's interval wholly at or above / below a level;
  the opposite side for contradicted.

Each reads a configuration's `score`: accuracy, or scaled accuracy for a configuration the
finding rescaled (`Config.rescaled`, state tracking).

`gate` turns any of these into "inconclusive" when a configuration has fewer than
`min_seeds` ok seeds, and into "inconclusive: budget" when a run it needs was still improving
at the end of its budget, whatever the intervals say: a verdict is never drawn from a run
that had not finished learning — unless its budget was calibrated (harness/calibration.py):
a run that trained the whole multiple of what the setting's reference needed to solve has had
the protocol's budget, and "not learnt within 3x the reference's steps" is the claim then.
`gate_above` reads a "far above" in one direction: a supported verdict waits only on the lower
side, since the upper one still learning can only widen the gap.
"""

from __future__ import annotations

from collections.abc import Sequence

from seqbench.harness.findings.base import (
    BUDGET,
    CONTRADICTED,
    INCONCLUSIVE,
    MARGINS,
    NOT_AT_CONDITION,
    NOT_MEASURED,
    SUPPORTED,
)
from seqbench.harness.findings.evidence import Config


def above(a: Config, b: Config, length: int | None = None) -> str:
    ca, cb = a.score(length), b.score(length)
    (a_low, a_high), (b_low, b_high) = ca.bounds(), cb.bounds()
    if a_low > b_high and ca.mean - cb.mean >= MARGINS.far:
        return SUPPORTED
    if a_high - b_low < MARGINS.far:
        return CONTRADICTED
    return INCONCLUSIVE


def close(a: Config, b: Config, length: int | None = None) -> str:
    ca, cb = a.score(length), b.score(length)
    (a_low, a_high), (b_low, b_high) = ca.bounds(), cb.bounds()
    if abs(ca.mean - cb.mean) <= MARGINS.close and a_low <= b_high and b_low <= a_high:
        return SUPPORTED
    if b_low - a_high > MARGINS.close:
        return CONTRADICTED
    return INCONCLUSIVE


def not_below(a: Config, b: Config, length: int | None = None) -> str:
    ca, cb = a.score(length), b.score(length)
    a_high, b_low = ca.bounds()[1], cb.bounds()[0]
    if b_low - a_high > MARGINS.close:
        return CONTRADICTED
    if ca.mean >= cb.mean - MARGINS.close and a_high >= b_low:
        return SUPPORTED
    return INCONCLUSIVE


def gap_grows(a_few: Config, b_few: Config, a_many: Config, b_many: Config) -> str:
    """(a − b) at `many` exceeds (a − b) at `few` by ≥ `far`: supported when even the least
    favourable ends of the intervals give a growth above 0 and the means give ≥ `far`;
    contradicted when even the most favourable ends give less than `far`."""
    (af_lo, af_hi), (bf_lo, bf_hi) = a_few.score().bounds(), b_few.score().bounds()
    (am_lo, am_hi), (bm_lo, bm_hi) = a_many.score().bounds(), b_many.score().bounds()
    mean = (a_many.score().mean - b_many.score().mean) - (
        a_few.score().mean - b_few.score().mean
    )
    if (am_lo - bm_hi) - (af_hi - bf_lo) > 0 and mean >= MARGINS.far:
        return SUPPORTED
    if (am_hi - bm_lo) - (af_lo - bf_hi) < MARGINS.far:
        return CONTRADICTED
    return INCONCLUSIVE


def at_least(a: Config, level: float, length: int | None = None) -> str:
    low, high = a.score(length).bounds()
    if low >= level:
        return SUPPORTED
    if high < level:
        return CONTRADICTED
    return INCONCLUSIVE


def below(a: Config, level: float, length: int | None = None) -> str:
    low, high = a.score(length).bounds()
    if high < level:
        return SUPPORTED
    if low >= level:
        return CONTRADICTED
    return INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """All parts of one setting's rule: contradicted beats inconclusive beats supported;
    parts not at the paper's condition count only when no other part does."""
    judged = [v for v in verdicts if v != NOT_AT_CONDITION]
    if not judged:
        return NOT_AT_CONDITION if verdicts else NOT_MEASURED
    verdicts = judged
    for verdict in (NOT_MEASURED, CONTRADICTED, BUDGET, INCONCLUSIVE):
        if verdict in verdicts:
            return verdict
    return SUPPORTED


def gate(configs: Sequence[Config], verdict: str, rising_ok: Sequence[Config] = ()) -> str:
    """The verdict, unless a configuration has too few seeds or was still improving.

    `rising_ok` are configurations whose further learning cannot overturn `verdict` (the upper
    side of a supported "far above": more training only widens the gap); their unfinished
    learning withholds nothing."""
    waiting = [c for c in configs if all(c is not r for r in rising_ok)]  # by identity
    if any(c.improving and not c.calibrated for c in waiting):
        return BUDGET
    if any(c.n_ok < MARGINS.min_seeds for c in configs):
        return INCONCLUSIVE
    return verdict


def gate_above(pairs: Sequence[tuple[Config, Config]], verdict: str) -> str:
    """`gate` for "each upper far above its lower" over (upper, lower) pairs: a supported
    verdict waits only on the lower sides' learning; any other verdict on both sides'."""
    configs = [c for pair in pairs for c in pair]
    # a configuration that is also some pair's lower side keeps waiting for that pair
    upper = [u for u, _ in pairs if all(u is not lower for _, lower in pairs)]
    return gate(configs, verdict, upper if verdict == SUPPORTED else ())


def across_settings(verdicts: Sequence[str]) -> str:
    """A finding's verdict from its settings' (see `base` for the policy): settings not at
    the paper's condition count for nothing, unless no setting is."""
    measured = [v for v in verdicts if v not in (NOT_MEASURED, NOT_AT_CONDITION)]
    if not measured:
        return NOT_AT_CONDITION if NOT_AT_CONDITION in verdicts else NOT_MEASURED
    if CONTRADICTED in measured:
        return CONTRADICTED
    if BUDGET in measured:
        return BUDGET
    if INCONCLUSIVE in measured or len(measured) < MARGINS.min_settings:
        return INCONCLUSIVE
    return SUPPORTED
