"""Training-step and decode measurements on tiny models, in process."""

from __future__ import annotations

import pytest

from seqbench.harness.profile.decode import DECODE_WARMUP_STEPS, measure_decode
from seqbench.harness.profile.points import PointOptions, make_spec, series_key, x_value
from seqbench.harness.profile.timing import repeats_within
from seqbench.harness.profile.train_step import measure_train

TINY = {"d_model": 32, "n_layers": 2}


def test_training_point_reports_every_named_method_and_consistent_rates() -> None:
    spec = make_spec("train", "mha", TINY, 64, PointOptions(batch=2, repeats=2))
    m = measure_train(spec)
    assert m["repeats_done"] == 2 and len(m["step_s_repeats"]) == 2
    assert len(m["step_cpu_s_repeats"]) == 2 and m["step_cpu_s"] > 0  # CPU time on CPU
    assert m["tokens_per_step"] == 128
    assert m["tokens_per_s"] == pytest.approx(128 / m["step_s"])
    memory = m["memory_bytes"]
    assert memory["saved_activations"] > 0
    assert memory["cpu_rss_delta"] is not None  # measured on CPU
    assert memory["cuda_peak_allocated"] is None  # only on a GPU
    assert m["flops_per_token"] == pytest.approx(m["flops_per_step"] / 128)
    assert m["flops_per_step"] > 2 * m["flops_forward"]  # backward costs about twice forward


def test_a_tight_budget_still_times_one_repeat() -> None:
    assert repeats_within(10.0, 1.0, 3) == 3
    assert repeats_within(2.5, 1.0, 3) == 2
    assert repeats_within(0.1, 1.0, 3) == 1
    assert repeats_within(None, 1.0, 3) == 3


@pytest.mark.parametrize(("arch", "kv_heads"), [("mha", 8), ("gqa", 2), ("mqa", 1)])
def test_decode_state_is_the_kv_cache_and_shrinks_with_kv_heads(arch: str, kv_heads: int) -> None:
    context, d, layers = 48, TINY["d_model"], TINY["n_layers"]
    spec = make_spec("decode", arch, TINY, context, PointOptions(decode_steps=3))
    m = measure_decode(spec)
    per_token = 2 * d * kv_heads // 8 * 4 * layers  # keys and values, float32, every layer
    assert m["state_bytes"] == context * per_token
    assert m["state_bytes_after_decode"] == (context + 3 + DECODE_WARMUP_STEPS) * per_token
    assert len(m["decode_s_repeats"]) == 3
    assert m["prefill_s"] > 0 and m["decode_s_per_token"] > 0


def test_series_group_points_that_differ_only_in_the_swept_variable() -> None:
    opts = PointOptions()
    a = make_spec("train", "mha-moe", {**TINY, "ffn.n_experts": 4}, 64, opts)
    b = make_spec("train", "mha-moe", {**TINY, "ffn.n_experts": 4}, 128, opts)
    c = make_spec("train", "mha-moe", {**TINY, "ffn.n_experts": 8}, 64, opts)
    assert series_key(a) == series_key(b) != series_key(c)
    assert series_key(a, "ffn.n_experts") == series_key(c, "ffn.n_experts")
    assert x_value(c, "ffn.n_experts") == 8 and x_value(b, "seq_len") == 128
