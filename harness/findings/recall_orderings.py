"""The recall orderings of the linear-attention literature, judged on MQAR (the `recall` suite).

- Zoology and Based (Arora et al. 2023, 2024): attention ≥ Based > gated convolutions (Hyena)
  at equal width.
- DeltaNet (Yang et al. 2024): the delta rule recalls at least as well as decay-only linear
  recurrences (GLA, RetNet).
- Zoology: attention's lead over a fixed-state model grows with the number of key-value pairs.
  It is read between the fewest and the most pairs attention solves (where its lead is
  defined), on the models whose curve falls: those that recall the fewest pairs (interval
  ≥ 0.9) and whose state does not hold the most (`curves.holds`: the interval ≥ 0.9, or a seed
  solved it). A model that still holds the most pairs has no gap to grow, and one that does not
  recall even the fewest has no fall to show (its gap is at its ceiling from the start): both
  are named and left out, and a setting with no model left is not at the paper's condition.
"""

from __future__ import annotations

from seqbench.harness.findings.base import INCONCLUSIVE, NOT_AT_CONDITION, Outcome, TaskSelector
from seqbench.harness.findings.curves import at, format_curve, holds, solves
from seqbench.harness.findings.evidence import describe
from seqbench.harness.findings.rules import above, combine, gap_grows, gate
from seqbench.harness.findings.rules import not_below as at_least_as
from seqbench.harness.findings.select import Evidence, missing

MQAR = TaskSelector(("recall",), ("extrapolation", "retrieval", "copying"), ("mqar",))
ATTENTION = "mha"
PAIRS = "knob.num_pairs"
# The fixed-state side of the pairs sweep: every linear recurrence the recall suite runs.
FIXED_STATE = (
    "based", "linear_attention", "retnet", "gla", "deltanet", "gated_deltanet",
    "mamba", "mamba2", "mamba3", "lru",
)  # fmt: skip


def judge_based(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(MQAR):
        mha, based, hyena = (setting.one(a) for a in (ATTENTION, "based", "hyena"))
        if mha is None or based is None or hyena is None:
            outcomes.append(missing(setting, ATTENTION, "based", "hyena"))
            continue
        configs = [mha, based, hyena]
        parts = [at_least_as(mha, based), above(based, hyena)]
        outcomes.append(Outcome(gate(configs, combine(parts)), describe(configs), setting.label))
    return outcomes


def judge_delta_rule(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(MQAR):
        delta, decays = setting.one("deltanet"), setting.ones("gla", "retnet")
        if delta is None or not decays:
            outcomes.append(missing(setting, "deltanet", "gla or retnet"))
            continue
        configs = [delta, *decays]
        parts = [at_least_as(delta, other) for other in decays]
        outcomes.append(Outcome(gate(configs, combine(parts)), describe(configs), setting.label))
    return outcomes


def judge_pairs_gap(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(MQAR, across=(PAIRS,)):
        mha = setting.one(ATTENTION)
        others = [c for c in setting.configs.values() if c.arch in FIXED_STATE]  # and variants
        if mha is None or not others or len(mha.split(PAIRS)) < 2:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model", "two pair counts"))
            continue
        learnt = [(n, c) for n, c in mha.split(PAIRS) if solves(c)]  # where a gap is defined
        if len(learnt) < 2:
            observed = format_curve(mha.name, mha.split(PAIRS), " pairs")
            why = " (attention solves fewer than two pair counts: no gap to follow)"
            outcomes.append(Outcome(gate([mha], INCONCLUSIVE), observed + why, setting.label))
            continue
        (few_n, mha_few), (many_n, mha_many) = learnt[0], learnt[-1]
        configs, parts, texts = [mha_few, mha_many], [], []
        for other in others:
            few, many = at(other.split(PAIRS), few_n), at(other.split(PAIRS), many_n)
            if few is None or many is None:
                continue
            text = f"{other.name} {few.score().format()} → {many.score().format()}"
            if holds(many):
                text += " (holds the most pairs: no gap to grow, left out)"
            elif not solves(few):
                text += " (does not recall even the fewest pairs: no fall to see, left out)"
            else:
                configs += [few, many]
                parts.append(gap_grows(mha_few, few, mha_many, many))
            texts.append(text)
        observed = (
            f"pairs {few_n:g} → {many_n:g}: {mha.name} {mha_few.score().format()} → "
            f"{mha_many.score().format()}; " + "; ".join(texts)
        )
        verdict = combine(parts) if parts else NOT_AT_CONDITION
        outcomes.append(Outcome(gate(configs, verdict), observed, setting.label))
    return outcomes
