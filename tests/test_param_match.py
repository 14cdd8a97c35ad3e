"""Presets hold mha's parameter budget at every width a suite uses, not only at d_model 128."""

from __future__ import annotations

import pytest

from seqbench.architectures import PRESETS, build_config
from seqbench.architectures.param_match import active_parameters

TOLERANCE = 0.05
# presets deliberately off mha's budget: fewer kv-heads (their point), more experts (total)
UNMATCHED = {"gqa", "mqa"}


def matched_names() -> list[str]:
    return sorted(n for n in PRESETS.names() if n not in UNMATCHED and n != "mha")


@pytest.mark.parametrize("d_model", [64, 128, 256])
@pytest.mark.parametrize("name", matched_names())
def test_every_preset_is_within_five_percent_of_mha(name: str, d_model: int) -> None:
    preset = PRESETS.get(name)
    layers = preset.config.n_layers
    mha = active_parameters(build_config("mha", vocab_size=64, overrides={"d_model": d_model}))
    config = build_config(name, vocab_size=64, overrides={"d_model": d_model})
    mha_layers = build_config("mha", vocab_size=64).n_layers
    assert config.n_layers == layers and mha_layers == 2
    ratio = active_parameters(config) / mha
    assert abs(ratio - 1) <= TOLERANCE, f"{name} at d_model {d_model}: {ratio:.3f} of mha"


def test_a_knob_the_user_sets_is_not_solved() -> None:
    config = build_config("mamba", vocab_size=64, overrides={"mamba.expand": 2})
    assert config.mixer_kwargs["mamba"]["expand"] == 2


def test_the_solved_knob_follows_the_width() -> None:
    at = {d: build_config("lru", vocab_size=64, overrides={"d_model": d}) for d in (64, 128)}
    assert at[64].mixer_kwargs["lru"]["d_state"] < at[128].mixer_kwargs["lru"]["d_state"]


def test_the_leaderboard_flags_rows_off_the_budget() -> None:
    import pandas as pd

    from seqbench.harness.report.leaderboard import budget_flag, reference_budget

    best = pd.DataFrame(
        [
            {"arch": "mha", "d_model": 64, "n_layers": 2, "params_active": 100_000},
            {"arch": "lru", "d_model": 64, "n_layers": 2, "params_active": 133_000},
            {"arch": "mamba", "d_model": 64, "n_layers": 2, "params_active": 104_000},
            {"arch": "lru", "d_model": 32, "n_layers": 2, "params_active": 50_000},
        ]
    )
    budget = reference_budget(best)
    flags = [budget_flag(best.iloc[[i]], budget) for i in range(len(best))]
    assert flags == ["", " ⚠ +33% vs mha", "", ""]  # no mha at width 32: nothing to compare
