"""Log-log fits and the t quantile behind their confidence intervals."""

from __future__ import annotations

import math
import random

import pytest

from seqbench.harness.common.scaling import fit_loglog, long_range, t_quantile


@pytest.mark.parametrize(
    ("dof", "expected"), [(1, 12.7062), (2, 4.3027), (4, 2.7764), (10, 2.2281), (30, 2.0423)]
)
def test_t_quantile_matches_tables(dof: int, expected: float) -> None:
    assert t_quantile(0.975, dof) == pytest.approx(expected, abs=2e-4)


def test_t_quantile_tends_to_normal() -> None:
    assert t_quantile(0.975, 10_000) == pytest.approx(1.95996, abs=1e-3)


def test_exact_power_law_gives_exact_slope_and_zero_width_interval() -> None:
    xs = [256, 512, 1024, 2048]
    fit = fit_loglog(xs, [3.0 * x**2 for x in xs])
    assert fit is not None
    assert fit.slope == pytest.approx(2.0)
    assert fit.ci_low == pytest.approx(2.0) and fit.ci_high == pytest.approx(2.0)
    assert math.exp(fit.intercept) == pytest.approx(3.0)
    assert fit.r2 == pytest.approx(1.0)


def test_constant_series_has_slope_zero() -> None:
    fit = fit_loglog([64, 128, 256], [1000, 1000, 1000])
    assert fit is not None and fit.slope == 0.0 and fit.r2 is None


def test_interval_covers_the_true_slope_on_noisy_data() -> None:
    rng = random.Random(0)
    covered = 0
    for _ in range(200):
        xs = [2.0**k for k in range(6)]
        ys = [x**1.5 * math.exp(rng.gauss(0, 0.1)) for x in xs]
        fit = fit_loglog(xs, ys)
        assert fit is not None and fit.ci_low is not None
        covered += fit.ci_low <= 1.5 <= fit.ci_high
    assert 180 <= covered <= 200  # nominal 95%: 190 of 200


def test_two_points_have_no_interval_and_unusable_points_are_dropped() -> None:
    fit = fit_loglog([1, 2, 4], [0.0, 2.0, 8.0])  # y = 0 cannot be logged
    assert fit is not None and fit.n_points == 2 and fit.ci_low is None
    assert fit.slope == pytest.approx(2.0)
    assert fit_loglog([5, 5], [1, 2]) is None
    assert fit_loglog([5], [1]) is None


def test_long_range_keeps_the_longest_half() -> None:
    assert long_range([256, 512, 1024, 2048, 4096, 8192]) == [1024, 2048, 4096, 8192]
    assert long_range(list(range(1, 11))) == [6, 7, 8, 9, 10]
    assert long_range([1, 2]) == [1, 2]
