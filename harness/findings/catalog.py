"""The registry of published findings: each entry is a claim the `paper` suites test.

Architectures are named as the presets register them; ones that live on other branches or in
plugins (mamba3, the linear-attention family) count when their runs are in the folder and are
simply absent otherwise, so a finding about them reads "not measured" rather than failing.
"""

from __future__ import annotations

import math

from seqbench.harness.findings.base import (
    CONTRADICTED,
    INCONCLUSIVE,
    MARGINS,
    NOT_MEASURED,
    SUPPORTED,
    Finding,
    Outcome,
    TaskSelector,
)
from seqbench.harness.findings.evidence import Config, describe
from seqbench.harness.findings.recall_orderings import (
    MQAR,
    judge_based,
    judge_delta_rule,
    judge_pairs_gap,
)
from seqbench.harness.findings.rules import above, at_least, below, close, combine, gate
from seqbench.harness.findings.select import Evidence, Setting, missing

# Task selections by the tags task classes declare (`seqbench list tasks`).
RECALL = TaskSelector(
    ("recall",), ("extrapolation", "retrieval", "copying"), ("mqar", "fuzzy_recall", "noisy_recall")
)
SELECTIVE_COPY = TaskSelector(("copying", "selective"), (), ("selective_copy",))
EXTRAPOLATION = TaskSelector(("extrapolation",), (), ("induction",))
COPYING = TaskSelector(("copying",), ("selective",), ("copy", "lookup"))
STATE_TRACKING = TaskSelector(("state-tracking",), ("memory",), ("parity", "modular"))
RETRIEVAL = TaskSelector(("retrieval",), (), ("niah",))
MEMORIZATION = TaskSelector(("memorization",), (), ("memorization",))

ATTENTION = "mha"
# Fixed-size-state sequence mixers (Zoology's "gated convolutions and recurrences" side).
FIXED_STATE = (
    "mamba",
    "mamba2",
    "mamba3",
    "lru",
    "linear_attention",
    "retnet",
    "gla",
    "deltanet",
    "gated_deltanet",
)
# Recurrences whose transition can be negative or complex and input-dependent (Grazzi et al.).
SIGNED_TRANSITION = ("mamba3", "deltanet", "gated_deltanet")
POSITIVE_DECAY = ("mamba", "mamba2")
# Grazzi et al.'s knob: a configuration run with it on is signed whatever its architecture.
NEGATIVE_EIGENVALUE_KNOB = "allow_neg_eigval=true"


def signed_configs(setting: Setting) -> list[Config]:
    """The signed-transition architectures as published, and every configuration run with
    Grazzi et al.'s negative-eigenvalue knob on (e.g. mamba3[mamba3.allow_neg_eigval=true])."""
    knob = [c for c in setting.configs.values() if NEGATIVE_EIGENVALUE_KNOB in c.label.lower()]
    return [*setting.get(*SIGNED_TRANSITION), *knob]


def judged(setting: Setting, configs: list[Config], parts: list[str], observed: str) -> Outcome:
    return Outcome(gate(configs, combine(parts)), observed, setting.label)


NOT_LEARNT = " (attention did not learn it within the budget: nothing to compare)"
CEILING = " (the baseline already solves it: no room to be far above)"


def unsolved(config: Config | None) -> bool:
    """The reference model has not solved its task here: a claim that compares others with
    it (or presumes the task learnable) has nothing to stand on at this budget."""
    return config is not None and at_least(config, MARGINS.solved) != SUPPORTED


def nothing_to_compare(setting: Setting, configs: list[Config], observed: str, why: str) -> Outcome:
    return Outcome(gate(configs, INCONCLUSIVE), observed + why, setting.label)


