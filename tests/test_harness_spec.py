"""RunSpec parsing, resolution (`prepare`), the no-decay rule and the lr schedule."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqbench.architectures import LanguageModel, build_config
from seqbench.errors import UserError
from seqbench.harness.prepare import prepare
from seqbench.harness.spec import RunSpec
from seqbench.harness.train import lr_factor, no_decay, param_groups
from tests.harness_support import ECHO, FIRST


def spec(**fields) -> RunSpec:
    return RunSpec.from_dict({"arch": "mha", "task": ECHO, "device": "cpu", **fields})


def test_unknown_field_is_an_error_with_a_hint() -> None:
    with pytest.raises(UserError, match=r"unknown field 'sed'; did you mean 'seed'"):
        spec(sed=1)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"steps": "10"}, "steps must be an integer"),
        ({"steps": True}, "steps must be an integer"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"eval_lengths": [8, "16"]}, "eval_lengths must be a list of integers"),
        ({"knobs": [1, 2]}, "knobs must be a table"),
        ({"seq_len": -4}, r"seq_len must be an integer in 1\.\.1048576, got -4"),
        ({"seq_len": 2**40}, r"seq_len must be an integer in 1\.\.1048576"),
        ({"d_model": 0}, r"d_model must be an integer in 1\.\.65536, got 0"),
        ({"lr": 0}, "lr must be a number in 0 < x <= 10, got 0"),
        ({"lr": float("nan")}, "lr must be a number in 0 < x <= 10, got nan"),
        ({"seed": 2**64}, r"seed must be an integer in 0\.\.4294967295"),
        ({"beta2": 1.0}, "beta2 must be a number in 0 <= x < 1, got 1.0"),
        ({"knobs": {"alpha": float("inf")}}, "knob.alpha: inf is not a finite number"),
        ({"overrides": {"x": [1, float("nan")]}}, "override.x: nan is not a finite number"),
        ({"warmup": 500, "steps": 100}, "warmup must be in 0..steps=100"),
        ({"schedule": "cosin"}, "did you mean 'cosine'"),
        ({"knobs": {"seq_len": 8}}, "give the training length as seq_len"),
        ({"d_model": 16, "overrides": {"d_model": 8}}, "d_model is 16 but overrides set it to 8"),
    ],
)
def test_bad_values_fail_in_one_line(fields: dict, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment) as info:
        spec(**fields)
    assert "\n" not in str(info.value)


def test_missing_required_field() -> None:
    with pytest.raises(UserError, match="missing required field 'task'"):
        RunSpec.from_dict({"arch": "mha"})


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"d_model": 36}, "n_heads=8 does not divide d_model=36"),
        ({"overrides": {"attention.n_kv_heads": 3}}, "n_kv_heads=3 does not divide n_heads=8"),
        ({"arch": "mhaa"}, "did you mean 'mha'"),
        ({"task": "tests.harness_support:NoSuchTask"}, "has no attribute 'NoSuchTask'"),
        ({"knobs": {"evry": 2}}, "no knob 'evry'; did you mean 'every'"),
        ({"knobs": {"every": 9}}, "every must be in 1..seq_len=8"),
        (
            {"seq_len": 8, "knobs": {"every": 6}, "eval_lengths": [4]},
            "every must be in 1..seq_len=4",
        ),
        ({"overrides": {"atention.n_heads": 4}}, "not in layer_pattern"),
        ({"overrides": {"ffn.n_experts": 4}}, "no hyper-parameter 'n_experts'"),
    ],
)
def test_invalid_specs_fail_before_any_work(fields: dict, fragment: str) -> None:
    base = {"seq_len": 8, "d_model": 32, **fields}
    with pytest.raises(UserError, match=fragment) as info:
        prepare(spec(**base))
    assert "\n" not in str(info.value)


def test_prepare_resolves_defaults_and_is_idempotent() -> None:
    prepared = prepare(spec(seq_len=8, eval_lengths=[16, 8, 16]))
    resolved = prepared.spec
    assert resolved.device == "cpu" and resolved.dtype == "float32"
    assert resolved.d_model == build_config("mha", vocab_size=8).d_model
    assert resolved.n_layers == build_config("mha", vocab_size=8).n_layers
    assert resolved.knobs == {"vocab_size": 8, "every": 1}
    assert resolved.eval_lengths == [16]  # training length dropped, duplicates removed
    again = prepare(RunSpec.from_dict(resolved.to_dict()))
    assert again.run_id == prepared.run_id


def test_sizes_given_as_overrides_land_in_their_fields() -> None:
    as_override = prepare(spec(seq_len=8, overrides={"n_layers": 3, "d_model": 32}))
    as_field = prepare(spec(seq_len=8, n_layers=3, d_model=32))
    assert as_override.spec.overrides == {} and as_override.spec.n_layers == 3
    assert as_override.run_id == as_field.run_id
    assert as_override.config.d_model == 32


def test_run_id_is_stable_and_sensitive() -> None:
    a = prepare(spec(seq_len=8, lr=1e-3)).run_id
    assert a == prepare(spec(seq_len=8, lr=0.001)).run_id
    assert a == prepare(spec(seq_len=8, knobs={"every": 1})).run_id  # default made explicit
    assert a != prepare(spec(seq_len=8, lr=2e-3)).run_id
    assert a != prepare(spec(seq_len=8, seed=1)).run_id
    assert len(a) == 16 and all(c in "0123456789abcdef" for c in a)


def test_mixer_class_as_architecture_builds_a_single_mixer_model() -> None:
    prepared = prepare(spec(arch="tests.bad_mixers:_LinearMixer", task=FIRST, d_model=16))
    assert prepared.config.layer_pattern == ("tests.bad_mixers:_LinearMixer",)
    assert prepared.gate_targets == ["tests.bad_mixers:_LinearMixer"]
    assert prepare(spec()).gate_targets == []  # in-tree presets are covered by tests


def test_no_weight_decay_rule() -> None:
    config = build_config("mha-moe", vocab_size=16, overrides={"d_model": 32})
    model = LanguageModel(config)
    decay, keep = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    kept = {names[id(p)] for p in keep["params"]}
    decayed = {names[id(p)] for p in decay["params"]}
    assert keep["weight_decay"] == 0.0 and decay["weight_decay"] == 0.1
    assert all(("norm" in n) for n in kept), kept  # norms are the only 1-D params of mha-moe
    assert "embedding.weight" in decayed and "head.weight" in decayed
    assert len(kept) + len(decayed) == len(list(model.parameters()))
    marked = torch.nn.Parameter(torch.zeros(4, 4))
    assert not no_decay(marked)
    marked._no_weight_decay = True
    assert no_decay(marked)


def test_ssm_and_lru_dynamics_are_marked_no_decay_where_created() -> None:
    """The mixers mark their dynamics themselves; the training loop holds no list of names."""
    expected = {
        "mamba": {"A_log", "D", "dt_proj.bias"},
        "mamba2": {"A_log", "D", "dt_bias"},
        "lru": {"nu_log", "theta_log", "gamma_log", "D"},
    }
    for arch, leaves in expected.items():
        model = LanguageModel(build_config(arch, vocab_size=16, overrides={"d_model": 64}))
        marked = {
            name.split(".mixer.", 1)[1]
            for name, p in model.named_parameters()
            if getattr(p, "_no_weight_decay", False)
        }
        assert marked == leaves, (arch, marked)
        _, keep = param_groups(model, 0.1)
        kept = {id(p) for p in keep["params"]}
        a_log = [p for n, p in model.named_parameters() if n.endswith("A_log")]
        assert all(id(p) in kept for p in a_log)  # 2-D for mamba: kept by its mark alone


def test_lr_schedule_warmup_then_cosine_to_zero() -> None:
    s = spec(steps=110, warmup=10)
    factors = [lr_factor(i, s) for i in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.5)
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert lr_factor(110, s) == pytest.approx(0.0)
    constant = spec(steps=110, warmup=10, schedule="constant")
    assert lr_factor(100, constant) == 1.0
    linear = spec(steps=110, warmup=10, schedule="linear")
    assert lr_factor(60, linear) == pytest.approx(0.5)
