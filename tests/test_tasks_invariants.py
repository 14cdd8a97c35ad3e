"""Each task's defining invariant, checked on many samples with code independent of `oracle`."""

from __future__ import annotations

import torch

from seqbench.tasks import IGNORE_INDEX, make_task
from seqbench.tasks.flipflop import IGNORE, READ, WRITE
from seqbench.tasks.listops import PAD
from seqbench.tasks.listops_trees import END, FIRST_OP

N = 256


# -- recall ------------------------------------------------------------------------------------
def test_mqar_keys_values_and_queries() -> None:
    task = make_task("mqar", vocab_size=64, seq_len=48, num_pairs=6)
    batch = task.sample(N, 0)
    pairs, half = 6, 32
    keys, values = batch.inputs[:, 0 : 2 * pairs : 2], batch.inputs[:, 1 : 2 * pairs : 2]
    assert ((keys >= 1) & (keys < half)).all() and ((values >= half) & (values < 64)).all()
    assert (keys.sort(1).values.diff(dim=1) > 0).all(), "keys are distinct"
    assert (values.sort(1).values.diff(dim=1) > 0).all(), "values are distinct"
    assert (batch.scored.sum(1) == pairs).all()
    for b in range(N):
        where = batch.scored[b].nonzero()[:, 0]
        assert ((where >= 2 * pairs) & ((where - 2 * pairs) % 2 == 0)).all()
        asked = batch.inputs[b, where].tolist()
        assert sorted(asked) == sorted(keys[b].tolist()), "every key is asked exactly once"
        paired = dict(zip(keys[b].tolist(), values[b].tolist(), strict=True))
        assert batch.targets[b, where].tolist() == [paired[k] for k in asked]


def test_mqar_query_gaps_follow_the_power_law() -> None:
    """With one pair, P(gap = i) must be (i + 1) ** (alpha - 1) normalised (Zoology's law)."""
    space = 12
    for alpha in (0.01, 0.5, 1.0):
        task = make_task("mqar", seq_len=2 + 2 * space, num_pairs=1, alpha=alpha)
        batch = task.sample(20_000, 1)
        gaps = (batch.scored.float().argmax(dim=1) - 2) // 2
        seen = torch.bincount(gaps, minlength=space).float() / len(gaps)
        law = torch.arange(1, space + 1, dtype=torch.float) ** (alpha - 1)
        assert torch.allclose(seen, law / law.sum(), atol=0.012), (alpha, seen)


def test_mqar_zero_filler_without_random_non_queries() -> None:
    task = make_task("mqar", seq_len=32, num_pairs=4, random_non_queries=False)
    batch = task.sample(N, 2)
    rest = batch.inputs[:, 8:]
    assert ((rest == 0) | batch.scored[:, 8:]).all()


def _slots(row: list[int], key_vocab: int, plain: int) -> list[tuple[tuple, tuple, int]]:
    """(key motif, value motif, position of the last key token) for each key-value slot."""
    out, t = [], 0
    while t < len(row):
        if row[t] < key_vocab:
            e = t
            while e < len(row) and row[e] < key_vocab:
                e += 1
            f = e
            while f < len(row) and key_vocab <= row[f] < plain:
                f += 1
            out.append((tuple(row[t:e]), tuple(row[e:f]), e - 1))
            t = f
        else:
            t += 1
    return out


def test_fuzzy_recall_motifs_and_consistent_values() -> None:
    task = make_task("fuzzy_recall")
    batch = task.sample(64, 3)
    sizes: set[tuple[int, int]] = set()
    for b, row in enumerate(batch.inputs.tolist()):
        slots = _slots(row, task.key_vocab, task.plain_vocab)
        memory: dict[tuple, tuple] = {}
        for key, value, end in slots:
            assert 1 <= len(key) <= 3 and len(set(key)) == len(key), key
            assert 1 <= len(value) <= 3 and len(set(value)) == len(value), value
            sizes.add((len(key), len(value)))
            assert memory.setdefault(key, value) == value, "a key keeps its first value"
            scored = bool(batch.targets[b, end] != IGNORE_INDEX)
            assert scored == _seen_before(slots, key, end), "a value is scored iff its key recurs"
        assert _seen_before(slots, slots[-1][0], slots[-1][2]), "the last slot is a query"
        assert all(tok == task.pad for tok in row[: row.index(slots[0][0][0])])
    assert sizes == {(k, v) for k in (1, 2, 3) for v in (1, 2, 3)}


def _seen_before(slots: list, key: tuple, end: int) -> bool:
    return any(k == key and e < end for k, _, e in slots)


