"""Impossible knobs fail at construction with one clear line (a UserError), never later."""

from __future__ import annotations

from typing import Any

import pytest

from seqbench.errors import UserError
from seqbench.tasks import make_task

IMPOSSIBLE: list[tuple[str, dict[str, Any], str]] = [
    ("mqar", {"num_pairs": 20}, "cannot hold 20 pairs"),
    ("mqar", {"vocab_size": 10, "num_pairs": 8}, "key tokens"),
    ("mqar", {"alpha": 0.0}, "alpha must be > 0"),
    ("mqar", {"vocab_size": 0}, "positive integer"),
    ("mqar", {"seq_len": True}, "positive integer"),
    ("selective_copy", {"seq_len": 16, "num_tokens": 8}, "cannot hold 8 tokens"),
    ("selective_copy", {"vocab_size": 2}, "vocab_size must be >= 3"),
    ("induction", {"vocab_size": 2}, "vocab_size must be >= 3"),
    ("copy", {"max_len": 40}, "do not fit"),
    ("copy", {"vocab_size": 5}, "vocab_size must be >= 6"),
    ("copy", {"min_len": 12, "max_len": 5}, "min_len <= max_len"),
    ("lookup", {"key_position": "middle"}, "key_position must be one of"),
    ("lookup", {"ngram": 0}, "ngram must be >= 1"),
    ("lookup", {"ngram": 20}, "too many to index"),
    ("lookup", {"seq_len": 8}, "need 4 <= min_len"),
    ("parity", {"score": "first"}, "score must be all or last"),
    ("modular", {"modulus": 7}, "below the modulus 7"),
    ("flipflop", {"seq_len": 63}, "must be even"),
    ("flipflop", {"p_ignore": 1.0}, "p_ignore must be in [0, 1)"),
    ("niah", {"num_keys": 2, "num_queries": 3}, "exceeds num_keys"),
    ("niah", {"seq_len": 10}, "cannot hold the needles"),
    ("niah", {"vocab_size": 12, "key_len": 1, "num_keys": 5}, "distinct keys"),
    ("niah", {"depth": 1.5}, "depth must be in [0, 1]"),
    ("fuzzy_recall", {"vocab_size": 6}, "motifs of 3 and 3"),
    ("fuzzy_recall", {"frac_noise": 0.5}, "needs noise_vocab_size > 0"),
    ("fuzzy_recall", {"seq_len": 10}, "cannot hold a key-value slot"),
    ("noisy_recall", {"seq_len": 127}, "must be even"),
    ("noisy_recall", {"frac_noise": 1.0}, "frac_noise must be in [0, 1)"),
    ("memorization", {"seq_len": 31}, "must be even"),
    ("memorization", {"vocab_size": 2}, "no key tokens"),
    ("listops", {"vocab_size": 10}, "vocab_size must be >= 17"),
    ("listops", {"max_depth": 2, "max_args": 3}, "no expression of 32..127 tokens"),
    ("listops", {"op_prob": 0.0}, "op_prob must be in (0, 1]"),
]


@pytest.mark.parametrize(("name", "knobs", "fragment"), IMPOSSIBLE)
def test_impossible_knobs_fail_in_one_line(name: str, knobs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UserError) as caught:
        make_task(name, **knobs)
    message = str(caught.value)
    assert "\n" not in message and fragment in message, message
    assert message.startswith(name), "the message names the task"


def test_impossible_at_another_length() -> None:
    with pytest.raises(UserError, match="must be even"):
        make_task("flipflop").at_length(101)
    with pytest.raises(UserError, match="cannot hold 4 pairs"):
        make_task("mqar").at_length(12)


def test_unknown_knob_suggests_the_close_one() -> None:
    with pytest.raises(UserError, match=r"no knob 'num_pair'; did you mean 'num_pairs'\?"):
        make_task("mqar", num_pair=3)


def test_unknown_variant_suggests_the_close_one() -> None:
    with pytest.raises(UserError, match="did you mean 'sparse'"):
        make_task("flipflop").variant("spars")


def test_rare_listops_window_fails_in_one_line() -> None:
    """Reachable in principle but (almost) never drawn: a clear error, not an endless loop."""
    with pytest.raises(UserError, match="too rare") as caught:
        make_task("listops", op_prob=0.001)
    assert "\n" not in str(caught.value)
