"""Published findings: verdicts from synthetic records, the registry listing, the report."""

from __future__ import annotations

from typing import Any

import pytest

from seqbench.harness.findings import FINDINGS, judge_findings
from seqbench.harness.findings.base import (
    BUDGET,
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_MEASURED,
    SUPPORTED,
)
from seqbench.harness.records import make_record, spec_hash, write_record
from seqbench.harness.report.data import load
from seqbench.harness.spec import RunSpec
from seqbench.tasks import TASKS


def invoke(args: list[str]):
    from click.testing import CliRunner

    from seqbench.harness.cli import _register_commands, cli

    _register_commands()
    return CliRunner().invoke(cli, args)


def record(arch: str, task: str, acc: float, *, seed: int, seq_len: int = 64,
           rising: bool = False, knobs: dict | None = None, lengths: dict | None = None,
           d_state: int | None = None,
           overrides: dict | None = None) -> dict[str, Any]:  # fmt: skip
    """An ok run whose learning curve plateaus at `acc` (or is still `rising` at the end)."""
    overrides = {**({"mamba.d_state": d_state} if d_state else {}), **(overrides or {})}
    spec = RunSpec(arch=arch, task=task, seq_len=seq_len, d_model=64, n_layers=2, steps=400,
                   batch_size=16, lr=1e-3, seed=seed, knobs=knobs or {"vocab_size": 16},
                   overrides=overrides, eval_lengths=sorted(lengths or {}),
                   device="cpu", dtype="float32").to_dict()  # fmt: skip
    shape = [0.4, 0.55, 0.7, 0.85, 1.0] if rising else [0.6, 0.95, 1.0, 1.0, 1.0]
    curve = [
        {"step": 80 * (i + 1), "tokens": 80 * (i + 1) * 16 * seq_len, "accuracy": acc * f}
        for i, f in enumerate(shape)
    ]
    test = {str(seq_len): {"accuracy": acc, "scored": 2048, "sequences": 256}}
    for length, value in (lengths or {}).items():
        test[str(length)] = (
            {"status": "oom", "reason": "over cap"}
            if value is None
            else {"accuracy": value, "scored": 64, "sequences": 64}
        )
    mixer = {"mamba": {"d_state": d_state or 16}} if arch == "mamba" else {}
    definition = {
        "model": {"layer_pattern": [arch], "mixer_kwargs": mixer},
        "family": None,
        "task": {"name": task, "version": 1, "tags": list(TASKS.get(task).tags)},
    }
    val = {"accuracy": curve[-1]["accuracy"]}
    metrics = {"params_total": 1000, "params_active": 1000, "steps_run": 400,
               "val": val, "val_curve": curve, "test": test}  # fmt: skip
    return make_record(kind="run", run_id=spec_hash("run", spec), spec=spec, status="ok",
                       metrics=metrics, definition=definition, device="cpu")  # fmt: skip


def seeds(arch: str, task: str, acc: float, **kwargs: Any) -> list[dict[str, Any]]:
    noise = (0.0, 0.005, -0.005)
    return [record(arch, task, min(1.0, acc + d), seed=s, **kwargs) for s, d in enumerate(noise)]


def verdicts(tmp_path, records) -> dict[str, Any]:
    for r in records:
        write_record(tmp_path, r)
    data = load(tmp_path)
    return {r.finding.name: r for r in judge_findings(data.best, data.records)}


def selective(mamba: float, lru: float, **kwargs: Any) -> list[dict[str, Any]]:
    out = []
    for length, tokens in ((64, 4), (128, 8)):
        knobs = {"vocab_size": 16, "num_tokens": tokens}
        out += seeds("mamba", "selective_copy", mamba, seq_len=length, knobs=knobs)
        out += seeds("lru", "selective_copy", lru, seq_len=length, knobs=knobs, **kwargs)
    return out


def test_supported_needs_two_settings_and_separated_intervals(tmp_path):
    result = verdicts(tmp_path, selective(0.99, 0.3))["mamba-selective-copy"]
    assert result.verdict == SUPPORTED, result.settings
    assert len(result.settings) == 2 and "mamba 0.99 [" in result.settings[0].observed


