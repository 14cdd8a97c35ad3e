"""Records have a declared schema: validated on write and on read, strict JSON with a
documented form for NaN and infinity, skipped files reported one line each, and no crafted
record can make `report` or `compare` raise (hypothesis mutations of every record kind)."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqbench.harness.cli import main
from seqbench.harness.profile.fits import fit_records
from seqbench.harness.records import (
    check_record,
    make_record,
    read_record,
    record_path,
    scan_records,
    write_record,
)
from seqbench.harness.report.data import SKIPPED_SHOWN, skipped_lines
from seqbench.harness.schema import validate
from tests.report_fixtures import profile_record, run_record


def fit_record() -> dict[str, Any]:
    points = [profile_record("train", "mha", length) for length in (64, 128, 256)]
    spec, metrics = fit_records(points, [])[0]
    from seqbench.harness.profile.fits import fit_id

    return make_record(kind="profile", run_id=fit_id(spec), spec=spec, status="ok", metrics=metrics)


BASES = {
    "run": run_record("mha", "mqar", eval_lengths=(128,)),
    "point": profile_record("decode", "mha", 256),
    "fit": fit_record(),
}


def strict_loads(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"bare {name}")

    return json.loads(text, parse_constant=refuse)


# -- writing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BASES))
def test_every_kind_round_trips_through_its_schema(tmp_path: Path, kind: str) -> None:
    record = BASES[kind]
    validate(record)
    path = write_record(tmp_path, record)
    assert read_record(path) == json.loads(json.dumps(record))


def test_nan_and_infinity_are_written_as_strict_json_and_read_back(tmp_path: Path) -> None:
    record = copy.deepcopy(BASES["run"])
    record["status"], record["reason"] = "diverged", "non-finite loss (nan) at step 12"
    record["metrics"]["train_loss"] = math.nan
    record["metrics"]["val"] = {"accuracy": 0.1, "exact_match": 0.0, "loss": math.inf}
    record["timings"]["tokens_per_s"] = -math.inf
    path = write_record(tmp_path, record)
    text = path.read_text()
    data = strict_loads(text)  # any strict parser reads it
    assert data["metrics"]["train_loss"] == "NaN" and data["timings"]["tokens_per_s"] == "-Infinity"
    back = read_record(path)
    assert back is not None and math.isnan(back["metrics"]["train_loss"])
    assert back["metrics"]["val"]["loss"] == math.inf
    assert back["timings"]["tokens_per_s"] == -math.inf


def test_a_record_breaking_its_schema_is_written_as_a_failure_saying_why(tmp_path: Path) -> None:
    record = copy.deepcopy(BASES["run"])
    record["metrics"]["kernel_paths"] = {"layer0": 3}  # a plugin reporting a wrong type
    path = write_record(tmp_path, record)
    back = read_record(path)
    assert back is not None and back["status"] == "failed" and back["metrics"] == {}
    assert back["reason"] == (
        "the run's record broke the record schema: metrics.kernel_paths.layer0: "
        "Input should be a valid string"
    )
    record["spec"]["seq_len"] = 0  # a broken spec is a bug in the writer: it raises
    with pytest.raises(ValueError, match=r"spec.seq_len: must be in 1..1048576"):
        write_record(tmp_path, record)


# -- reading -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "banana"}, "unknown kind 'banana' (known: run, profile)"),
        ({"schema_version": 99}, "unknown schema_version 99 (this seqbench reads 1)"),
        (
            {"spec": "mha on mqar"},
            "spec: Input should be a valid dictionary or instance of RunSpecModel",
        ),
        (
            {"status": "great"},
            "status: Input should be 'ok', 'failed', 'oom', 'diverged' or 'skipped'",
        ),
    ],
)
def test_unknown_or_malformed_records_are_skipped_with_a_reason(
    tmp_path: Path, change: dict, reason: str
) -> None:
    record = {**BASES["run"], **change}
    path = record_path(tmp_path, record["run_id"])
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    assert check_record(path) == (None, reason)
    scan = scan_records(tmp_path)
    assert scan.records == [] and scan.skipped == [(path, reason)]


def test_skipped_files_are_one_line_each_up_to_a_limit() -> None:
    skipped = [(Path(f"r/{i}.json"), "not JSON") for i in range(SKIPPED_SHOWN + 3)]
    lines = skipped_lines(skipped)
    assert len(lines) == SKIPPED_SHOWN + 1
    assert lines[0] == "warning: skipped r/0.json: not JSON"
    assert lines[-1] == f"warning: skipped 3 more files ({SKIPPED_SHOWN + 3} in all)"


# -- hypothesis: mutations of every kind -------------------------------------------------------
def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON value (dict keys and list indices)."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:3]):
            out += paths(item, (*prefix, i))
    return out


JUNK = st.one_of(
    st.text(max_size=12),  # unicode, including surrogates-free odd code points
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([10**400, -(10**400), 1e308, -1e308, math.nan, math.inf, -math.inf, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2),
    st.sampled_from(["NaN", "Infinity", "ok", "run", "profile", "", "\u202e\u0000ü"]),
)


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    record = copy.deepcopy(BASES[kind])
    for _ in range(draw(st.integers(1, 3))):
        where = paths(record)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = record
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JUNK)
    return record


def write_folder(folder: Path, records: list[dict[str, Any]], names: list[str]) -> None:
    runs = folder / "runs"
    runs.mkdir(parents=True)
    for record, name in zip(records, names, strict=True):
        # json.dumps writes bare NaN and 400-digit integers: a crafted file, not ours
        (runs / f"{name}.json").write_text(json.dumps(record, ensure_ascii=False))


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exit_info:  # anything else (a traceback) fails the test
        main(list(args))
    return exit_info.value.code, capsys.readouterr().err.splitlines()


def check_cli(capsys, tmp: Path, kind: str, record: dict, keep_valid: bool, command: str) -> None:
    capsys.readouterr()  # a previous example that failed mid-command left its output here
    folder = tmp / "a"
    shutil.rmtree(tmp, ignore_errors=True)
    name = str(BASES[kind]["run_id"])
    records, names = [record], [name]
    if keep_valid:
        records.append(BASES["run"])
        names.append(str(BASES["run"]["run_id"]) + ("x" if name == BASES["run"]["run_id"] else ""))
    write_folder(folder, records, names)
    scan = scan_records(folder)
    if command == "compare":
        write_folder(tmp / "b", [BASES["run"]], [str(BASES["run"]["run_id"])])
        code, err = invoke(capsys, "compare", str(folder), str(tmp / "b"))
    else:
        code, err = invoke(capsys, "report", str(folder), "--out", str(tmp / "out"))
    if scan.records:
        assert code == 0, err
        assert err == skipped_lines(scan.skipped)  # one line per skipped file
    else:
        assert code == 2 and len(err) == 1 and err[0].startswith("error: "), err
        assert "no valid records" in err[0] or "no records" in err[0]


FAST = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SLOW = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("kind", sorted(BASES))
def test_compare_survives_any_mutation(tmp_path: Path, capsys, kind: str) -> None:
    @FAST
    @given(record=mutated(kind), keep_valid=st.booleans())
    def check(record: dict, keep_valid: bool) -> None:
        check_cli(capsys, tmp_path / "h", kind, record, keep_valid, "compare")

    check()


@pytest.mark.parametrize("kind", sorted(BASES))
def test_report_survives_any_mutation(tmp_path: Path, capsys, kind: str) -> None:
    @SLOW
    @given(record=mutated(kind), keep_valid=st.booleans())
    def check(record: dict, keep_valid: bool) -> None:
        check_cli(capsys, tmp_path / "h", kind, record, keep_valid, "report")

    check()


@pytest.mark.parametrize(
    "path",
    [
        ("metrics", "val_curve", 0, "step"),  # a curve point that cannot be placed: skipped
        ("spec", "steps"),  # a run that does not say how long it trained: no evidence
        ("spec", "d_model"),
    ],
)
def test_report_survives_the_mutations_hypothesis_found(tmp_path: Path, capsys, path) -> None:
    """Examples hypothesis found in CI (KeyError 'step', int(NaN) in a finding's budget, a
    missing width in the GQA claim), kept so that they are checked on every run."""
    record = copy.deepcopy(BASES["run"])
    parent = record
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    for keep_valid in (False, True):
        check_cli(capsys, tmp_path / "h", "run", record, keep_valid, "report")


def test_report_survives_unknown_head_counts(tmp_path: Path, capsys) -> None:
    """One record with head counts, the other without: a column of numbers and None."""
    record = copy.deepcopy(BASES["run"])
    record["definition"]["model"]["mixer_kwargs"] = {
        "attention": {"n_heads": 8, "n_kv_heads": None}
    }
    check_cli(capsys, tmp_path / "h", "run", record, True, "report")
