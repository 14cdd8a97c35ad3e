"""Shared core of MAD-lab's in-context recall tasks (Poli et al. 2024): fuzzy and noisy recall.

A sequence of key-value slots. Keys come from the lower half of the non-special vocabulary,
values from the upper half; a key is 1..k_motif_size distinct tokens, a value 1..v_motif_size
(MAD's "motifs"). Keys repeat at random; within a sequence a key always maps to the value it
had at its first occurrence. Every value whose key appeared before is a recall query and is
scored (MAD's multi-query setting), teacher-forced: the last key token predicts the first value
token, each value token predicts the next. The last slot repeats a key seen earlier, so every
sequence has at least one query. With probability `frac_noise` a slot is replaced by as many
random tokens from a separate noise vocabulary. Variable-size slots leave a few positions
free; they are filled with a pad token at the start, as in MAD.

Vocabulary (as MAD's multi-query layout): keys 0 .. K-1, values K .. 2K'-1, then the noise
tokens, then the pad token (only when motifs are longer than one token).

Differences from MAD's generator, on purpose: MAD trains on next-token loss everywhere and
scores only the recall positions at test; here the recall positions are the targets for both,
because no other position is determined by the inputs. MAD's test split fixes key motifs at
their maximum size; here train and test share one distribution (the test split differs only by
seed, as everywhere in seqbench).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from seqbench.tasks import sampling
from seqbench.tasks.base import IGNORE_INDEX, Batch, Task
from seqbench.tasks.layout import expand_index, next_token_targets, pack
from seqbench.tasks.noise import check_noise_knobs, noise_slots, noise_tokens


@dataclass
class RecallTask(Task):
    """MAD in-context recall with motifs and noise (not a registered task)."""

    vocab_size: int = 16
    seq_len: int = 128
    k_motif_size: int = 1
    v_motif_size: int = 1
    noise_vocab_size: int = 0
    frac_noise: float = 0.0

    # -- vocabulary ----------------------------------------------------------------------------
    @property
    def variable(self) -> bool:
        """Slots of varying size need a pad token to fill the sequence."""
        return self.k_motif_size > 1 or self.v_motif_size > 1

    @property
    def plain_vocab(self) -> int:
        return self.vocab_size - int(self.variable) - self.noise_vocab_size

    @property
    def key_vocab(self) -> int:
        return self.plain_vocab // 2

    @property
    def value_vocab(self) -> int:
        return self.plain_vocab - self.key_vocab

    @property
    def pad(self) -> int:
        return self.vocab_size - 1

    @property
    def budget(self) -> int:
        """Positions for the slots before the final query slot."""
        return self.seq_len - self.k_motif_size - self.v_motif_size

    def token_names(self) -> dict[int, str]:
        return {self.pad: "*"} if self.variable else {}

    def validate(self) -> None:
        super().validate()
        km, vm = self.k_motif_size, self.v_motif_size
        self.check(km >= 1 and vm >= 1, "k_motif_size and v_motif_size must be >= 1")
        check_noise_knobs(self, self.noise_vocab_size, self.frac_noise)
        self.check(
            self.key_vocab >= km and self.value_vocab >= vm,
            f"vocab_size {self.vocab_size} leaves {self.key_vocab} key and {self.value_vocab} "
            f"value tokens; motifs of {km} and {vm} distinct tokens need more",
        )
        self.check(
            km * math.log2(self.key_vocab) + math.log2(km + 1) < 62,
            "too many possible key motifs to index exactly (lower k_motif_size)",
        )
        self.check(
            self.budget >= km + vm,
            f"seq_len {self.seq_len} cannot hold a key-value slot and the final query "
            f"(need >= {2 * (km + vm)})",
        )
        self.check(
            self.variable or self.seq_len % 2 == 0,
            f"seq_len must be even with one-token keys and values, got {self.seq_len}",
        )

    # -- generation ----------------------------------------------------------------------------
    def generate(self, n: int, generator: torch.Generator) -> Batch:
        g, km, vm = generator, self.k_motif_size, self.v_motif_size
        slots = self.budget // 2  # the most slots that could fit (each has >= 2 tokens)
        key_size = sampling.randint(1, km + 1, (n, slots), g)  # (n, S)
        value_size = sampling.randint(1, vm + 1, (n, slots), g)
        keys = sampling.distinct(n * slots, km, self.key_vocab, g).view(n, slots, km)
        values = sampling.distinct(n * slots, vm, self.value_vocab, g).view(n, slots, vm)
        values = values + self.key_vocab
        always_fits = self.budget // (km + vm)  # slots that fit whatever their sizes
        noise = noise_slots(n, slots, self.frac_noise, always_fits, g)  # (n, S)

        slot = torch.arange(slots).expand(n, slots)
        codes = torch.where(noise, -1 - slot, self._key_codes(keys, key_size))
        first = sampling.first_occurrence(codes)  # (n, S)
        values = values.gather(1, first[:, :, None].expand_as(values))  # a key keeps its value
        value_size = torch.where(noise, value_size, value_size.gather(1, first))
        size = key_size + value_size  # a noise slot is as long as the slot it replaces
        kept = size.cumsum(dim=1) <= self.budget  # (n, S) a prefix of the slots

        # The final slot asks again for a key presented earlier (uniformly among them).
        ask = sampling.choose_where(kept & ~noise & (first == slot), g)[:, None]  # (n, 1)

        def with_final(x: Tensor) -> Tensor:
            return torch.cat([x, x.gather(1, expand_index(ask, x))], dim=1)

        keys, values, key_size, value_size = map(with_final, (keys, values, key_size, value_size))
        noise = torch.cat([noise, torch.zeros(n, 1, dtype=torch.bool)], dim=1)
        repeat = (first != slot) & ~noise[:, :-1]  # (n, S) a key seen before: a query
        repeat = torch.cat([repeat, torch.ones(n, 1, dtype=torch.bool)], dim=1)
        kept = torch.cat([kept, torch.ones(n, 1, dtype=torch.bool)], dim=1)

        pieces, flags = self._slot_tokens(keys, values, key_size, value_size, noise, repeat, g)
        lengths = torch.where(kept, key_size + value_size, 0)  # (n, S + 1)
        offset = self.seq_len - lengths.sum(dim=1)  # (n,) left padding, as in MAD
        fill = self.pad if self.variable else 0
        inputs, _ = pack(pieces, lengths, self.seq_len, fill, offset)
        score_next, _ = pack(flags, lengths, self.seq_len, False, offset)
        return Batch(inputs, next_token_targets(inputs, score_next))

    def _key_codes(self, keys: Tensor, key_size: Tensor) -> Tensor:
        """(n, S) one integer per distinct key motif (its size and its tokens)."""
        km, base = self.k_motif_size, self.key_vocab
        place = base ** torch.arange(km)  # (km,)
        used = torch.arange(km) < key_size[:, :, None]  # (n, S, km)
        return (keys * place * used).sum(-1) + key_size * base**km

    def _slot_tokens(
        self,
        keys: Tensor,
        values: Tensor,
        key_size: Tensor,
        value_size: Tensor,
        noise: Tensor,
        repeat: Tensor,
        g: torch.Generator,
    ) -> tuple[Tensor, Tensor]:
        """Each slot's tokens, key then value (n, S, km + vm), and the positions it scores."""
        km = self.k_motif_size
        width = km + self.v_motif_size
        j = torch.arange(width)  # position inside the slot
        ks, vs = key_size[:, :, None], value_size[:, :, None]
        source = torch.where(j < ks, j, km + j - ks).clamp(max=width - 1)  # (n, S, W)
        tokens = torch.cat([keys, values], dim=2).gather(2, source)
        filler = noise_tokens(self.plain_vocab, self.noise_vocab_size, tuple(tokens.shape), g)
        tokens = torch.where(noise[:, :, None], filler, tokens)
        # Last key token predicts value[0]; value[i] predicts value[i + 1].
        flags = repeat[:, :, None] & (j >= ks - 1) & (j <= ks + vs - 2)
        return tokens, flags

    # -- reference -----------------------------------------------------------------------------
    def oracle(self, inputs: Tensor) -> Tensor:
        out = torch.full_like(inputs, IGNORE_INDEX)
        keys, values = range(self.key_vocab), range(self.key_vocab, self.plain_vocab)
        for b, row in enumerate(inputs.tolist()):
            memory: dict[tuple[int, ...], list[int]] = {}
            t = 0
            while t < len(row):
                if row[t] not in keys:
                    t += 1
                    continue
                e = t
                while e < len(row) and row[e] in keys:
                    e += 1
                f = e
                while f < len(row) and row[f] in values:
                    f += 1
                key = tuple(row[t:e])
                if key in memory:
                    for i, tok in enumerate(memory[key]):
                        out[b, e - 1 + i] = tok
                elif f > e:
                    memory[key] = row[e:f]
                t = f
        return out
