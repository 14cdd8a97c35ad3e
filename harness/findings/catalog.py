"""The registry of published findings: each entry is a claim the `paper` suites test.

Architectures are named as the presets register them; ones that live on other branches or in
plugins (mamba3, the linear-attention family) count when their runs are in the folder and are
simply absent otherwise, so a finding about them reads "not measured" rather than failing.
"""

from __future__ import annotations

from seqbench.harness.findings.base import MARGINS, Finding
from seqbench.harness.findings.judge_memory import (
    COPYING,
    EXTRAPOLATION,
    MEMORIZATION,
    RETRIEVAL,
    SELECTIVE_COPY,
    judge_copy,
    judge_induction,
    judge_moe,
    judge_niah,
    judge_selective_copy,
)
from seqbench.harness.findings.judge_recall import (
    RECALL,
    judge_gqa,
    judge_state_size,
    judge_zoology,
)
from seqbench.harness.findings.judge_state import STATE_TRACKING, judge_state_tracking
from seqbench.harness.findings.recall_orderings import (
    MQAR,
    judge_based,
    judge_delta_rule,
    judge_pairs_gap,
)
from seqbench.harness.protocol import SOLVED

M = MARGINS
# When the state of a model under test holds a point of a capacity sweep (`curves.holds`).
HOLDS = (
    f"its interval ≥ {M.solved}, or one seed solved it (validation ≥ {SOLVED}, test ≥ {M.solved})"
)
FINDINGS: tuple[Finding, ...] = (
    Finding(
        "zoology-mqar",
        "Arora et al. 2023, Zoology (arXiv:2312.04927)",
        "On MQAR, attention solves it at d_model 64 where fixed-state recurrences do not, once "
        "the key-value pairs outgrow their state.",
        RECALL,
        "mqar swept over the number of pairs at fixed length, vocabulary and width (two such "
        "sweeps); attention is the reference (trained until solved), every other model gets "
        "3x its steps; mha vs mamba, lru and any other fixed-state mixer run",
        "attention ≥ 0.9 as the pairs grow; each fixed-state model far below it where the "
        "pairs outgrow its state",
        f"per sweep, at the most pairs mha solves (interval ≥ {M.solved}): each fixed-state "
        f"model's interval disjoint below mha's with a mean gap ≥ {M.far} (contradicted when "
        f"the gap cannot reach {M.far}); a model whose state holds that point too ({HOLDS}) "
        "was never pushed past its state (not at the paper's condition); inconclusive where "
        "mha solves no pair count",
        judge_zoology,
        suites=("paper", "paper-long"),
    ),
    Finding(
        "zoology-state-size",
        "Arora et al. 2023, Zoology (arXiv:2312.04927)",
        "A recurrence's recall grows with its state: a larger state moves the fall to more "
        "pairs (Mamba's d_state).",
        RECALL,
        "the MQAR pair sweeps of zoology-mqar with a recurrence (mamba, mamba2, ...) at a "
        "small and a large d_state",
        "at the most pairs the largest state solves, the smallest far below",
        f"per sweep and recurrence: at the most pairs its largest d_state solves (interval ≥ "
        f"{M.solved}), the "
        f"smallest's interval disjoint below with a mean gap ≥ {M.far}; not at the paper's "
        f"condition when the small state still holds that point ({HOLDS}) or the large one "
        "solves no pair count",
        judge_state_size,
        suites=("paper", "paper-long"),
    ),
    Finding(
        "mamba-selective-copy",
        "Gu & Dao 2023, Mamba, Table 1 (arXiv:2312.00752)",
        "Selective copying: the selective SSM solves it, far above the time-invariant "
        "recurrence (LRU).",
        SELECTIVE_COPY,
        "selective_copy swept over the sequence length (the LRU's state holds a short "
        "sequence whole, not a long one) at two numbers of tokens to copy; mamba is the "
        "reference (trained until solved), lru gets 3x its steps",
        "mamba ≥ 0.9 and lru far below it at the lengths where the lru's state no longer "
        "holds the sequence",
        f"per sweep, at the first length mamba solves (interval ≥ {M.solved}) and lru's state "
        f"does not hold ({HOLDS}): lru's interval disjoint below with a mean gap ≥ {M.far}; an "
        "lru that holds every length mamba solves was never pushed past its state (not at the "
        "paper's condition)",
        judge_selective_copy,
    ),
    Finding(
        "mamba-induction",
        "Gu & Dao 2023, Mamba, induction heads (arXiv:2312.00752)",
        "Trained at one length, Mamba stays ≥ 0.95 up to ≥ 64× that length; RoPE attention "
        "falls towards chance beyond a few times it.",
        EXTRAPOLATION,
        "induction trained at two lengths, tested up to 2^14 tokens (attention up to its "
        "memory cap, longer lengths recorded oom); attention is the reference (trained until "
        "solved at its training length), mamba gets 3x its steps",
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
        "what their state holds.",
        COPYING,
        "copy swept over the string length (the sequence length) at two state sizes of the "
        "fixed-state models (e.g. lru.d_state); attention is the reference, the others get a "
        "multiple of its steps (the paper suite: 15x, as at 3x no recurrence learns even the "
        "shortest string); the longest string each copies at ≥ 0.9 is reported, and the training "
        "tokens to 0.9 (the paper's sample-efficiency point) beside it",
        "mha copies every length; each fixed-state model copies the short strings and falls "
        "far below mha once the string outgrows its state",
        f"per model, at the shortest length mha copies (interval ≥ {M.solved}) and the model "
        f"does not hold ({HOLDS}): the model's interval disjoint below mha's with a mean gap "
        f"≥ {M.far}, and the model copies some shorter length (interval); a model that holds "
        "every length mha copies (or copies none) is not at the paper's condition, never "
        "contradicted",
        judge_copy,
    ),
    Finding(
        "grazzi-state-tracking",
        "Grazzi et al. 2025, negative eigenvalues (arXiv:2411.12537); Mamba-3 (Lahoti et al. "
        "2026)",
        "Parity and modular counting are solved, with length generalisation, by recurrences "
        "whose transition can be negative or complex, not by positive-decay ones (Mamba-1/2).",
        STATE_TRACKING,
        "parity and modular counting (mod 3, mod 5) trained on a range of lengths "
        "(min_seq_len..seq_len, a label at every position), tested at 4× and 8× the longest "
        "with one label at the end of the sequence (test_knobs score = last), scaled accuracy "
        "(acc − chance)/(1 − chance); on parity the signed Mamba is the reference, others 3x "
        "its steps; on mod m every model trains one fixed budget (the paper suite: mod 3, "
        "3000 steps)",
        "signed or rotating transitions ≥ 0.9 scaled accuracy at ≥ 4×; mamba, mamba2 far below",
        "per task, at the first test length ≥ 4× (8× reported beside it): each contender's "
        f"scaled interval ≥ {M.solved} (on parity: every signed or rotating model; on mod 3/5: "
        "the rotating ones, mamba3 with its rotary state and the delta rule with negative "
        "eigenvalues, since a real diagonal transition can only flip a sign), each positive-decay "
        "model's "
        f"< {M.solved} and disjoint below with a mean gap ≥ {M.far}; a contender that finished "
        f"learning and lies wholly below {M.solved} contradicts on its own, whatever the other "
        "models' learning",
        judge_state_tracking,
    ),
    Finding(
        "gqa-quality",
        "Ainslie et al. 2023, GQA (arXiv:2305.13245)",
        "Grouped-query attention keeps MHA's quality while dividing the KV cache by h/G.",
        RECALL,
        "the MQAR pair sweeps of zoology-mqar; gqa (2 kv heads) gets 3x mha's steps (the "
        "KV-cache ratio is checked from profile records under Claims)",
        f"|mha − gqa| ≤ {M.close} wherever mha solves the task",
        f"per sweep, at each pair count mha solves (interval ≥ {M.solved}): means within "
        f"{M.close} with overlapping intervals (contradicted when gqa's upper bound is more "
        f"than {M.close} below mha's lower); inconclusive where mha solves no pair count",
        judge_gqa,
        suites=("paper", "paper-long"),
    ),
    Finding(
        "niah-depth",
        "Hsieh et al. 2024, RULER (arXiv:2404.06654); needle in a haystack",
        "Attention retrieves the needle at every depth; fixed-state models degrade as the "
        "context grows.",
        RETRIEVAL,
        "niah (random depth), one needle, trained at two or more lengths over two "
        "vocabularies; mha is the reference, each recurrence gets a multiple of its steps (the "
        "paper suite: lru, 10x, as it learns retrieval ~5x slower even at the shortest length)",
        "mha ≥ 0.9 at every length; each recurrence that retrieves at the shortest length "
        "far lower at the longest",
        f"per variant: mha's interval ≥ {M.solved} at each length, and each recurrence's "
        f"shortest-length interval ≥ {M.solved} and far above (gap ≥ {M.far}, disjoint) its "
        f"longest-length one; a recurrence that holds the longest length ({HOLDS}), or does "
        "not solve the shortest, is not at the paper's condition",
        judge_niah,
    ),
    Finding(
        "moe-memorization",
        "MAD (Poli et al. 2024, arXiv:2403.17844); Switch/GShard MoE",
        "At equal active parameters, an MoE memorises more than the dense model, because it "
        "has more total parameters.",
        MEMORIZATION,
        "memorization swept over the map size (vocabulary) at a width where the dense model "
        "falls below its ceiling; mha-moe vs mha at equal active params; mha-moe is the "
        "reference (trained until it memorises the map), mha gets 3x its steps",
        "mha-moe far above mha wherever mha is below the ceiling",
        f"per sweep: active parameters within {M.active_tolerance:.0%}, then at each map size "
        f"where mha-moe memorises (interval ≥ {M.solved}) and mha does not hold the map "
        f"({HOLDS}) mha-moe's interval disjoint above mha's with mean gap ≥ {M.far}; not at the "
        "paper's condition when mha holds every size",
        judge_moe,
    ),
    Finding(
        "based-recall",
        "Arora et al. 2024, Based (arXiv:2402.18668); Zoology (arXiv:2312.04927)",
        "On MQAR at equal width, attention ≥ Based (Taylor linear attention + short convolutions "
        "+ sliding-window attention) > gated convolutions (Hyena).",
        MQAR,
        "mqar at every pair count of the sweeps; mha, based, hyena",
        "mha ≥ based, based far above hyena",
        f"per setting: mha's mean no more than {M.close} under based's with overlapping or "
        f"higher intervals (contradicted when based's lower bound is over {M.close} above mha's "
        f"upper), and based far above hyena (gap ≥ {M.far}, disjoint)",
        judge_based,
        suites=("paper", "recall"),
    ),
    Finding(
        "deltanet-recall",
        "Yang et al. 2024, DeltaNet (arXiv:2406.06484)",
        "The delta rule recalls at least as well as decay-only linear recurrences (GLA, RetNet) "
        "on MQAR.",
        MQAR,
        "mqar at every pair count of the sweeps; deltanet vs gla, retnet",
        "deltanet ≥ gla and deltanet ≥ retnet",
        f"per setting and rival: deltanet's mean no more than {M.close} under the rival's with "
        f"overlapping or higher intervals (contradicted when the rival's lower bound is over "
        f"{M.close} above deltanet's upper)",
        judge_delta_rule,
        suites=("paper", "recall"),
    ),
    Finding(
        "recall-gap-pairs",
        "Arora et al. 2023, Zoology (arXiv:2312.04927)",
        "Attention's lead over fixed-state models on MQAR grows with the number of key-value "
        "pairs.",
        MQAR,
        "the MQAR pair sweeps, same length and vocabulary; mha vs every linear recurrence run "
        "(based, the linear-attention family, mamba2/3, lru)",
        f"(mha − model) at the most pairs ≥ (mha − model) at the fewest + {M.far}",
        f"between the fewest and the most pairs mha solves, per model whose curve falls (it "
        f"solves the fewest, interval ≥ {M.solved}, and its state does not hold the most; "
        f"holds: {HOLDS}): the growth of the gap "
        f"from the intervals' least favourable ends > 0 and its mean ≥ {M.far} (contradicted "
        f"when even the most favourable ends give < {M.far}); models that hold both or "
        "neither are named and left out (none left: not at the paper's condition)",
        judge_pairs_gap,
        suites=("paper", "recall"),
    ),
)


def finding_names() -> list[str]:
    return [f.name for f in FINDINGS]
