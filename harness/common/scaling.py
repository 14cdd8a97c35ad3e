"""Log-log scaling fits: the exponent b of y ≈ a·x^b with a 95% confidence interval.

Why log-log least squares: "attention time grows as L², Mamba's as L" is a statement about the
exponent, and the slope of log y against log x estimates it directly. The interval is the
ordinary t-interval of the slope (n − 2 degrees of freedom), so three points give a wide
interval and the report can say when a sweep is too short to tell.

Why a "long" range beside "all": at short lengths attention's time is dominated by its linear
projections (∝ L), so its exponent only approaches 2 once the L² score products dominate; the
fit over the longest half of the sweep is the one that tests the asymptotic claim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

CONFIDENCE = 0.95


@dataclass
class LogLogFit:
    slope: float
    intercept: float  # log(a), natural log
    ci_low: float | None  # None with fewer than 3 points (no residual degrees of freedom)
    ci_high: float | None
    r2: float | None
    n_points: int
    x_min: float
    x_max: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_loglog(xs: Sequence[float], ys: Sequence[float]) -> LogLogFit | None:
    """Least-squares slope of log(y) on log(x); points with x or y ≤ 0 are left out.

    None when fewer than two usable points or all x equal.
    """
    used = [x for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    n = len(pts)
    if n < 2:
        return None
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    syy = sum((p[1] - my) ** 2 for p in pts)
    slope = sxy / sxx
    intercept = my - slope * mx
    ssr = sum((p[1] - intercept - slope * p[0]) ** 2 for p in pts)
    r2 = 1.0 - ssr / syy if syy > 0 else None
    ci_low = ci_high = None
    if n >= 3:
        half = t_quantile(0.5 + CONFIDENCE / 2, n - 2) * math.sqrt(ssr / (n - 2) / sxx)
        ci_low, ci_high = slope - half, slope + half
    return LogLogFit(slope, intercept, ci_low, ci_high, r2, n, min(used), max(used))


def long_range(xs: Sequence[float], min_points: int = 4) -> list[float]:
    """The longest half of the distinct x values (at least `min_points` of them when possible).

    Why at least four: with three points the slope's interval has one degree of freedom
    (t = 12.7) and says nothing; four give t = 4.3.
    """
    distinct = sorted(set(xs))
    keep = max(min_points, (len(distinct) + 1) // 2)
    return distinct[-keep:]


# -- Student's t quantile (no scipy dependency) ---------------------------------------------------
def t_pdf(t: float, dof: int) -> float:
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_norm - (dof + 1) / 2 * math.log1p(t * t / dof))


def t_cdf_from_zero(x: float, dof: int, intervals: int = 400) -> float:
    """P(0 ≤ T ≤ x) by Simpson's rule: the density is smooth, so this is accurate to ~1e-7.

    The integral runs in u = atan(t) so that heavy tails (dof 1) cover a finite interval.
    """
    upper = math.atan(x)
    h = upper / intervals
    total = 0.0
    for i in range(intervals + 1):
        u = i * h
        weight = 1 if i in (0, intervals) else (4 if i % 2 else 2)
        total += weight * t_pdf(math.tan(u), dof) / math.cos(u) ** 2
    return total * h / 3


@lru_cache(maxsize=256)
def t_quantile(p: float, dof: int) -> float:
    """The p-quantile (p > 0.5) of Student's t with `dof` degrees of freedom, by bisection."""
    if not 0.5 < p < 1 or dof < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and dof ≥ 1, got p={p}, dof={dof}")
    target = p - 0.5
    lo, hi = 0.0, 1.0
    while t_cdf_from_zero(hi, dof) < target:
        hi *= 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if t_cdf_from_zero(mid, dof) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
