"""The training protocol's rules (harness.protocol) and the accuracy intervals of the report."""

from __future__ import annotations

import math

import pytest

from seqbench.harness.protocol import (
    COLLAPSE_DROP,
    collapse,
    protocol_metrics,
    steps_to,
    still_improving,
)
from seqbench.harness.report.intervals import accuracy_ci, empirical_logit, wilson


def curve(*accuracies: float, every: int = 100, batch_tokens: int = 512) -> list[dict]:
    return [
        {"step": every * (i + 1), "tokens": every * (i + 1) * batch_tokens, "accuracy": a}
        for i, a in enumerate(accuracies)
    ]


def test_steps_to_threshold_is_the_first_check_at_or_above_it():
    c = curve(0.2, 0.5, 0.91, 0.85, 0.995)
    assert steps_to(c, 0.9) == {"step": 300, "tokens": 300 * 512}
    assert steps_to(c, 0.99) == {"step": 500, "tokens": 500 * 512}
    assert steps_to(c, 0.999) is None
    metrics = protocol_metrics(c)
    assert metrics["steps_to"]["0.9"]["step"] == 300 and metrics["solved"]
    assert not metrics["still_improving"]


def test_still_improving_tells_has_not_yet_from_plateau():
    assert still_improving(curve(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8))  # rising at the end
    assert not still_improving(curve(0.1, 0.3, 0.3, 0.31, 0.3, 0.3, 0.31, 0.31))  # flat
    assert not still_improving(curve(0.3, 0.5, 0.9, 0.995))  # solved
    assert still_improving(curve(0.2, 0.3))  # too few checks to show a plateau
    assert not still_improving([])


def test_collapse_names_a_run_that_lost_what_it_had_learnt():
    fell = collapse(curve(0.3, 0.9, 0.985, 0.985, 0.979, 0.937, 0.006, 0.036))
    assert fell is not None
    assert (fell.best, fell.best_step, fell.fell_at, fell.final) == (0.985, 300, 700, 0.036)
    assert "0.985 at step 300" in fell.describe() and "fell at step 700" in fell.describe()
    assert protocol_metrics(curve(0.3, 0.9, 0.985, 0.036))["collapsed"]
    # Noise around a plateau, or a dip it recovers from, is not a collapse.
    assert collapse(curve(0.3, 0.9, 0.95, 0.95 - COLLAPSE_DROP / 2)) is None
    assert collapse(curve(0.3, 0.9, 0.4, 0.91)) is None
    assert collapse(curve(0.1, 0.2, 0.3)) is None and collapse([]) is None
    assert not protocol_metrics(curve(0.3, 0.9, 0.95))["collapsed"]


def test_interval_lives_in_unit_range_and_widens_with_seed_spread():
    tight = accuracy_ci([0.80, 0.81, 0.79], [2048] * 3, [256] * 3)
    loose = accuracy_ci([0.30, 0.95, 0.60], [2048] * 3, [256] * 3)
    for ci in (tight, loose):
        assert 0.0 <= ci.low <= ci.mean <= ci.high <= 1.0
    assert (loose.high - loose.low) > 3 * (tight.high - tight.low)
    # Two wildly different seeds: a raw t-interval would run far outside [0, 1].
    two = accuracy_ci([0.1, 0.99], [1000, 1000], [100, 100])
    assert two.low >= 0.0 and two.high <= 1.0


def test_interval_of_perfect_seeds_keeps_the_test_set_uncertainty():
    ci = accuracy_ci([1.0, 1.0, 1.0], [512] * 3, [64] * 3)
    w_low, _ = wilson(192, 192)
    assert ci.high == 1.0 and ci.low <= w_low < 1.0
    more = accuracy_ci([1.0, 1.0, 1.0], [8192] * 3, [1024] * 3)
    assert more.low > ci.low  # a larger test set gives a tighter interval


def test_one_seed_gets_no_interval():
    ci = accuracy_ci([0.7], [100], [10])
    assert ci.n == 1 and not ci.has_interval and ci.format() == "0.70 (n=1)"
    assert accuracy_ci([None], [None], [None]).n == 0


def test_logit_interval_matches_a_plain_computation():
    """The fast path against the definition written out: t-interval on empirical logits."""
    accs, counts = [0.6, 0.7, 0.8], [1000, 1000, 1000]
    pairs = list(zip(accs, counts, strict=True))
    logits = [math.log((a * n + 0.5) / (n - a * n + 0.5)) for a, n in pairs]
    assert [empirical_logit(a, n) for a, n in pairs] == pytest.approx(logits)
    m = sum(logits) / 3
    sd = math.sqrt(sum((x - m) ** 2 for x in logits) / 2)
    half = 4.302652729749464 * sd / math.sqrt(3)  # t_{0.975, 2}
    expected = (1 / (1 + math.exp(-(m - half))), 1 / (1 + math.exp(-(m + half))))
    ci = accuracy_ci(accs, [10_000] * 3, counts)  # as many positions: Wilson is inside
    assert (ci.low, ci.high) == pytest.approx(expected, rel=1e-6)