def test_one_setting_alone_is_inconclusive(tmp_path):
    records = selective(0.99, 0.3)
    one = [r for r in records if r["spec"]["seq_len"] == 64]
    assert verdicts(tmp_path, one)["mamba-selective-copy"].verdict == INCONCLUSIVE


def test_contradicted_when_the_intervals_exclude_the_gap(tmp_path):
    assert verdicts(tmp_path, selective(0.99, 0.985))["mamba-selective-copy"].verdict == (
        CONTRADICTED
    )


def test_still_improving_runs_give_inconclusive_budget(tmp_path):
    result = verdicts(tmp_path, selective(0.99, 0.3, rising=True))["mamba-selective-copy"]
    assert result.verdict == BUDGET
    assert "400 steps" in result.budget


def test_findings_about_absent_architectures_read_not_measured(tmp_path):
    records = seeds("mamba", "parity", 0.5, knobs={"vocab_size": 2})
    result = verdicts(tmp_path, records)["grazzi-state-tracking"]
    assert result.verdict == NOT_MEASURED
    assert "mamba3" in result.settings[0].observed and "mamba 0.50" in result.settings[0].observed
    # and a finding whose tasks were not run at all
    assert verdicts(tmp_path, records)["moe-memorization"].verdict == NOT_MEASURED


def test_the_negative_eigenvalue_knob_makes_a_configuration_signed(tmp_path):
    """Grazzi et al.'s knob on a mixer counts as a signed transition: a parity setting with only
    that variant and the positive-decay models is judged, not "not measured" (two settings:
    one is never a verdict)."""
    knobs = {"vocab_size": 2}
    neg = {"mamba3.allow_neg_eigval": True, "mamba3.use_rope": False}
    records = []
    for length in (16, 32):
        records += seeds("mamba3", "parity", 1.0, seq_len=length, knobs=knobs, overrides=neg)
        records += seeds("mamba2", "parity", 0.55, seq_len=length, knobs=knobs)
    result = verdicts(tmp_path, records)["grazzi-state-tracking"]
    assert result.verdict == SUPPORTED, result.settings
    assert "allow_neg_eigval" in result.settings[0].observed


def test_induction_reads_long_lengths_and_skips_attention_oom(tmp_path):
    records = []
    for length, vocab in ((32, 16), (64, 32)):
        long = {length * r: 0.99 for r in (4, 64)}
        knobs = {"vocab_size": vocab}
        records += seeds("mamba", "induction", 1.0, seq_len=length, lengths=long, knobs=knobs)
        attn = {length * 4: 0.1, length * 64: None}  # beyond the cap: recorded oom
        records += seeds("mha", "induction", 0.995, seq_len=length, lengths=attn, knobs=knobs)
    result = verdicts(tmp_path, records)["mamba-induction"]
    assert result.verdict == SUPPORTED, result.settings
    assert "oom from" in result.settings[0].observed


def test_state_size_and_registry(tmp_path):
    records = []
    for pairs in (4, 8):
        knobs = {"vocab_size": 64, "num_pairs": pairs}
        records += seeds("mamba", "mqar", 0.3, d_state=4, knobs=knobs)
        records += seeds("mamba", "mqar", 0.8, d_state=64, knobs=knobs)
    assert verdicts(tmp_path, records)["zoology-state-size"].verdict == SUPPORTED
    assert len(FINDINGS) >= 8 and len({f.name for f in FINDINGS}) == len(FINDINGS)


def test_list_findings_and_report_section(tmp_path):
    result = invoke(["list", "findings"])
    assert result.exit_code == 0
    for finding in FINDINGS:
        assert finding.name in result.output and finding.citation in result.output
    for r in selective(0.99, 0.3):
        write_record(tmp_path, r)
    assert invoke(["report", str(tmp_path)]).exit_code == 0
    text = (tmp_path / "report.md").read_text()
    assert text.index("## Summary") < text.index("## Published findings") < text.index("## Setup")
    assert "summary_heatmap.png" in text and "learning_curves.png" in text
    row = next(line for line in text.splitlines() if line.startswith("| mamba-selective-copy ("))
    assert row.rstrip().endswith("| supported | 400 steps × 1024 tokens, 400 steps × 2048 tokens |")