# -- 1. Zoology --
def judge_zoology(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(RECALL):
        attention, others = setting.plain(ATTENTION), setting.get(*FIXED_STATE)
        if attention is None or not others:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model"))
            continue
        parts = [at_least(attention, MARGINS.solved)] + [above(attention, b) for b in others]
        best_other = max(b.accuracy().mean for b in others)
        gap = attention.accuracy().mean - best_other
        observed = f"{describe([attention, *others])}; gap to the best recurrence {gap:+.2f}"
        if unsolved(attention):
            outcomes.append(nothing_to_compare(setting, [attention, *others], observed, NOT_LEARNT))
            continue
        outcomes.append(judged(setting, [attention, *others], parts, observed))
    return outcomes


def judge_state_size(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(RECALL):
        sized = [
            (c.model_value("mamba", "d_state"), c)
            for c in setting.variants("mamba")
            if c.model_value("mamba", "d_state") is not None
        ]
        sizes = sorted({s for s, _ in sized})
        if len(sizes) < 2:
            outcomes.append(missing(setting, "mamba at two or more d_state values"))
            continue
        small = next(c for s, c in sized if s == sizes[0])
        large = next(c for s, c in sized if s == sizes[-1])
        observed = f"d_state {sizes[0]}: {small.accuracy().format()}; " + (
            f"d_state {sizes[-1]}: {large.accuracy().format()}"
        )
        if at_least(small, MARGINS.solved) == SUPPORTED:
            observed += " (the smallest state already solves it: no room to improve)"
            outcomes.append(Outcome(gate([small, large], INCONCLUSIVE), observed, setting.label))
            continue
        if unsolved(setting.plain(ATTENTION)):
            outcomes.append(nothing_to_compare(setting, [small, large], observed, NOT_LEARNT))
            continue
        outcomes.append(judged(setting, [small, large], [above(large, small)], observed))
    return outcomes


# -- 2. Mamba selective copying --
def judge_selective_copy(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(SELECTIVE_COPY):
        mamba, lru = setting.plain("mamba"), setting.plain("lru")
        if mamba is None or lru is None:
            outcomes.append(missing(setting, "mamba", "lru"))
            continue
        parts = [at_least(mamba, MARGINS.solved), above(mamba, lru)]
        outcomes.append(judged(setting, [mamba, lru], parts, describe([mamba, lru])))
    return outcomes


# -- 3. Mamba induction extrapolation --
def judge_induction(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(EXTRAPOLATION):
        mamba, attention = setting.plain("mamba"), setting.plain(ATTENTION)
        if mamba is None or attention is None:
            outcomes.append(missing(setting, "mamba", ATTENTION))
            continue
        train = mamba.seq_len
        reach = [n for n in mamba.lengths() if n <= MARGINS.extrapolation_ratio * train]
        if max(mamba.lengths(), default=train) < MARGINS.extrapolation_ratio * train:
            need = f"mamba tested at >= {MARGINS.extrapolation_ratio}x the training length"
            outcomes.append(missing(setting, need))
            continue
        parts = [at_least(mamba, MARGINS.extrapolates, n) for n in reach]
        observed = "mamba " + ", ".join(
            f"{n // train}x: {mamba.accuracy(n).format()}" for n in mamba.lengths()
        )
        measured = [n for n in attention.lengths() if not attention.oom_at(n)]
        far = [n for n in measured if n >= 4 * attention.seq_len]
        learnt = at_least(attention, MARGINS.solved)
        observed += f"; {ATTENTION} 1x: {attention.accuracy().format()}"
        if learnt != SUPPORTED:
            observed += " (attention did not learn it at its training length: nothing to compare)"
            parts.append(INCONCLUSIVE)
        elif not far:
            parts.append(NOT_MEASURED)
        else:
            longest = far[-1]
            parts.append(below(attention, MARGINS.chance_high, longest))
            observed += f", {longest // attention.seq_len}x: {attention.accuracy(longest).format()}"
        ooms = [n for n in attention.lengths() if attention.oom_at(n)]
        if ooms:
            observed += f" (oom from {ooms[0]} tokens)"
        outcomes.append(judged(setting, [mamba, attention], parts, observed))
    return outcomes


# -- 4. Jelassi et al.: copying --
def judge_copy(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(COPYING):
        attention, others = setting.plain(ATTENTION), setting.get(*FIXED_STATE)
        if attention is None or not others:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model"))
            continue
        parts = [at_least(attention, MARGINS.solved)] + [above(attention, b) for b in others]
        parts += [fewer_samples(attention, b) for b in others]
        tokens = "; ".join(f"{c.name} {_tokens(c.tokens_to(0.9))}" for c in [attention, *others])
        observed = f"{describe([attention, *others])}; tokens to 0.9: {tokens}"
        if unsolved(attention):
            outcomes.append(nothing_to_compare(setting, [attention, *others], observed, NOT_LEARNT))
            continue
        outcomes.append(judged(setting, [attention, *others], parts, observed))
    return outcomes


def fewer_samples(a: Config, b: Config) -> str:
    """a reaches 0.9 with at most 1/`fewer_samples` of b's training tokens (median seeds)."""
    ta, tb = a.tokens_to(0.9), b.tokens_to(0.9)
    if math.isfinite(ta) and ta * MARGINS.fewer_samples <= tb:
        return SUPPORTED
    if math.isfinite(tb) and tb <= ta:
        return CONTRADICTED
    return INCONCLUSIVE


def _tokens(value: float) -> str:
    return "never" if math.isinf(value) else ("–" if math.isnan(value) else f"{value:,.0f}")


# -- 5. Grazzi et al. / Mamba-3: state tracking --
def judge_state_tracking(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(STATE_TRACKING):
        signed, positive = signed_configs(setting), setting.get(*POSITIVE_DECAY)
        observed = describe([*signed, *positive])
        if not signed or not positive:
            outcome = missing(setting, "a signed-transition recurrence (mamba3, deltanet)",
                              "a positive-decay one (mamba, mamba2)")  # fmt: skip
            outcome.observed += f"; measured: {observed}" if observed else ""
            outcomes.append(outcome)
            continue
        parts = [at_least(a, MARGINS.solved) for a in signed]
        parts += [below(b, MARGINS.solved) for b in positive]
        parts += [above(a, b) for a in signed for b in positive]
        outcomes.append(judged(setting, [*signed, *positive], parts, observed))
    return outcomes


# -- 6. GQA --
def judge_gqa(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(RECALL):
        mha, gqa = setting.plain(ATTENTION), setting.plain("gqa")
        if mha is None or gqa is None:
            outcomes.append(missing(setting, ATTENTION, "gqa"))
            continue
        observed = describe([mha, gqa])
        if at_least(mha, MARGINS.solved) != SUPPORTED:
            observed += " (MHA did not solve it: closeness would compare failures)"
            outcomes.append(Outcome(gate([mha, gqa], INCONCLUSIVE), observed, setting.label))
            continue
        outcomes.append(judged(setting, [mha, gqa], [close(gqa, mha)], observed))
    return outcomes


# -- 7. Needle in a haystack --
def judge_niah(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(RETRIEVAL, across=("seq_len",)):
        attention, others = setting.plain(ATTENTION), setting.get(*FIXED_STATE)
        if attention is None or not others:
            outcomes.append(missing(setting, ATTENTION, "a fixed-state model"))
            continue
        by_length = attention.split("seq_len")
        if len(by_length) < 2:
            outcomes.append(missing(setting, "two or more training lengths"))
            continue
        parts = [at_least(c, MARGINS.solved) for _, c in by_length]
        configs = [c for _, c in by_length]
        texts = [
            f"{ATTENTION} " + ", ".join(f"L{n}: {c.accuracy().format()}" for n, c in by_length)
        ]
        for other in others:
            lengths = other.split("seq_len")
            short, long = lengths[0][1], lengths[-1][1]
            parts.append(above(short, long))  # degrades as the context grows
            configs += [short, long]
            texts.append(f"{other.name} " + per_length(lengths))
        outcomes.append(judged(setting, configs, parts, "; ".join(texts)))
    return outcomes


def per_length(configs: list[tuple[int, Config]]) -> str:
    return ", ".join(f"L{n}: {c.accuracy().format()}" for n, c in configs)


# -- 8. MoE memorization --
def judge_moe(evidence: Evidence) -> list[Outcome]:
    outcomes = []
    for setting in evidence.settings(MEMORIZATION):
        moe, dense = setting.plain("mha-moe"), setting.plain(ATTENTION)
        if moe is None or dense is None:
            outcomes.append(missing(setting, "mha-moe", ATTENTION))
            continue
        observed = describe([moe, dense])
        a, b = moe.active_params(), dense.active_params()
        if a and b:
            observed += f"; active params {a:,.0f} vs {b:,.0f}"
            if abs(a - b) / b > MARGINS.active_tolerance:
                observed += " (not equal: the comparison is not the published one)"
                outcomes.append(Outcome(INCONCLUSIVE, observed, setting.label))
                continue
        if not unsolved(dense):
            outcomes.append(nothing_to_compare(setting, [moe, dense], observed, CEILING))
            continue
        outcomes.append(judged(setting, [moe, dense], [above(moe, dense)], observed))
    return outcomes


M = MARGINS
FINDINGS: tuple[Finding, ...] = (
    Finding(
        "zoology-mqar",
        "Arora et al. 2023, Zoology (arXiv:2312.04927)",
        "On MQAR, attention solves it at d_model 64 where fixed-state recurrences do not; the "
        "gap grows with the number of pairs and the length.",
        RECALL,
        "mqar at d_model 64, two or more (pairs, length, vocabulary) settings; mha vs mamba, "
        "lru (and any other fixed-state mixer run)",
        "mha ≥ 0.9, far above every fixed-state model",
        f"per setting: mha's interval ≥ {M.solved} and, for each recurrence, intervals disjoint "
        f"with a mean gap ≥ {M.far} (contradicted when the gap cannot reach {M.far}); "
        "inconclusive where mha did not solve it (nothing to compare at that budget)",
        judge_zoology,
    ),
    Finding(
        "zoology-state-size",
        "Arora et al. 2023, Zoology (arXiv:2312.04927)",
        "A recurrence's recall improves with its state size (Mamba's d_state).",
        RECALL,
        "mqar settings of zoology-mqar with mamba at two or more d_state values",
        "accuracy(largest d_state) > accuracy(smallest d_state)",
        f"per setting: largest state far above the smallest (gap ≥ {M.far}, disjoint); "
        "inconclusive when the smallest state already solves it, or when mha does not (the "
        "task was not learnable at that budget)",
        judge_state_size,
    ),
    Finding(
        "mamba-selective-copy",
        "Gu & Dao 2023, Mamba, Table 1 (arXiv:2312.00752)",
        "Selective copying: the selective SSM is far above the time-invariant recurrence (LRU).",
        SELECTIVE_COPY,
        "selective_copy at two or more (length, tokens to copy) settings; mamba vs lru",
        "mamba ≥ 0.9, far above lru",
        f"per setting: mamba's interval ≥ {M.solved} and disjoint from lru's, mean gap ≥ {M.far}",
        judge_selective_copy,
    ),
    Finding(
        "mamba-induction",
        "Gu & Dao 2023, Mamba, induction heads (arXiv:2312.00752)",
        "Trained at one length, Mamba stays ≥ 0.95 up to ≥ 64× that length; RoPE attention "
        "falls towards chance beyond a few times it.",
        EXTRAPOLATION,
        "induction trained at two lengths, tested up to 2^14 tokens (attention up to its "
        "memory cap, longer lengths recorded oom); mamba vs mha",
        f"mamba ≥ {M.extrapolates} at every length up to {M.extrapolation_ratio}×; "
        f"mha < {M.chance_high} at its longest length ≥ 4×",
        f"mamba's interval ≥ {M.extrapolates} at each length ≤ {M.extrapolation_ratio}× "
        f"(contradicted when below at one); mha must solve its training length, then its "
        f"interval at the longest measured length ≥ 4× must lie below {M.chance_high}",
        judge_induction,
    ),
    Finding(
        "jelassi-copy",
        "Jelassi et al. 2024, Repeat After Me (arXiv:2402.01032)",
        "On copying, transformers succeed and fixed-state models fail once the string exceeds "
        "their state; transformers need far fewer samples.",
        COPYING,
        "copy at two or more string lengths; mha vs mamba, lru",
        f"mha ≥ 0.9, far above each fixed-state model, reaching 0.9 accuracy with ≤ "
        f"1/{M.fewer_samples:g} of its training tokens",
        f"per setting: as zoology-mqar, plus median tokens-to-0.9 of mha × {M.fewer_samples:g} "
        "≤ the recurrence's (a recurrence that never reaches 0.9 counts as infinite)",
        judge_copy,
    ),
    Finding(
        "grazzi-state-tracking",
        "Grazzi et al. 2025, negative eigenvalues (arXiv:2411.12537); Mamba-3 (2025)",
        "Parity and modular counting are solved by recurrences whose transition can be "
        "negative or complex, not by positive-decay ones (Mamba-1/2).",
        STATE_TRACKING,
        "parity and modular (two moduli or lengths); mamba3 / deltanet vs mamba, mamba2",
        "signed-transition models ≥ 0.9; mamba, mamba2 < 0.9 and far below",
        f"per setting: each signed model's interval ≥ {M.solved}, each positive-decay model's "
        f"< {M.solved}, disjoint with mean gap ≥ {M.far}",
        judge_state_tracking,
    ),
    Finding(
        "gqa-quality",
        "Ainslie et al. 2023, GQA (arXiv:2305.13245)",
        "Grouped-query attention keeps MHA's quality while dividing the KV cache by h/G.",
        RECALL,
        "mqar settings of zoology-mqar; gqa (2 kv heads) vs mha (the KV-cache ratio is "
        "checked from profile records under Claims)",
        f"|mha − gqa| ≤ {M.close} where mha solves the task",
        f"per setting: mha's interval ≥ {M.solved} (else inconclusive), then means within "
        f"{M.close} with overlapping intervals (contradicted when gqa's upper bound is more "
        f"than {M.close} below mha's lower)",
        judge_gqa,
    ),
    Finding(
        "niah-depth",
        "Hsieh et al. 2024, RULER (arXiv:2404.06654); needle in a haystack",
        "Attention retrieves the needle at every depth; fixed-state models degrade as the "
        "context grows.",
        RETRIEVAL,
        "niah (random depth) at two variants, each trained at two or more lengths; mha vs "
        "mamba, lru",
        "mha ≥ 0.9 at every length; each recurrence far lower at the longest length than at "
        "the shortest",
        f"per variant: mha's interval ≥ {M.solved} at each length, and each recurrence's "
        f"shortest-length interval far above (gap ≥ {M.far}, disjoint) its longest-length one",
        judge_niah,
    ),
    Finding(
        "moe-memorization",
        "MAD (Poli et al. 2024, arXiv:2403.17844); Switch/GShard MoE",
        "At equal active parameters, an MoE memorises more than the dense model, because it "
        "has more total parameters.",
        MEMORIZATION,
        "memorization at two map sizes (vocabularies); mha-moe vs mha at equal active params",
        "mha-moe far above mha",
        f"per setting: active parameters within {M.active_tolerance:.0%}, then mha-moe's "
        f"interval disjoint above mha's with mean gap ≥ {M.far}; inconclusive when mha already "
        f"solves it (≥ {M.solved}: no room to be far above)",
        judge_moe,
    ),
    Finding(
        "based-recall",
        "Arora et al. 2024, Based (arXiv:2402.18668); Zoology (arXiv:2312.04927)",
        "On MQAR at equal width, attention ≥ Based (Taylor linear attention + short convolutions "
        "+ sliding-window attention) > gated convolutions (Hyena).",
        MQAR,
        "mqar at two or more pair counts (the recall suite); mha, based, hyena",
        "mha ≥ based, based far above hyena",
        f"per setting: mha's mean no more than {M.close} under based's with overlapping or "
        f"higher intervals (contradicted when based's lower bound is over {M.close} above mha's "
        f"upper), and based far above hyena (gap ≥ {M.far}, disjoint)",
        judge_based,
        suites=("recall",),
    ),
    Finding(
        "deltanet-recall",
        "Yang et al. 2024, DeltaNet (arXiv:2406.06484)",
        "The delta rule recalls at least as well as decay-only linear recurrences (GLA, RetNet) "
        "on MQAR.",
        MQAR,
        "mqar at two or more pair counts (the recall suite); deltanet vs gla, retnet",
        "deltanet ≥ gla and deltanet ≥ retnet",
        f"per setting and rival: deltanet's mean no more than {M.close} under the rival's with "
        f"overlapping or higher intervals (contradicted when the rival's lower bound is over "
        f"{M.close} above deltanet's upper)",
        judge_delta_rule,
        suites=("recall",),
    ),
    Finding(
        "recall-gap-pairs",
        "Arora et al. 2023, Zoology (arXiv:2312.04927)",
        "Attention's lead over fixed-state models on MQAR grows with the number of key-value "
        "pairs.",
        MQAR,
        "mqar at two or more pair counts, same length and vocabulary; mha vs every linear "
        "recurrence run (based, the linear-attention family, mamba2/3, lru)",
        f"(mha − model) at the most pairs ≥ (mha − model) at the fewest + {M.far}",
        f"per model: the growth of the gap from the intervals' least favourable ends > 0 and "
        f"its mean ≥ {M.far} (contradicted when even the most favourable ends give < "
        f"{M.far}); a model that solves the most pairs (≥ {M.solved}) leaves it inconclusive",
        judge_pairs_gap,
        suites=("recall",),
    ),
)


def finding_names() -> list[str]:
    return [f.name for f in FINDINGS]
