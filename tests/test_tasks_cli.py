"""`seqbench sample` and `seqbench list tasks`, in-process (fast) and once as a real process."""

from __future__ import annotations

import json

import pytest
import torch

from seqbench.harness.cli import main
from seqbench.tasks import TASKS, make_task
from tests.cli_helpers import assert_one_line_error, run_cli


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as caught:
        main(list(args))
    out, err = capsys.readouterr()
    return int(caught.value.code or 0), out, err


def test_sample_json_is_exactly_the_batch(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "sample", "mqar", "--json", "--n", "3", "--num-pairs", "4")
    assert code == 0
    data = json.loads(out)
    assert list(data) == ["inputs", "targets"]
    batch = make_task("mqar", num_pairs=4).sample(3, 0)
    assert torch.equal(torch.tensor(data["inputs"]), batch.inputs)
    assert torch.equal(torch.tensor(data["targets"]), batch.targets)
    assert -100 in data["targets"][0]


def test_sample_knob_spellings_and_seed(capsys: pytest.CaptureFixture[str]) -> None:
    _, dashed, _ = invoke(capsys, "sample", "copy", "--json", "--seq-len", "20", "--seed", "4")
    _, under, _ = invoke(capsys, "sample", "copy", "--json", "--seq_len=20", "--seed=4")
    assert dashed == under and len(json.loads(dashed)["inputs"][0]) == 20
    _, flag, _ = invoke(
        capsys, "sample", "mqar", "--json", "--random-non-queries", "false", "--seq-len", "32"
    )
    assert json.loads(flag)["inputs"][0][-1] == 0, "filler is 0 without random_non_queries"


def test_sample_human_output_marks_scored_positions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "sample", "flipflop", "--n", "1", "--seq-len", "16")
    assert code == 0
    assert "flip-flop" in out and "seq_len=16" in out and "special tokens: w (2)" in out
    batch = make_task("flipflop", seq_len=16).sample(1, 0)
    ins = [line for line in out.splitlines() if " in " in line]
    outs = [line for line in out.splitlines() if " out " in line]
    shown = " ".join(line.split(" out ", 1)[1] for line in outs).split()
    assert len(shown) == 16 and len(ins) == len(outs)
    for token, target in zip(shown, batch.targets[0].tolist(), strict=True):
        assert token == ("-" if target == -100 else str(target))
    assert f"{batch.scored.sum().item()} of 16 positions scored" in out


def test_sample_variant_and_explicit_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = invoke(capsys, "sample", "niah", "--variant", "multikey", "--num-keys", "3")
    assert "num_keys=3" in out and "num_values=1" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("sample", "mqar", "--num-pair", "3"), "did you mean '--num-pairs'?"),
        (("sample", "mqar", "--num-pairs", "20"), "cannot hold 20 pairs"),
        (("sample", "mqar", "--alpha", "high"), "--alpha expects a number"),
        (("sample", "mqar", "--num-pairs"), "--num-pairs needs a value"),
        (("sample", "mqar", "8"), "unexpected argument '8'"),
        (("sample", "mqr"), "did you mean 'mqar'?"),
        (("sample", "niah", "--variant", "multi"), "did you mean 'multikey'"),
    ],
)
def test_sample_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragment: str
) -> None:
    code, out, err = invoke(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and fragment in err, err


def test_list_tasks_names_descriptions_and_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "list", "tasks", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and set(rows) == set(TASKS.names())
    assert rows["mqar"]["knobs"]["num_pairs"] == 4 and rows["mqar"]["description"]
    assert rows["flipflop"]["variants"]["sparse"] == {"p_ignore": 0.98}
    _, text, _ = invoke(capsys, "list", "tasks")
    for name in TASKS.names():
        assert f"\n{name}  " in f"\n{text}"
    assert "--num-pairs 4" in text and "variant dense: --p-ignore 0.1" in text


def test_as_a_process_unknown_knob_is_one_line_exit_2() -> None:
    result = run_cli("sample", "selective_copy", "--num-token", "3")
    assert_one_line_error(result, "did you mean '--num-tokens'?")
