"""Registries: decorators, lazy entries, dotted paths, entry-point plugins, did-you-mean."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from seqbench import registry as registry_module
from seqbench.architectures.conformance import check_architecture
from seqbench.errors import UserError
from seqbench.registry import Registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "seqbench-plugin-example"


def test_decorator_and_lookup() -> None:
    reg: Registry = Registry("widget")

    @reg.register("alpha", family="x")
    class Alpha:
        pass

    assert reg.get("alpha") is Alpha
    assert reg.meta("alpha") == {"family": "x"}
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("alpha", object())


def test_unknown_name_suggests_close_ones() -> None:
    reg: Registry = Registry("widget")
    reg.add("mamba", 1)
    reg.add("mamba2", 2)
    with pytest.raises(UserError, match=r"did you mean 'mamba'") as info:
        reg.get("mambo")
    assert "\n" not in str(info.value)
    with pytest.raises(UserError, match="known: mamba, mamba2"):
        reg.get("zzz")


def test_lazy_entry_imports_only_on_use() -> None:
    reg: Registry = Registry("widget")
    reg.add_lazy("dumps", "json:dumps")
    assert reg._entries["dumps"].obj is None
    import json

    assert reg.get("dumps") is json.dumps


def test_dotted_path_errors_are_one_line() -> None:
    reg: Registry = Registry("widget")
    with pytest.raises(UserError, match="cannot import module"):
        reg.get("no_such_module_xyz:Thing")
    with pytest.raises(UserError, match="has no attribute"):
        reg.get("json:NoSuchThing")


def test_entry_point_plugin_registers_on_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A package declaring `seqbench.architectures` gets imported when a name is unknown."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    ep = metadata.EntryPoint("example", "seqbench_example_plugin", "seqbench.architectures")

    def fake_entry_points(*, group: str) -> list[metadata.EntryPoint]:
        return [ep] if group == "seqbench.architectures" else []

    monkeypatch.setattr(registry_module.metadata, "entry_points", fake_entry_points)
    from seqbench.architectures import MIXERS, PRESETS

    monkeypatch.setattr(MIXERS, "_plugins_loaded", False)
    monkeypatch.setattr(PRESETS, "_plugins_loaded", False)
    monkeypatch.setattr(MIXERS, "_entries", dict(MIXERS._entries))
    monkeypatch.setattr(PRESETS, "_entries", dict(PRESETS._entries))
    monkeypatch.delitem(sys.modules, "seqbench_example_plugin", raising=False)
    assert "causal_conv" in MIXERS
    assert "conv" in PRESETS.names()
    report = check_architecture("conv")
    assert report.passed, report.format()


def test_example_plugin_passes_gate_by_dotted_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from seqbench.architectures import MIXERS, PRESETS

    # Importing the module registers into the global registries: undo that afterwards.
    monkeypatch.setattr(MIXERS, "_entries", dict(MIXERS._entries))
    monkeypatch.setattr(PRESETS, "_entries", dict(PRESETS._entries))
    monkeypatch.delitem(sys.modules, "seqbench_example_plugin", raising=False)
    report = check_architecture("seqbench_example_plugin:CausalConv")
    assert report.passed, report.format()
    assert report.state_bytes[64] == report.state_bytes[256]
