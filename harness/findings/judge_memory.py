"""Findings about what a model holds: selective copying, induction extrapolation, copying,
needle retrieval and MoE memorisation, each read where its paper's condition holds.

- mamba-selective-copy (Gu & Dao 2023): a sweep over the sequence length, the LRU at one or
  more state sizes, each judged on its own: at the shortest length Mamba solves and that LRU's
  state is not shown to hold (`curves.holds`), the LRU far below. A short sequence fits the
  LRU's state whole (it solves it too); an LRU that holds every length Mamba solves was never
  pushed past its state: not the paper's condition.
- mamba-induction: Mamba ≥ 0.95 to 64x its training length; attention, once it has learnt
  the task, towards chance at ≥ 4x.
- jelassi-copy (Jelassi et al. 2024): strings of growing length; attention copies each, a
  fixed-state model copies the short ones and fails once the string outgrows its state. Per
  model (each judged on its own, so two state sizes are two settings), the longest string
  copied at ≥ 0.9 is reported; a model that copies every length tested was never pushed past
  its state, and one that copies none has not learnt copying: neither is the paper's
  condition.
- niah-depth (RULER): attention retrieves at every length; a recurrence that retrieves at the
  shortest length falls at the longest (one that retrieves everywhere, or nowhere, is left
  out as above; at the longest length "retrieves" is `holds`).
- moe-memorization (MAD): the MoE is the reference (trained until it memorises the map), the
  dense model at equal active parameters gets 3x its steps; at each map size the MoE
  memorises and the dense model does not hold (`holds`: below its ceiling at that budget),
  the MoE far above it.
"""

from __future__ import annotations

import math

from seqbench.harness.findings.base import (
    INCONCLUSIVE,
    MARGINS,
    NOT_AT_CONDITION,
    NOT_MEASURED,
    Outcome,
    TaskSelector,
)
from seqbench.harness.findings.curves import (
    HELD,
    at,
    capacity_outcomes,
    curve,
    format_curve,
    hardest_solved,
    holds,
    not_at_condition,
    solved_points,
    solves,
)
from seqbench.harness.findings.evidence import Config
from seqbench.harness.findings.judge_recall import ATTENTION, FIXED_STATE
from seqbench.harness.findings.rules import above, at_least, below, combine, gate, gate_above
from seqbench.harness.findings.select import Evidence, missing

SELECTIVE_COPY = TaskSelector(("copying", "selective"), (), ("selective_copy",))
EXTRAPOLATION = TaskSelector(("extrapolation",), (), ("induction",))
COPYING = TaskSelector(("copying",), ("selective",), ("copy", "lookup"))
RETRIEVAL = TaskSelector(("retrieval",), (), ("niah",))
MEMORIZATION = TaskSelector(("memorization",), (), ("memorization",))
LENGTH = "seq_len"
MAP_SIZE = "knob.vocab_size"


