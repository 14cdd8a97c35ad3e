"""The conformance gate over every registered sequence mixer, channel mixer and preset.

Each (mixer, check) pair is its own test, so a failure names both. The second half proves the
gate bites: deliberately broken mixers are refused, each for its own reason.
"""

from __future__ import annotations

from functools import cache

import pytest

from seqbench.architectures import CHANNEL_MIXERS, MIXERS, PRESETS
from seqbench.architectures.conformance import (
    ConformanceReport,
    check_architecture,
    check_registered_channel_mixer,
    check_registered_mixer,
)

SEQUENCE_CHECKS = (
    "contract",
    "output shape",
    "input not mutated",
    "causality",
    "step equals forward",
    "gradients reach every parameter",
    "deterministic under a seed",
    "decode state measurable",
)
CHANNEL_CHECKS = (
    "contract",
    "output shape",
    "input not mutated",
    "causality",
    "per-token (step equals forward)",
    "gradients reach every parameter",
    "deterministic under a seed",
)


@cache
def report_for(kind: str, name: str) -> ConformanceReport:
    checks = {
        "mixer": check_registered_mixer,
        "channel": check_registered_channel_mixer,
        "preset": check_architecture,
    }
    return checks[kind](name)


def _verdict(report: ConformanceReport, check: str) -> None:
    found = [c for c in report.checks if c.name == check]
    assert found, f"check {check!r} did not run; ran: {[c.name for c in report.checks]}"
    assert found[0].passed, f"{report.name}: {check}: {found[0].detail}"


@pytest.mark.parametrize("check", SEQUENCE_CHECKS)
@pytest.mark.parametrize("name", MIXERS.names())
def test_sequence_mixer(name: str, check: str) -> None:
    _verdict(report_for("mixer", name), check)


@pytest.mark.parametrize("check", CHANNEL_CHECKS)
@pytest.mark.parametrize("name", CHANNEL_MIXERS.names())
def test_channel_mixer(name: str, check: str) -> None:
    _verdict(report_for("channel", name), check)


@pytest.mark.parametrize("name", PRESETS.names())
def test_preset_passes_whole_gate(name: str) -> None:
    report = report_for("preset", name)
    assert report.passed, report.format()
    assert any(c.name == "model: decode equals forward" for c in report.checks)
    assert report.state_bytes[64] > 0 and report.state_bytes[256] > 0


@pytest.mark.parametrize(
    ("cls", "failing_check", "reason"),
    [
        ("PeekingMixer", "causality", "changed"),
        ("WrongShapeMixer", "output shape", "output shape"),
        ("MutatingMixer", "input not mutated", "modified its input"),
        ("DeadParameterMixer", "gradients reach every parameter", "unused"),
        ("ForgetfulStepMixer", "step equals forward", "step - forward"),
    ],
)
def test_gate_refuses_broken_mixer(cls: str, failing_check: str, reason: str) -> None:
    report = check_architecture(f"tests.bad_mixers:{cls}")
    assert not report.passed
    failed = {c.name: c.detail for c in report.failures()}
    assert failing_check in failed, report.format()
    assert reason in failed[failing_check]


def test_gate_accepts_a_correct_plugin_with_state() -> None:
    report = check_architecture("tests.bad_mixers:GoodShiftMixer")
    assert report.passed, report.format()
    # Fixed-size state: same bytes after 64 and 256 tokens.
    assert report.state_bytes[64] == report.state_bytes[256] > 0
