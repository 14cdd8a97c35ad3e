"""Accuracy intervals that live in [0, 1] and use the test examples as well as the seeds.

A Student-t interval on raw accuracies (mean ± t·s/√n) can run past 0 and 1 and, with two
seeds, be several units wide ("0.662 ± 4.273"). Accuracies are proportions, so the interval
is built where proportions are unbounded, on the logit scale:

1. each seed's accuracy a becomes its empirical logit, log((a·n + ½) / ((1 − a)·n + ½)) with
   n the seed's test sequences (the ½ keeps 0 and 1 finite; sequences, not scored positions,
   because positions of one sequence are not independent, and a count of positions would put
   a perfect seed so far out on the logit scale that three seeds at 0.99-1.0 would get an
   interval reaching down to 0.75);
2. a two-sided 95% Student-t interval over the seeds' logits (n_seeds − 1 degrees of freedom)
   — the spread between seeds includes each seed's test-sampling noise;
3. back through the logistic function, so the bounds lie in (0, 1);
4. widened to contain the pooled Wilson score interval of all seeds' test examples, counting
   sequences rather than positions (positions of one sequence are not independent): seeds that
   agree exactly still leave the uncertainty of a finite test set.

One seed gets no interval (there is no spread to estimate), as everywhere in the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from seqbench.harness.common.scaling import CONFIDENCE, t_quantile

METHOD = (
    "95% intervals on accuracies are logit-scale Student-t intervals over seeds (each seed's "
    "accuracy as the empirical logit over its test sequences, +½), back-transformed to "
    "[0, 1] and widened to contain the pooled Wilson interval over the seeds' test sequences; "
    "one seed gets no interval."
)


@dataclass(frozen=True)
class AccuracyCI:
    """Mean accuracy over seeds with a [low, high] interval inside [0, 1] (None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def bounds(self) -> tuple[float, float]:
        """(low, high); without an interval the degenerate (mean, mean)."""
        if self.low is None or self.high is None:
            return (self.mean, self.mean)
        return (self.low, self.high)

    def rescaled(self, f: Callable[[float], float]) -> AccuracyCI:
        """The interval under an increasing map (e.g. chance-rescaling); may leave [0, 1]."""
        low = None if self.low is None else f(self.low)
        high = None if self.high is None else f(self.high)
        return AccuracyCI(f(self.mean) if self.n else self.mean, low, high, self.n)

    def format(self, digits: int = 2) -> str:
        if self.n == 0:
            return "–"
        if not self.has_interval:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def empirical_logit(accuracy: float, count: int) -> float:
    correct = accuracy * count
    return math.log((correct + 0.5) / (count - correct + 0.5))


def wilson(successes: float, total: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion (successes may be fractional: a rate × count)."""
    z = _normal_quantile(0.5 + confidence / 2.0)
    p = successes / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2.0 * total)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / total + z * z / (4.0 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_ci(
    accuracies: Sequence[float | None],
    scored: Sequence[int | None],
    sequences: Sequence[int | None],
    confidence: float = CONFIDENCE,
) -> AccuracyCI:
    """The interval of the module docstring over the seeds whose accuracy is known.

    `scored`/`sequences`: each seed's counts of scored test positions and of test sequences
    (None where a record predates them: the other count, or 1, stands in)."""
    seeds = [
        (float(a), int(s or q or 1), int(q or s or 1))
        for a, s, q in zip(accuracies, scored, sequences, strict=True)
        if a is not None and math.isfinite(a)
    ]
    n = len(seeds)
    if n == 0:
        return AccuracyCI(math.nan, None, None, 0)
    mean = sum(a for a, _, _ in seeds) / n
    if n == 1:
        return AccuracyCI(mean, None, None, 1)
    logits = [empirical_logit(a, q) for a, _, q in seeds]
    centre = sum(logits) / n
    sd = math.sqrt(sum((x - centre) ** 2 for x in logits) / (n - 1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sd / math.sqrt(n)
    low, high = expit(centre - half), expit(centre + half)
    total = sum(q for _, _, q in seeds)
    w_low, w_high = wilson(sum(a * q for a, _, q in seeds), total, confidence)
    low, high = min(low, w_low, mean), max(high, w_high, mean)
    return AccuracyCI(mean, low, high, n)


def _normal_quantile(p: float) -> float:
    """Standard normal quantile by bisection on erf (no scipy needed for one number)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
