"""Zoology's recall findings and GQA, read off MQAR pair sweeps.

Zoology (Arora et al. 2023) shows the gap where the number of key-value pairs outgrows what a
fixed-size state holds: attention stays near 1 as the pairs grow, fixed-state models fall,
and a larger state moves the fall to more pairs. So each setting (length, vocabulary, width)
is a sweep over `num_pairs`, and the verdicts are read on the curves:

- zoology-mqar: at the most pairs attention solves, every fixed-state model whose state is
  not shown to hold it (`curves.holds`: its interval solves it, or a seed solved it) far below
  attention. A model that holds that point too was never pushed past its state: it is "not at
  the paper's condition", named and left out (it neither supports nor contradicts); with no
  model left, so is the setting.
- zoology-state-size: for each recurrence run at two or more state sizes (Mamba's d_state,
  Mamba-2's...), at the most pairs its largest state solves, its smallest state far below
  (the fall moved); not at the paper's condition when the small state still holds that point
  (`holds`) or the large state never solves.
- gqa-quality: at every pair count attention solves, GQA within 0.05 of it.
"""

from __future__ import annotations

from seqbench.harness.findings.base import INCONCLUSIVE, NOT_AT_CONDITION, Outcome, TaskSelector
from seqbench.harness.findings.curves import (
    HELD,
    at,
    curve,
    format_curve,
    hardest_solved,
    holds,
    not_at_condition,
    solved_points,
)
from seqbench.harness.findings.evidence import Config
from seqbench.harness.findings.rules import above, close, combine, gate
from seqbench.harness.findings.select import Evidence, Setting, missing

RECALL = TaskSelector(
    ("recall",), ("extrapolation", "retrieval", "copying"), ("mqar", "fuzzy_recall", "noisy_recall")
)
PAIRS = "knob.num_pairs"
ATTENTION = "mha"
# Fixed-size-state sequence mixers (Zoology's "gated convolutions and recurrences" side).
FIXED_STATE = (
    "mamba", "mamba2", "mamba3", "lru", "linear_attention", "retnet", "gla", "deltanet",
    "gated_deltanet", "based", "hyena",
)  # fmt: skip
NOT_LEARNT = "attention solves no pair count within its budget: nothing to compare"


def sweeps(evidence: Evidence) -> list[Setting]:
    """Each (length, vocabulary, width) setting with its pair counts kept together."""
    return evidence.settings(RECALL, across=(PAIRS,))


def nothing_to_compare(setting: Setting, configs: list[Config], observed: str) -> Outcome:
    return Outcome(gate(configs, INCONCLUSIVE), f"{observed} ({NOT_LEARNT})", setting.label)


# -- zoology-mqar ---------------------------------------------------------------------------------
def judge_zoology(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in sweeps(evidence):
        attention, others = setting.one(ATTENTION), setting.ones(*FIXED_STATE)
        if attention is None or not others:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model"))
            continue
        reference = curve(attention, PAIRS)
        lines = [format_curve(c.name, curve(c, PAIRS), " pairs") for c in [attention, *others]]
        observed = "; ".join(lines)
        hardest = hardest_solved(reference)
        if hardest is None:
            outcomes.append(nothing_to_compare(setting, [attention, *others], observed))
            continue
        a = at(reference, hardest)
        rivals = [(c.name, at(curve(c, PAIRS), hardest)) for c in others]
        rivals = [(name, c) for name, c in rivals if c is not None]
        judged = [c for _, c in rivals if not holds(c)]
        held = [name for name, c in rivals if holds(c)]
        observed += f"; judged at {hardest:g} pairs, the most {ATTENTION} solves"
        if held:
            observed += f" ({NOT_AT_CONDITION} for {', '.join(held)}: their state holds it, {HELD})"
        if not judged:
            outcomes.append(Outcome(gate([a], NOT_AT_CONDITION), observed, setting.label))
            continue
        parts = [above(a, c) for c in judged]
        outcomes.append(Outcome(gate([a, *judged], combine(parts)), observed, setting.label))
    return outcomes


# -- zoology-state-size ---------------------------------------------------------------------------
def judge_state_size(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in sweeps(evidence):
        found = [(arch, sized(setting, arch)) for arch in FIXED_STATE]
        found = [(arch, s) for arch, s in found if len({n for n, _ in s}) >= 2]
        if not found:
            outcomes.append(missing(setting, "a recurrence at two or more d_state values"))
            continue
        for arch, states in found:
            outcomes.append(state_size_outcome(setting, arch, states))
    return outcomes


def sized(setting: Setting, arch: str) -> list[tuple[int, Config]]:
    """The configurations of `arch` by state size (its mixer's recorded d_state)."""
    out = [(c.model_value(arch, "d_state"), c) for c in setting.variants(arch)]
    return sorted(((n, c) for n, c in out if n is not None), key=lambda item: item[0])


def state_size_outcome(setting: Setting, arch: str, states: list[tuple[int, Config]]) -> Outcome:
    (n_small, small), (n_large, large) = states[0], states[-1]
    small_curve, large_curve = curve(small, PAIRS), curve(large, PAIRS)
    observed = "; ".join(
        format_curve(f"{arch} d_state {n}", curve(c, PAIRS), " pairs") for n, c in states
    )
    label = f"{setting.label} {arch}" if arch != "mamba" else setting.label
    hardest = hardest_solved(large_curve)
    if hardest is None:
        why = f"d_state {n_large} solves no pair count: there is no fall to move"
        return not_at_condition(label, [small, large], observed, why)
    s, big = at(small_curve, hardest), at(large_curve, hardest)
    if s is None or holds(s):
        why = f"d_state {n_small} still holds {hardest:g} pairs ({HELD}): its state never fell"
        return not_at_condition(label, [c for c in (s, big) if c is not None], observed, why)
    observed += f"; judged at {hardest:g} pairs, the most d_state {n_large} solves"
    return Outcome(gate([s, big], above(big, s)), observed, label)


# -- gqa-quality ----------------------------------------------------------------------------------
def judge_gqa(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in sweeps(evidence):
        mha, gqa = setting.one(ATTENTION), setting.one("gqa")
        if mha is None or gqa is None:
            outcomes.append(missing(setting, ATTENTION, "gqa"))
            continue
        mha_curve, gqa_curve = curve(mha, PAIRS), curve(gqa, PAIRS)
        observed = "; ".join(format_curve(c.name, curve(c, PAIRS), " pairs") for c in (mha, gqa))
        points = [n for n in solved_points(mha_curve) if at(gqa_curve, n) is not None]
        if not points:
            outcomes.append(nothing_to_compare(setting, [mha, gqa], observed))
            continue
        pairs = [(at(mha_curve, n), at(gqa_curve, n)) for n in points]
        configs = [c for pair in pairs for c in pair]
        parts = [close(g, m) for m, g in pairs]
        observed += f"; judged at {', '.join(f'{n:g}' for n in points)} pairs (mha solves)"
        outcomes.append(Outcome(gate(configs, combine(parts)), observed, setting.label))
    return outcomes
