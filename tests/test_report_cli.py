"""`seqbench report` and `seqbench compare` from the command line: output, flags, errors."""

from __future__ import annotations

import json

import pytest

from seqbench.harness.cli import main
from seqbench.harness.report.compare import compare
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.report_fixtures import fit_record, profile_record, run_record, write_runs


def invoke(capsys, *args: str):
    """`seqbench ARGS` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def folder_with(tmp_path, name, records):
    return write_runs(tmp_path / name, records)


def grid(arch_accuracy: dict[str, tuple[float, ...]], device: str = "cpu"):
    records = []
    for arch, accuracies in arch_accuracy.items():
        for seed, accuracy in enumerate(accuracies):
            record = run_record(arch, "mqar", seed=seed, accuracy=accuracy)
            record["spec"]["device"] = device
            records.append(record)
    return records


def test_report_errors_are_one_line_exit_2(tmp_path, capsys):
    assert_one_line_error(run_cli("report", str(tmp_path / "missing")), "no such folder")
    broken = tmp_path / "broken"
    (broken / "runs").mkdir(parents=True)
    (broken / "runs" / "half.json").write_text('{"schema_version": 1, "kind": "run", "ru')
    (broken / "runs" / ".x.json.tmp").write_text("{}")
    code, out, err = invoke(capsys, "report", str(broken))
    assert (code, out) == (2, "")
    assert err == (
        f"error: {broken}: no valid records in {broken / 'runs'}: skipped half.json (not JSON: "
        "Unterminated string starting at: line 1 column 38 (char 37))\n"
    )
    (broken / "runs" / "half.json").unlink()
    code, out, err = invoke(capsys, "report", str(broken))
    assert (code, out) == (2, "")
    assert err == (
        f"error: {broken}: no records in {broken / 'runs'} "
        "(write some with `seqbench run` or `seqbench profile`)\n"
    )


def test_report_command_writes_everything(tmp_path, capsys):
    folder = folder_with(tmp_path, "a", grid({"mha": (0.9, 0.92), "lru": (0.3, 0.31)}))
    (folder / "runs" / "corrupt.json").write_text("not json")  # skipped, never read as a result
    code, out, err = invoke(capsys, "report", str(folder))
    assert code == 0, err
    corrupt = folder / "runs" / "corrupt.json"
    assert (
        err == f"warning: skipped {corrupt}: not JSON: Expecting value: line 1 column 1 (char 0)\n"
    )
    assert f"report:  {folder / 'report.md'}" in out
    drawn = len(list((folder / "figures").glob("*.png")))
    assert f"figures: {drawn}" in out and drawn >= 1  # the summary heat map at least
    assert (folder / "report.html").is_file() and (folder / "runs.csv").is_file()
    assert not (folder / "profile.csv").exists()


def test_compare_flags_deltas_beyond_the_seed_spread(tmp_path, capsys):
    a = folder_with(tmp_path, "a", grid({"mha": (0.90, 0.92), "lru": (0.30, 0.31)}))
    b = folder_with(
        tmp_path, "b", grid({"mha": (0.905, 0.915), "lru": (0.50, 0.52), "gqa": (0.9,)})
    )
    result = compare(a, b)
    by = {(d.what.split(" on ")[0], d.metric): d for d in result.deltas}
    lru, mha = by[("lru", "test_accuracy")], by[("mha", "test_accuracy")]
    assert lru.flagged and lru.delta == pytest.approx(0.205) and lru.spread == pytest.approx(0.02)
    assert not mha.flagged and mha.delta == pytest.approx(0.0) and (mha.n_a, mha.n_b) == (2, 2)
    assert result.matched == 2 and result.only_b == ["gqa on mqar, L=64, d=64, lr=0.003"]
    assert result.deltas[0].flagged  # flagged rows come first

    code, out, _ = invoke(capsys, "compare", str(a), str(b), "--flagged")
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith(("mha", "lru"))]
    assert lines and all(line.startswith("lru") and line.rstrip().endswith("!") for line in lines)
    assert "only in B (1):" in out and "gqa on mqar" in out

    code, out, _ = invoke(capsys, "compare", str(a), str(b), "--json", "--all-metrics")
    data = json.loads(out)
    assert data["matched"] == 2 and {"test_loss", "params_total"} <= {
        d["metric"] for d in data["deltas"]
    }


def test_compare_matches_across_devices_only_when_asked(tmp_path, capsys):
    a = folder_with(tmp_path, "a", grid({"mha": (0.9, 0.92)}))
    b = folder_with(tmp_path, "b", grid({"mha": (0.9, 0.92)}, device="cuda"))
    assert compare(a, b).matched == 0
    assert compare(a, b, ignore=["device"]).matched == 1
    code, out, _ = invoke(capsys, "compare", str(a), str(b), "--ignore", "device")
    assert code == 0 and "1 configurations matched; 0 deltas larger" in out


def test_compare_profile_points_flags_any_change_in_exact_metrics(tmp_path):
    a = folder_with(tmp_path, "a", [profile_record("decode", "mha", 1024), fit_record()])
    changed = profile_record("decode", "mha", 1024)
    changed["metrics"]["state_bytes"] += 8
    changed["metrics"]["prefill_s"] *= 1.5
    b = folder_with(tmp_path, "b", [changed, fit_record()])
    result = compare(a, b)
    assert result.matched == 1  # the derived fit records are not compared
    deltas = {d.metric: d for d in result.deltas}
    assert deltas["state_bytes"].flagged and deltas["state_bytes"].spread == 0.0
    assert not deltas["prefill_s"].flagged and deltas["prefill_s"].spread is None


def test_compare_errors(tmp_path, capsys):
    a = folder_with(tmp_path, "a", grid({"mha": (0.9,)}))
    code, _, err = invoke(capsys, "compare", str(a), str(tmp_path / "nope"))
    assert code == 2 and err.strip().count("\n") == 0 and "no such folder" in err
    code, _, err = invoke(capsys, "compare", str(a))
    assert code == 2 and err.startswith("error: Missing argument")


def test_points_skipped_for_their_budget_are_no_failures_in_the_report(tmp_path, capsys):
    reason = "predicted over the per-point time budget of 120 s: …; not run"
    records = [
        run_record("mha", "mqar", seed=0, accuracy=0.9),
        profile_record("counted", "mamba", 65536),
        profile_record("counted", "mamba", 262144, status="skipped", reason=reason, metrics={}),
    ]
    folder = folder_with(tmp_path, "skipped", records)
    code, _, _ = invoke(capsys, "report", str(folder))
    assert code == 0
    failures = (folder / "report.md").read_text().split("## Failures")[1]
    assert "No record of 3 failed." in failures
    assert "1 profile points were skipped, not run" in failures and reason in failures
