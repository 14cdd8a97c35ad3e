"""The `recall` suite: MQAR across the linear-attention family, attention, Mamba-2 and the LRU."""

from __future__ import annotations

from seqbench.architectures import PRESETS
from seqbench.harness.suites import load_builtin
from seqbench.harness.sweep import plan

REQUIRED = {
    "mha",
    "gla",
    "deltanet",
    "gated_deltanet",
    "retnet",
    "linear_attention",
    "mamba2",
    "lru",
}


def test_recall_suite_compares_the_family_on_mqar_with_seeds_and_lrs() -> None:
    suite = load_builtin("recall")
    assert len(plan(suite.specs)) == len(suite.specs)  # every spec resolves; none duplicated
    archs = {s.arch for s in suite.specs}
    assert archs >= REQUIRED
    # based, hyena and mamba3 belong in it wherever they are registered
    assert {"based", "hyena", "mamba3"} & set(PRESETS.names()) <= archs
    assert {s.task for s in suite.specs} == {"mqar"}
    assert {s.d_model for s in suite.specs} == {64}
    for arch in archs:
        mine = [s for s in suite.specs if s.arch == arch]
        assert len({s.knobs["num_pairs"] for s in mine}) >= 2
        assert len({s.seed for s in mine}) >= 3
        assert len({s.lr for s in mine}) >= 2
