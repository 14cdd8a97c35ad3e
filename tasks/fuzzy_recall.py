"""Fuzzy in-context recall (MAD-lab, Poli et al. 2024): keys and values of varying length.

Keys are 1..k_motif_size tokens and values 1..v_motif_size tokens, so a model cannot count
positions to find a value: it must recognise where a key ends. Every value of a key seen
earlier in the sequence is scored, one token at a time (see tasks/recall.py for the shared
definition). MAD's setting is the default: vocab 16 (7 key tokens, 8 value tokens, a pad),
length 128, motifs up to 3 tokens. `at_length` keeps the vocabulary and motif sizes: more
slots, more repeats.

Worked example (vocab_size 16, seq_len 16, motifs up to 2 tokens; keys 0..6, values 7..14,
`*` = 15 pads the start; key (3 1) returns with its value (9 12), then key 5 is asked last):

    inputs   *  3  1  9  12 5  8  0  14 7  3  1  9  12 5  8
    targets  -  -  -  -  -  -  -  -  -  -  -  9  12 -  8  -      (- = unscored)
"""

from __future__ import annotations

from dataclasses import dataclass

from seqbench.tasks.recall import RecallTask
from seqbench.tasks.registry import TASKS


@TASKS.register("fuzzy_recall")
@dataclass
class FuzzyRecall(RecallTask):
    name = "fuzzy_recall"
    description = "fuzzy recall (MAD): recall multi-token values of multi-token keys"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("recall",)

    vocab_size: int = 16
    seq_len: int = 128
    k_motif_size: int = 3
    v_motif_size: int = 3
    noise_vocab_size: int = 0
    frac_noise: float = 0.0
