"""Intervals over seeds, slope fits and the formatting/escaping helpers of the report."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from seqbench.harness.report import fmt
from seqbench.harness.report.markdown import escape
from seqbench.harness.report.plotting import short_number, spaced_ticks
from seqbench.harness.report.stats import ci_band, long_fit, mean_ci, slope_text


@pytest.mark.parametrize(
    ("values", "t"), [([1.0, 2.0], 12.706), ([1.0, 2.0, 4.0], 4.303), ([3, 1, 4, 1, 5], 2.776)]
)
def test_mean_ci_is_the_student_t_interval(values, t):
    ci = mean_ci(values)
    sem = np.std(values, ddof=1) / math.sqrt(len(values))
    assert ci.n == len(values)
    assert ci.mean == pytest.approx(np.mean(values))
    assert ci.half_width == pytest.approx(t * sem, rel=1e-3)  # textbook t_{0.975, n-1}


def test_one_seed_gets_no_interval_and_says_so():
    ci = mean_ci([0.9, None, float("nan")])
    assert (ci.n, ci.half_width) == (1, None)
    assert ci.format() == "0.900 (n=1)"
    assert ci_band([0.9]) == (0.9, 0.9)
    assert mean_ci([]).format() == "–"
    assert mean_ci([0.5, 0.7]).format() == f"0.600 ± {12.7062 * 0.1:.3f}"


def test_long_fit_uses_the_longest_half_of_the_lengths():
    lengths = [256, 512, 1024, 2048, 4096, 8192]
    times = [1e-6 * L + 1e-9 * L * L for L in lengths]  # linear at short L, quadratic at long L
    fit = long_fit(lengths, times)  # the longest half, but at least four points: 1024…8192
    reference = np.polyfit(np.log(lengths[2:]), np.log(times[2:]), 1)[0]
    assert fit.slope == pytest.approx(reference)
    assert fit.n_points == 4 and fit.x_min == pytest.approx(1024)
    assert fit.slope > np.polyfit(np.log(lengths), np.log(times), 1)[0]
    assert slope_text(fit).startswith(f"slope {reference:.2f} [")
    assert slope_text(long_fit([1, 2], [1, 2])) == "slope 1.00"
    assert slope_text(None) == "no slope (one length)"


def test_number_formatting():
    assert fmt.num(np.int64(1234567)) == "1,234,567"
    assert fmt.num(4095.9999999) == "4,096"
    assert fmt.num(0.00312) == "0.00312"
    assert fmt.num(None) == "–" and fmt.num(float("nan")) == "–"
    assert fmt.bytes_(1536) == "1.5 KiB" and fmt.bytes_(512) == "512 B"
    assert fmt.seconds(0.0042) == "4.2 ms" and fmt.seconds(300) == "5.0 min"
    assert fmt.values([128, 64, 64, None]) == "64, 128"
    assert fmt.counted(["a", "a", "b"]) == "a (2), b (1)"
    assert [short_number(x) for x in (512, 1024, 65536, 1 << 20, 1536, 3000)] == [
        "512",
        "1k",
        "64k",
        "1M",
        "1.5k",
        "3000",
    ]


def test_length_ticks_never_crowd():
    assert spaced_ticks([128, 256, 512, 1024]) == [128, 256, 512, 1024]
    wide = [128, 256, 512, 1024, 4096, 16384, 65536, 1 << 20]
    kept = spaced_ticks(wide)
    assert kept[0] == 128 and len(kept) <= 7
    assert all(b / a >= (wide[-1] / wide[0]) ** (1 / 6) for a, b in itertools.pairwise(kept))


def test_markdown_escape_neutralises_markup_but_keeps_names_readable():
    assert escape("<script>alert(1)</script>") == "\\<script\\>alert(1)\\</script\\>"
    assert escape("a|b") == "a\\|b"
    assert escape("selective_copy") == "selective_copy"
    assert escape("_emph_ and *bold*") == "\\_emph\\_ and \\*bold\\*"
    assert escape("two\nlines") == "two lines"
