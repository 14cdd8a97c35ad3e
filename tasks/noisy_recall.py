"""Noisy in-context recall (MAD-lab, Poli et al. 2024): recall with noise slots to ignore.

Key-value pairs of single tokens, where each pair is replaced, with probability `frac_noise`,
by two tokens of a separate noise vocabulary. Every value of a key seen earlier is scored
(see tasks/recall.py for the shared definition). MAD's setting is the default: vocab 32 with
16 noise tokens (so 8 keys and 8 values), length 128, 20% noise; MAD sweeps frac_noise up to
0.8. `at_length` keeps every knob but the length.

Worked example (vocab_size 12, noise_vocab_size 4, seq_len 12; keys 0..3, values 4..7, noise
8..11; key 2 returns with its value 5):

    inputs   2  5  9  11 0  7  2  5  10 8  2  5
    targets  -  -  -  -  -  -  5  -  -  -  5  -      (- = unscored)
"""

from __future__ import annotations

from dataclasses import dataclass

from seqbench.tasks.recall import RecallTask
from seqbench.tasks.registry import TASKS


@TASKS.register("noisy_recall")
@dataclass
class NoisyRecall(RecallTask):
    name = "noisy_recall"
    description = "noisy recall (MAD): associative recall with noise tokens to ignore"
    version = 1  # bump whenever generate() changes: the run identity includes it
    tags = ("recall",)

    vocab_size: int = 32
    seq_len: int = 128
    k_motif_size: int = 1
    v_motif_size: int = 1
    noise_vocab_size: int = 16
    frac_noise: float = 0.2