def test_noisy_recall_noise_rate_and_values() -> None:
    task = make_task("noisy_recall", seq_len=256, frac_noise=0.4)
    batch = task.sample(64, 4)
    pairs = batch.inputs.view(64, -1, 2)[:, :-1]  # all but the final query slot
    noise = pairs[:, :, 0] >= task.plain_vocab
    assert abs(noise.float().mean().item() - 0.4) < 0.03
    assert ((pairs[:, :, 1] >= task.plain_vocab) == noise).all(), "noise fills whole slots"
    for b in range(64):
        memory: dict[int, int] = {}
        for key, value in pairs[b][~noise[b]].tolist():
            assert memory.setdefault(key, value) == value


def test_memorization_map_is_fixed_across_seeds() -> None:
    task = make_task("memorization")
    seen: dict[int, int] = {}
    for seed in range(4):
        batch = task.sample(N, seed)
        keys, answers = batch.inputs[:, 0::2].flatten(), batch.targets[:, 1::2].flatten()
        for k, v in zip(keys.tolist(), answers.tolist(), strict=True):
            assert seen.setdefault(k, v) == v
    assert len(set(seen.values())) == len(seen), "the map is one-to-one"
    assert len(seen) == task.key_vocab == 127
    other = make_task("memorization", map_seed=1).table
    assert not torch.equal(other, task.table)


def test_memorization_with_shared_tokens_permutes_one_token_set() -> None:
    """Keys and values are the same V - 1 tokens: the map is a permutation of them, fixed
    across seeds, and the oracle agrees with the targets."""
    task = make_task("memorization", vocab_size=33, shared_tokens=True)
    assert task.key_vocab == task.plain_vocab == 32
    assert sorted(task.table.tolist()) == list(range(32))
    batch = task.sample(N, 3)
    keys, answers = batch.inputs[:, 0::2].flatten(), batch.targets[:, 1::2].flatten()
    assert torch.equal(answers, task.table[keys])
    scored = batch.targets != IGNORE_INDEX
    assert torch.equal(task.oracle(batch.inputs)[scored], batch.targets[scored])
    assert make_task("memorization", vocab_size=33).key_vocab == 16  # MAD's halves by default


def test_niah_needles_depth_and_answers() -> None:
    task = make_task("niah", seq_len=96, num_keys=1, num_values=3, depth=0.0, key_len=1)
    batch = task.sample(N, 5)
    assert (batch.inputs[:, 0] == task.needle_mark).all(), "depth 0 puts the needle first"
    for b, row in enumerate(batch.inputs.tolist()):
        marks = [t for t, tok in enumerate(row) if tok == task.needle_mark]
        assert len(marks) == 3 and row.count(task.query_mark) == 1
        values = [v for t in marks for v in row[t + 3 : t + 5]]  # `@ k = v v`
        answer = batch.targets[b][batch.scored[b]].tolist()
        assert answer == values, "all values of the key, in haystack order"
    end = make_task("niah", seq_len=64, depth=1.0).sample(N, 6)
    query_start = 64 - (2 + 2 + 2)
    assert (end.inputs[:, query_start - 6] == task.needle_mark).all(), "depth 1: last needle"


def test_niah_multikey_distinct_keys_and_one_answer() -> None:
    task = make_task("niah").variant("multikey")
    batch = task.sample(N, 7)
    for row in batch.inputs.tolist():
        keys = [tuple(row[t + 1 : t + 3]) for t, tok in enumerate(row) if tok == task.needle_mark]
        assert len(keys) == 4 and len(set(keys)) == 4
    assert (batch.scored.sum(1) == 2).all()


# -- copying -----------------------------------------------------------------------------------
def test_selective_copy_outputs_data_tokens_in_order() -> None:
    task = make_task("selective_copy", seq_len=40, num_tokens=6)
    batch = task.sample(N, 0)
    mark = 40 - 6 - 1
    assert (batch.inputs[:, mark] == task.marker).all()
    assert (batch.inputs[:, mark + 1 :] == task.blank).all()
    for b in range(N):
        context = batch.inputs[b, :mark]
        data = context[context != task.blank]
        assert len(data) == 6
        assert torch.equal(batch.targets[b, mark + 1 :], data)
    positions = (batch.inputs[:, :mark] != task.blank).float().mean(0)
    assert positions.min() > 0.05, "data tokens land everywhere in the context"


def test_induction_trigger_and_answer() -> None:
    task = make_task("induction")
    batch = task.sample(N, 1)
    is_trigger = batch.inputs == task.trigger
    assert (is_trigger.sum(1) == 2).all() and is_trigger[:, -1].all()
    first = is_trigger.float().argmax(dim=1)
    assert torch.equal(batch.targets[:, -1], batch.inputs.gather(1, first[:, None] + 1)[:, 0])
    assert (batch.scored.sum(1) == 1).all()


