"""The recall orderings of the linear-attention literature, judged on MQAR (the `recall` suite).

- Zoology and Based (Arora et al. 2023, 2024): attention ≥ Based > gated convolutions (Hyena)
  at equal width.
- DeltaNet (Yang et al. 2024): the delta rule recalls at least as well as decay-only linear
  recurrences (GLA, RetNet).
- Zoology: attention's lead over a fixed-state model grows with the number of key-value pairs.
  A model that still solves the most pairs has a state that holds them all here: there is no
  gap to grow, so that model makes the setting inconclusive rather than contradicted.
"""

from __future__ import annotations

from seqbench.harness.findings.base import INCONCLUSIVE, MARGINS, Outcome, TaskSelector
from seqbench.harness.findings.evidence import describe
from seqbench.harness.findings.rules import SUPPORTED, above, at_least, combine, gap_grows, gate
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
        mha, based, hyena = (setting.plain(a) for a in (ATTENTION, "based", "hyena"))
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
        delta, decays = setting.plain("deltanet"), setting.get("gla", "retnet")
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
        mha, others = setting.plain(ATTENTION), setting.get(*FIXED_STATE)
        if mha is None or not others or len(mha.split(PAIRS)) < 2:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model", "two pair counts"))
            continue
        (few_n, mha_few), (many_n, mha_many) = mha.split(PAIRS)[0], mha.split(PAIRS)[-1]
        configs, parts, texts = [mha_few, mha_many], [], []
        for other in others:
            by_pairs = other.split(PAIRS)
            if len(by_pairs) < 2:
                continue
            few, many = by_pairs[0][1], by_pairs[-1][1]
            configs += [few, many]
            text = f"{other.name} {few.accuracy().format()} → {many.accuracy().format()}"
            if at_least(many, MARGINS.solved) == SUPPORTED:
                parts.append(INCONCLUSIVE)
                text += " (solves the most pairs: no gap to grow)"
            else:
                parts.append(gap_grows(mha_few, few, mha_many, many))
            texts.append(text)
        observed = (
            f"pairs {few_n:g} → {many_n:g}: {ATTENTION} {mha_few.accuracy().format()} → "
            f"{mha_many.accuracy().format()}; " + "; ".join(texts)
        )
        outcomes.append(Outcome(gate(configs, combine(parts)), observed, setting.label))
    return outcomes
