"""Means over seeds with Student-t intervals, the one statistic every report number carries.

The t quantile and the log-log slope fit live in `seqbench.harness.common.scaling` (the profiler
needs them too); this module adds the interval over seeds and its formatting, including what
happens with a single seed: no interval is invented, the value is marked "n=1".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from seqbench.harness.common.scaling import (
    CONFIDENCE,
    LogLogFit,
    fit_loglog,
    long_range,
    t_quantile,
)


@dataclass(frozen=True)
class MeanCI:
    """Mean over seeds with the half-width of its two-sided t-interval (None when n < 2)."""

    mean: float
    half_width: float | None
    n: int

    @property
    def interval(self) -> tuple[float, float]:
        """(low, high); a single seed gives the degenerate interval (mean, mean)."""
        h = self.half_width or 0.0
        return (self.mean - h, self.mean + h)

    def format(self, digits: int = 3) -> str:
        if self.n == 0:
            return "–"
        if self.half_width is None:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f}"


def finite(values: Iterable[float | None]) -> np.ndarray:
    """The finite numbers among `values` (None, NaN and inf dropped)."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    return data[np.isfinite(data)]


def mean_ci(values: Iterable[float | None], confidence: float = CONFIDENCE) -> MeanCI:
    """Mean and t-interval half-width t_{(1+c)/2, n-1} · s / √n over the finite values.

    With one value there is no estimate of the spread, so no interval (half_width None).
    """
    data = finite(values)
    n = int(data.size)
    if n == 0:
        return MeanCI(math.nan, None, 0)
    mean = float(data.mean())
    if n == 1:
        return MeanCI(mean, None, 1)
    sem = float(data.std(ddof=1)) / math.sqrt(n)
    return MeanCI(mean, t_quantile(0.5 + confidence / 2.0, n - 1) * sem, n)


def ci_band(values: Iterable[float | None]) -> tuple[float, float]:
    """Error band for seaborn's `errorbar=` (the same t-interval the tables print)."""
    return mean_ci(values).interval


def long_fit(xs: Iterable[float], ys: Iterable[float]) -> LogLogFit | None:
    """Log-log slope over the longest half of the x values (at least three of them when there
    are), where the asymptotic exponent shows; the fit the figures and the claims share."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    keep = set(long_range([x for x, _ in pairs]))
    chosen = [(x, y) for x, y in pairs if x in keep]
    return fit_loglog([x for x, _ in chosen], [y for _, y in chosen])


def slope_text(fit: LogLogFit | None) -> str:
    """ "slope 1.93 [1.85, 2.01]" (95% CI), or "slope 1.00" with two points."""
    if fit is None:
        return "no slope (one length)"
    if fit.ci_low is None or fit.ci_high is None:
        return f"slope {fit.slope:.2f}"
    return f"slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]"