@pytest.mark.parametrize("name", ["paper", "paper-full"])
def test_paper_suites_cover_every_finding(name):
    from seqbench.harness.suites import load_builtin

    specs = load_builtin(name).specs
    tasks = {s.task for s in specs}
    for finding in FINDINGS:
        assert any(t in tasks for t in finding.tasks.names), (finding.name, tasks)
    assert {s.seed for s in specs} >= {0, 1, 2} and len({s.lr for s in specs}) >= 2


def mqar_grid(accuracies: dict[str, tuple[float, float]], vocabs=(16, 32)) -> list[dict]:
    """Runs of each architecture at 4 and 8 pairs (accuracy per pair count), two vocabularies."""
    records = []
    for vocab in vocabs:
        for i, pairs in enumerate((4, 8)):
            knobs = {"vocab_size": vocab, "num_pairs": pairs}
            for arch, accs in accuracies.items():
                records += seeds(arch, "mqar", accs[i], knobs=knobs)
    return records


def test_based_and_delta_rule_orderings(tmp_path):
    grid = {"mha": (1.0, 1.0), "based": (0.97, 0.96), "hyena": (0.5, 0.4),
            "deltanet": (1.0, 0.98), "gla": (0.99, 0.97), "retnet": (0.6, 0.5)}  # fmt: skip
    found = verdicts(tmp_path, mqar_grid(grid))
    assert found["based-recall"].verdict == SUPPORTED, found["based-recall"].settings
    assert found["deltanet-recall"].verdict == SUPPORTED, found["deltanet-recall"].settings
    assert len(found["based-recall"].settings) == 4  # two pair counts x two vocabularies


def test_based_far_above_attention_contradicts(tmp_path):
    grid = {"mha": (0.5, 0.4), "based": (1.0, 1.0), "hyena": (0.3, 0.3)}
    assert verdicts(tmp_path, mqar_grid(grid))["based-recall"].verdict == CONTRADICTED


def test_recall_gap_grows_with_pairs(tmp_path):
    grid = {"mha": (1.0, 1.0), "lru": (0.85, 0.45)}
    result = verdicts(tmp_path / "grows", mqar_grid(grid))["recall-gap-pairs"]
    assert result.verdict == SUPPORTED, result.settings
    assert len(result.settings) == 2  # the pairs are inside one setting per vocabulary
    flat = {"mha": (1.0, 1.0), "lru": (0.6, 0.6)}
    assert verdicts(tmp_path / "flat", mqar_grid(flat))["recall-gap-pairs"].verdict == CONTRADICTED
    # a model whose state holds every pair has no gap to grow: inconclusive, not contradicted
    solved = {"mha": (1.0, 1.0), "deltanet": (1.0, 1.0)}
    result = verdicts(tmp_path / "solved", mqar_grid(solved))["recall-gap-pairs"]
    assert result.verdict == INCONCLUSIVE and "no gap to grow" in result.settings[0].observed


def test_attention_that_did_not_learn_gives_no_contradiction(tmp_path):
    """A setting where mha never learnt MQAR within its budget compares failures: inconclusive,
    not contradicted (the still-improving gate misses a plateau before a phase change)."""
    records = []
    for vocab in (16, 32):
        knobs = {"vocab_size": vocab, "num_pairs": 4}
        records += seeds("mha", "mqar", 0.15, knobs=knobs)
        records += seeds("mamba", "mqar", 0.13, knobs=knobs)
    result = verdicts(tmp_path, records)["zoology-mqar"]
    assert result.verdict == INCONCLUSIVE, result.settings
    assert "did not learn" in result.settings[0].observed


def test_moe_at_the_ceiling_is_inconclusive(tmp_path):
    records = []
    for vocab in (128, 256):
        records += seeds("mha", "memorization", 1.0, knobs={"vocab_size": vocab})
        records += seeds("mha-moe", "memorization", 1.0, knobs={"vocab_size": vocab})
    result = verdicts(tmp_path, records)["moe-memorization"]
    assert result.verdict == INCONCLUSIVE, result.settings
    assert "no room" in result.settings[0].observed


def test_mqar_without_a_pair_count_knob_reads_not_measured(tmp_path):
    """Runs that never set num_pairs (the task default) give the pairs finding one pair count:
    not measured, not a crash."""
    records = seeds("mha", "mqar", 1.0) + seeds("lru", "mqar", 0.3)
    assert verdicts(tmp_path, records)["recall-gap-pairs"].verdict == NOT_MEASURED
