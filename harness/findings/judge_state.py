"""Grazzi et al. 2025 and Mamba-3 (Lahoti et al. 2026): state tracking by recurrences whose
transition can be negative or complex, judged on their protocol.

The protocol: train on a range of short lengths (`min_seq_len`..`seq_len`), test at ≥ 4x the
longest, and report scaled accuracy, (acc − chance) / (1 − chance), so chance is 0 and solved
is 1. At the training lengths a positive-decay model can count (a bounded read-out of a
running sum), which is why the claim is read at the long test length: only a transition that
can flip sign or rotate keeps the residue exactly, at any length.

Which transitions can track which residue: a real diagonal transition with eigenvalues in
(−1, 1] (Mamba-1/2 with `allow_neg_eigval`, Mamba-3 without its rotary state) can flip a
sign, so it tracks parity but not a residue mod 3 or 5; a rotation (Mamba-3's rotary state,
a complex diagonal) or a non-diagonal transition with negative eigenvalues (DeltaNet's
generalised Householder products with β ∈ [0, 2]) can track any cyclic group. So on modular
counting only the latter are held to it.

A contender that had finished learning (its validation curve flat at the end) and still lies
below the bar at 4x contradicts the claim on its own: the other models' learning, finished or
not, cannot lift it. Any other verdict waits on every model (`rules.gate`).
"""

from __future__ import annotations

from seqbench.harness.findings.base import CONTRADICTED, MARGINS, Outcome, TaskSelector
from seqbench.harness.findings.evidence import Config
from seqbench.harness.findings.rules import above, at_least, below, combine, gate
from seqbench.harness.findings.select import Evidence, Setting, missing

STATE_TRACKING = TaskSelector(("state-tracking",), ("memory",), ("parity", "modular"))
NEGATIVE_EIGENVALUE_KNOB = "allow_neg_eigval=true"
POSITIVE_DECAY = ("mamba", "mamba2")
# Transitions that can rotate or mix (complex diagonal, generalised Householder), as published.
ROTATING = ("mamba3",)
DELTA_RULE = ("deltanet", "gated_deltanet")
EXTRAPOLATION = 4  # the test length the claim is read at: >= 4x the longest training length


def signed(config: Config) -> bool:
    return NEGATIVE_EIGENVALUE_KNOB in config.label.lower()


def rotates(config: Config) -> bool:
    """A transition that can track any cyclic group: a rotary (complex) Mamba-3, or a delta
    rule with negative eigenvalues."""
    if config.arch in ROTATING:
        return "use_rope=false" not in config.label.lower()
    return config.arch in DELTA_RULE and signed(config)


def contenders(setting: Setting, parity: bool) -> list[Config]:
    """The configurations the claim holds to solving: on parity every signed or rotating one,
    on a larger modulus the rotating ones."""
    found = [c for c in setting.configs.values() if rotates(c) or (parity and signed(c))]
    return [c.rescaled() for c in found]


def test_lengths(configs: list[Config]) -> list[int]:
    """The lengths every configuration was tested at that are ≥ 4x the longest training
    length, shortest first: the claim is read at the first (the papers' 4x), the others are
    reported beside it."""
    common = set.intersection(*(set(c.lengths()) for c in configs)) if configs else set()
    return sorted(n for n in common if n >= EXTRAPOLATION * configs[0].seq_len)


def failed_for_good(good: list[Config], bars: list[str]) -> bool:
    """A contender that finished learning (or trained its whole calibrated budget) with enough
    seeds and whose interval lies below the bar: `bars` holds each contender's `at_least`."""
    return any(gate([c], bar) == CONTRADICTED for c, bar in zip(good, bars, strict=True))


def judge_state_tracking(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(STATE_TRACKING):
        chance = next(iter(setting.configs.values())).chance
        parity = chance is not None and abs(chance - 0.5) < 1e-9
        good = contenders(setting, parity)
        positive = [c.rescaled() for c in setting.get(*POSITIVE_DECAY)]
        if not good or not positive:
            outcomes.append(
                missing(setting, "a signed or rotating recurrence", "a positive-decay one")
            )
            continue
        lengths = test_lengths([*good, *positive])
        if not lengths:
            outcomes.append(missing(setting, f"every model tested at >= {EXTRAPOLATION}x"))
            continue
        length, train = lengths[0], good[0].seq_len
        bars = [at_least(c, MARGINS.solved, length) for c in good]
        parts = bars + [below(c, MARGINS.solved, length) for c in positive]
        parts += [above(a, b, length) for a in good for b in positive]
        observed = f"scaled accuracy at {length} tokens ({length // train}x): " + "; ".join(
            f"{c.name} {c.score(length).format()} ("
            + ", ".join(f"{n // train}x: {c.score(n).format()}" for n in [train, *lengths[1:]])
            + ")"
            for c in [*good, *positive]
        )
        verdict = gate([*good, *positive], combine(parts))
        if failed_for_good(good, bars):
            verdict = CONTRADICTED
        outcomes.append(Outcome(verdict, observed, setting.label))
    return outcomes