# -- mamba-selective-copy -------------------------------------------------------------------------
def judge_selective_copy(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(SELECTIVE_COPY, across=(LENGTH,)):
        mamba, lrus = setting.one("mamba"), setting.variants("lru")
        if mamba is None or not lrus:
            outcomes.append(missing(setting, "mamba", "lru"))
            continue
        outcomes += capacity_outcomes(setting.label, mamba, lrus, LENGTH, " tokens")
    return outcomes


# -- mamba-induction ------------------------------------------------------------------------------
def judge_induction(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(EXTRAPOLATION):
        mamba, attention = setting.plain("mamba"), setting.one(ATTENTION)
        if mamba is None or attention is None:
            outcomes.append(missing(setting, "mamba", ATTENTION))
            continue
        train, ratio = mamba.seq_len, MARGINS.extrapolation_ratio
        if max(mamba.lengths(), default=train) < ratio * train:
            outcomes.append(missing(setting, f"mamba tested at >= {ratio}x the training length"))
            continue
        reach = [n for n in mamba.lengths() if n <= ratio * train]
        parts = [at_least(mamba, MARGINS.extrapolates, n) for n in reach]
        observed = "mamba " + ", ".join(
            f"{n // train}x: {mamba.accuracy(n).format()}" for n in mamba.lengths()
        )
        far = [n for n in attention.lengths() if n >= 4 * attention.seq_len]
        far = [n for n in far if not attention.oom_at(n)]
        observed += f"; {ATTENTION} 1x: {attention.accuracy().format()}"
        if not solves(attention):
            observed += " (attention did not learn it at its training length: nothing to compare)"
            parts.append(INCONCLUSIVE)
        elif not far:
            parts.append(NOT_MEASURED)
        else:
            parts.append(below(attention, MARGINS.chance_high, far[-1]))
            observed += f", {far[-1] // attention.seq_len}x: {attention.accuracy(far[-1]).format()}"
        ooms = [n for n in attention.lengths() if attention.oom_at(n)]
        if ooms:
            observed += f" (oom from {ooms[0]} tokens)"
        configs = [mamba, attention]
        outcomes.append(Outcome(gate(configs, combine(parts)), observed, setting.label))
    return outcomes


# -- jelassi-copy ---------------------------------------------------------------------------------
def judge_copy(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(COPYING, across=(LENGTH,)):
        attention = setting.one(ATTENTION)
        others = [c for c in setting.configs.values() if c.arch in FIXED_STATE]
        if attention is None or not others:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model"))
            continue

        def note(other: Config, attention: Config = attention) -> str:
            longest = curve(other, LENGTH)
            return f" (copies up to {_longest(longest)}; {_samples(attention, other)})"

        outcomes += capacity_outcomes(
            setting.label, attention, others, LENGTH, " tokens", note=note, must_learn=True
        )
    return outcomes


def _longest(points: list) -> str:
    solved = hardest_solved(points)
    return f"{solved} tokens" if solved is not None else "no length"


def _samples(attention: Config, other: Config) -> str:
    """Median training tokens to 0.9 over the sweep's runs, attention vs the model (the
    paper's sample-efficiency observation; reported, not part of the rule)."""
    ta, tb = attention.tokens_to(0.9), other.tokens_to(0.9)
    return f"tokens to 0.9: {ATTENTION} {_tokens(ta)}, {other.name} {_tokens(tb)}"


def _tokens(value: float) -> str:
    return "never" if math.isinf(value) else ("–" if math.isnan(value) else f"{value:,.0f}")


# -- niah-depth -----------------------------------------------------------------------------------
def judge_niah(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(RETRIEVAL, across=(LENGTH,)):
        attention, others = setting.one(ATTENTION), setting.ones(*FIXED_STATE)
        if attention is None or not others:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model"))
            continue
        by_length = curve(attention, LENGTH)
        if len(by_length) < 2:
            outcomes.append(missing(setting, "two or more training lengths"))
            continue
        parts = [at_least(c, MARGINS.solved) for _, c in by_length]
        configs = [c for _, c in by_length]
        texts = [format_curve(attention.name, by_length, " tokens")]
        judged: list[str] = []
        for other in others:
            points = curve(other, LENGTH)
            (_, short), (_, long) = points[0], points[-1]
            texts.append(format_curve(other.name, points, " tokens"))
            if not solves(short):
                texts[-1] += " (never retrieves at the shortest length: no fall to see; left out)"
            elif holds(long):
                texts[-1] += f" ({NOT_AT_CONDITION}: its state holds the longest length; left out)"
            else:
                judged.append(above(short, long))
                configs += [short, long]
        verdict = combine(parts + judged) if judged else NOT_AT_CONDITION  # no recurrence there
        outcomes.append(Outcome(gate(configs, verdict), "; ".join(texts), setting.label))
    return outcomes


# -- moe-memorization -----------------------------------------------------------------------------
def unequal_active(moe: list, dense: list) -> str:
    """ "158,368 vs 58,016 at 1024" for the first map size where the active parameter counts
    differ by more than the tolerance (the embedding grows with the map, so each size is
    compared with itself); "" when they are equal everywhere."""
    for value, m in moe:
        d = at(dense, value)
        a, b = m.active_params(), d.active_params() if d is not None else None
        if a and b and abs(a - b) / b > MARGINS.active_tolerance:
            return f"{a:,.0f} vs {b:,.0f} at {value}"
    return ""


def judge_moe(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(MEMORIZATION, across=(MAP_SIZE,)):
        moe, dense = setting.one("mha-moe"), setting.one(ATTENTION)
        if moe is None or dense is None:
            outcomes.append(missing(setting, "mha-moe", ATTENTION))
            continue
        moe_curve, dense_curve = curve(moe, MAP_SIZE), curve(dense, MAP_SIZE)
        observed = "; ".join(format_curve(c.name, curve(c, MAP_SIZE), "") for c in (moe, dense))
        unequal = unequal_active(moe_curve, dense_curve)
        if unequal:
            observed += f"; active params {unequal} (not equal: not the published comparison)"
            outcomes.append(Outcome(INCONCLUSIVE, observed, setting.label))
            continue
        learnt = [v for v in solved_points(moe_curve) if at(dense_curve, v) is not None]
        room = [v for v in learnt if not holds(at(dense_curve, v))]
        if not room:
            why = (
                f"the dense model holds every map size the MoE memorises ({HELD}): no room to be "
                "far above"
                if learnt
                else "the MoE memorises no map size within its budget: nothing to compare"
            )
            outcomes.append(not_at_condition(setting.label, [moe, dense], observed, why))
            continue
        pairs = [(at(moe_curve, v), at(dense_curve, v)) for v in room]
        sizes = ", ".join(str(v) for v in room)
        active = ", ".join(
            f"{at(moe_curve, v).active_params():,.0f} vs {at(dense_curve, v).active_params():,.0f}"
            for v in room
        )
        observed += (
            f"; judged at vocabulary {sizes} (the MoE memorises it, the dense model does not; "
            f"active params {active})"
        )
        parts = [above(m, d) for m, d in pairs]
        outcomes.append(Outcome(gate_above(pairs, combine(parts)), observed, setting.label))
    return outcomes
