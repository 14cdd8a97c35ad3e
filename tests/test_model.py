"""The shared model and presets: overrides, validation, scored-position head, decoding."""

from __future__ import annotations

import pytest
import torch

from seqbench.architectures import PRESETS, LanguageModel, ModelConfig, build_config, state_bytes
from seqbench.errors import UserError

SHIFT = "tests.bad_mixers:GoodShiftMixer"


def test_overrides_reach_mixers_and_ffn() -> None:
    config = build_config(
        "mha",
        vocab_size=50,
        overrides={
            "d_model": 64,
            "n_layers": 3,
            "attention.n_kv_heads": 2,
            "ffn": "moe",
            "ffn.n_experts": 4,
        },
    )
    model = LanguageModel(config)
    assert len(model.blocks) == 3
    assert model.blocks[0].mixer.n_kv_heads == 2
    assert model.blocks[0].ffn.n_experts == 4
    assert model.head.out_features == 50


def test_preset_defaults_are_not_mutated_by_overrides() -> None:
    build_config("gqa", vocab_size=10, overrides={"attention.n_kv_heads": 4})
    assert PRESETS.get("gqa").config.mixer_kwargs["attention"]["n_kv_heads"] == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"d_modle": 64}, "did you mean 'd_model'"),
        ({"attention.n_kv_head": 2}, "did you mean 'n_kv_heads'"),
        ({"d_model": -4}, "d_model must be a positive integer"),
        ({"ffn.n_experts": 4}, "channel mixer 'swiglu' has no hyper-parameter 'n_experts'"),
        ({"mamba.d_state": 4}, "not in layer_pattern"),
        ({"ffn": "nope"}, "unknown channel mixer 'nope'"),
    ],
)
def test_bad_overrides_fail_in_one_line(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        build_config("mha", vocab_size=10, overrides=overrides)
    assert "\n" not in str(info.value)


def test_layer_pattern_repeats_for_hybrids() -> None:
    config = ModelConfig(
        vocab_size=10,
        d_model=32,
        n_layers=5,
        layer_pattern=(SHIFT, SHIFT, "attention"),
        mixer_kwargs={"attention": {"n_heads": 4}},
    )
    names = [b.mixer_name for b in LanguageModel(config).blocks]
    assert names == [SHIFT, SHIFT, "attention", SHIFT, SHIFT]


def test_layer_pattern_override_from_text() -> None:
    config = build_config("mha", vocab_size=10, overrides={"layer_pattern": "attention, attention"})
    assert config.layer_pattern == ("attention", "attention")


def test_head_only_at_scored_positions() -> None:
    torch.manual_seed(0)
    model = LanguageModel(build_config("mqa", vocab_size=20, overrides={"d_model": 32}))
    tokens = torch.randint(0, 20, (2, 9))
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0, 3], mask[1, 8] = True, True
    full = model(tokens)  # (B, L, V)
    picked = model(tokens, positions=mask)  # (2, V)
    torch.testing.assert_close(picked, full[mask])


def test_tied_embeddings_share_the_matrix() -> None:
    model = LanguageModel(build_config("mha", vocab_size=30, overrides={"tie_embeddings": True}))
    assert model.head.weight is model.embedding.weight
    untied = LanguageModel(build_config("mha", vocab_size=30))
    assert model.parameter_counts()["total"] == untied.parameter_counts()["total"] - 30 * 128


def test_moe_preset_counts_active_parameters() -> None:
    model = LanguageModel(build_config("mha-moe", vocab_size=64))
    counts = model.parameter_counts()
    moe = model.blocks[0].ffn
    inactive_per_layer = (moe.n_experts - moe.top_k) * (moe.w_in[0].numel() + moe.w_out[0].numel())
    assert counts["total"] - counts["active"] == 2 * inactive_per_layer
    tokens = torch.randint(0, 64, (2, 16))
    model(tokens)
    assert model.aux_loss().item() > 0
    stats = model.aux_stats()
    assert set(stats) == {"layer0", "layer1"}
    assert sum(stats["layer0"]["load"]) == pytest.approx(1.0)


def test_model_prefill_then_step_matches_forward() -> None:
    torch.manual_seed(0)
    model = LanguageModel(build_config("gqa", vocab_size=16, overrides={"d_model": 32})).eval()
    tokens = torch.randint(0, 16, (2, 12))
    with torch.no_grad():
        logits = model(tokens)
        prompt_logits, state = model.prefill(tokens[:, :7])
        torch.testing.assert_close(prompt_logits, logits[:, :7], atol=1e-5, rtol=1e-4)
        for t in range(7, 12):
            step_logits, state = model.step(tokens[:, t], state)
            torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-4)


def test_kv_state_ratio_mha_gqa_mqa_is_8_2_1() -> None:
    sizes = {}
    for name in ("mha", "gqa", "mqa"):
        model = LanguageModel(build_config(name, vocab_size=16))
        with torch.no_grad():
            _, state = model.prefill(torch.zeros(1, 64, dtype=torch.long))
        sizes[name] = state_bytes(state)
    assert sizes["mha"] == 4 * sizes["gqa"] == 8 * sizes["mqa"]
