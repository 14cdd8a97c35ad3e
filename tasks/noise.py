"""MAD-lab's noise, shared by memorization and the in-context recall tasks.

A slot (a key-value pair) is replaced, with probability `frac_noise`, by tokens of a separate
noise vocabulary; one slot is always kept, so every sequence has something to score.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import Task


def check_noise_knobs(task: Task, noise_vocab_size: int, frac_noise: float) -> None:
    task.check(noise_vocab_size >= 0, "noise_vocab_size must be >= 0")
    task.check(0 <= frac_noise < 1, f"frac_noise must be in [0, 1), got {frac_noise}")
    task.check(frac_noise == 0 or noise_vocab_size > 0, "frac_noise > 0 needs noise_vocab_size > 0")


def noise_slots(n: int, slots: int, frac: float, keep_within: int, g: torch.Generator) -> Tensor:
    """(n, slots) True where a slot is noise; one slot among the first `keep_within` never is."""
    noise = torch.rand(n, slots, generator=g) < frac
    return noise.scatter_(1, sampling.randint(0, keep_within, (n, 1), g), False)


def noise_tokens(first: int, size: int, shape: tuple[int, ...], g: torch.Generator) -> Tensor:
    """Tokens drawn from the noise vocabulary first .. first+size-1 (any size >= 0)."""
    return first + sampling.randint(0, max(size, 1), shape, g)