def test_copy_second_half_repeats_the_first() -> None:
    task = make_task("copy", seq_len=40, min_len=3, max_len=18)
    batch = task.sample(N, 2)
    lengths = []
    for b, row in enumerate(batch.inputs.tolist()):
        sep = row.index(task.sep)
        text = row[1:sep]
        lengths.append(len(text))
        assert row[0] == task.bos and row[sep + 1 : 2 * sep] == text
        assert row[2 * sep] == task.eos and set(row[2 * sep + 1 :]) <= {task.pad}
        assert batch.targets[b][batch.scored[b]].tolist() == [*text, task.eos]
    assert min(lengths) == 3 and max(lengths) == 18


def test_lookup_query_is_unique_and_answer_follows_it() -> None:
    for position in ("prefix", "suffix"):
        task = make_task(
            "lookup", vocab_size=12, seq_len=32, ngram=2, answer_len=2, key_position=position
        )
        batch = task.sample(N, 3)
        for b, row in enumerate(batch.inputs.tolist()):
            first = row.index(task.sep)
            if position == "prefix":
                query, text = row[1:3], row[first + 1 : row.index(task.sep, first + 1)]
            else:
                query, text = row[first + 1 : first + 3], row[1:first]
            hits = [i for i in range(len(text) - 1) if text[i : i + 2] == query]
            assert len(hits) == 1, (position, row)
            answer = batch.targets[b][batch.scored[b]].tolist()
            assert answer == [*text[hits[0] + 2 : hits[0] + 4], task.eos]


# -- state tracking ----------------------------------------------------------------------------
def test_parity_target_is_xor_of_bits_so_far() -> None:
    batch = make_task("parity").sample(N, 0)
    x, y = batch.inputs, batch.targets
    assert torch.equal(y[:, 0], x[:, 0])
    assert torch.equal(y[:, 1:] ^ y[:, :-1], x[:, 1:])
    last = make_task("parity", score="last").sample(N, 0)
    assert (last.scored.sum(1) == 1).all() and last.scored[:, -1].all()
    assert torch.equal(last.targets[:, -1], x.sum(1) % 2)


def test_modular_target_steps_by_the_input() -> None:
    batch = make_task("modular", modulus=7, vocab_size=7).sample(N, 1)
    x, y = batch.inputs, batch.targets
    assert torch.equal((y[:, 1:] - y[:, :-1]) % 7, x[:, 1:]) and torch.equal(y[:, 0], x[:, 0])


def test_flipflop_reads_return_the_last_write() -> None:
    task = make_task("flipflop", seq_len=128)
    batch = task.sample(N, 2)
    instr, bits = batch.inputs[:, 0::2], batch.inputs[:, 1::2]
    assert (instr[:, 0] == WRITE).all() and (instr[:, -1] == READ).all()
    assert ((bits == 0) | (bits == 1)).all()
    assert torch.equal(batch.scored[:, 0::2], instr == READ) and not batch.scored[:, 1::2].any()
    for b in range(N):
        memory = None
        for t, (op, bit) in enumerate(zip(instr[b].tolist(), bits[b].tolist(), strict=True)):
            if op == WRITE:
                memory = bit
            elif op == READ:
                assert bit == memory and batch.targets[b, 2 * t].item() == memory


def test_flipflop_dense_and_sparse_distributions() -> None:
    task = make_task("flipflop", seq_len=512)
    for variant, p_ignore in (("dense", 0.1), ("sparse", 0.98), (None, 0.8)):
        shifted = task.variant(variant) if variant else task
        instr = shifted.sample(N, 3).inputs[:, 2:-2:2]  # interior instructions
        assert abs((instr == IGNORE).float().mean().item() - p_ignore) < 0.02
        share = (instr == WRITE).float().mean() / (instr != IGNORE).float().mean()
        assert abs(share.item() - 0.5) < 0.05, "writes and reads equally likely"


def test_listops_lengths_brackets_and_answers() -> None:
    task = make_task("listops", seq_len=96)
    batch = task.sample(N, 4)
    expr = batch.inputs[:, :-1]
    length = (expr != PAD).sum(1)
    assert ((length >= 24) & (length <= 95)).all()
    opens = ((expr >= FIRST_OP) & (expr < END)).sum(1)
    assert torch.equal(opens, (expr == END).sum(1)) and (opens >= 1).all()
    assert (expr[:, -1] == END).all(), "right-aligned against the `=`"
    answers = batch.targets[:, -1]
    assert torch.bincount(answers, minlength=10).min() > 0, "all ten answers occur"
    assert (batch.targets[:, :-1] == IGNORE_INDEX).all()
