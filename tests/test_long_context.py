"""Long test lengths: the KV-cache cap records `oom` per length and the rest go on."""

from __future__ import annotations

import pytest
import torch

from seqbench.architectures import LanguageModel
from seqbench.harness import runner
from seqbench.harness.prepare import prepare
from seqbench.harness.spec import RunSpec


def prepared_model(arch: str):
    spec = RunSpec(arch=arch, task="induction", seq_len=16, eval_lengths=[32, 64], d_model=16,
                   n_layers=1, batch_size=4, test_examples=8, long_test_examples=2,
                   attention_eval_cap=32, device="cpu", knobs={"vocab_size": 8})  # fmt: skip
    prepared = prepare(spec)
    torch.manual_seed(0)
    return prepared, LanguageModel(prepared.config)


@pytest.mark.parametrize(("arch", "grows"), [("mha", True), ("mamba", False), ("lru", False)])
def test_growing_state_is_detected_and_capped(arch, grows):
    prepared, model = prepared_model(arch)
    assert runner.state_grows(model, "cpu") is grows
    scores, _ = runner.test_all_lengths(model, prepared)
    assert scores["16"]["accuracy"] is not None and scores["16"]["sequences"] == 8
    assert scores["32"]["accuracy"] is not None and scores["32"]["sequences"] == 2
    if grows:
        assert scores["64"]["status"] == "oom" and "attention_eval_cap=32" in scores["64"]["reason"]
    else:
        assert scores["64"]["accuracy"] is not None
