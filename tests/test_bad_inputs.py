"""The bad-input catalogue (tests/data/bad_inputs.toml): every malformed invocation or file
ends with its documented exit code, exactly one line on stderr, no traceback, and nothing
written. Cases run in-process, each in an empty temporary folder, so hundreds take seconds."""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from seqbench.harness.cli import main
from seqbench.harness.records import encode_nonfinite
from tests.report_fixtures import profile_record, run_record

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CATALOGUE = Path(__file__).parent / "data" / "bad_inputs.toml"
CASES = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))["case"]


def valid_record(kind: str, run_id: str) -> dict[str, Any]:
    record = run_record("mha", "mqar") if kind == "run" else profile_record("train", "mha", 64)
    return {**copy.deepcopy(record), "run_id": run_id}


SPECIAL = {"@nan": math.nan, "@bigint": 10**400}


def mutate(record: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Set (or with "@delete" remove) dotted keys; intermediate tables are created."""
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = record
        for part in parents:
            node = node.setdefault(part, {})
        if value == "@delete":
            node.pop(last, None)
        else:
            node[last] = SPECIAL.get(value, value) if isinstance(value, str) else value
    return record


def file_bytes(path: str, spec: str) -> bytes:
    """The content a catalogue entry describes (see the header of bad_inputs.toml)."""
    if spec.startswith("@bytes "):
        return bytes.fromhex(spec.removeprefix("@bytes "))
    if spec.startswith("@repeat "):
        count, open_, close = spec.split()[1:]
        return (open_ * int(count) + close * int(count)).encode()
    for kind in ("run", "point"):
        if spec.startswith(f"@valid_{kind} "):
            changes = json.loads(spec.removeprefix(f"@valid_{kind} "))
            record = mutate(valid_record(kind, Path(path).stem), changes)
            # bare NaN and huge integers on purpose: json writes what strict writers refuse
            return json.dumps(record).encode()
    return spec.encode()


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty working folder; plugin modules imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = set(sys.modules)
    path_before = list(sys.path)
    yield tmp_path
    for name in set(sys.modules) - before:
        if str(tmp_path) in str(getattr(sys.modules[name], "__file__", "") or ""):
            del sys.modules[name]
    sys.path[:] = path_before


def test_the_catalogue_is_large_and_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 150 and len(set(ids)) == len(ids)
    commands = {case["args"][0] for case in CASES}
    expected = {"list", "sample", "run", "profile", "report", "compare", "check-arch"}
    assert expected <= commands


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input(case: dict[str, Any], sandbox: Path, capsys: pytest.CaptureFixture) -> None:
    for name, spec in case.get("files", {}).items():
        path = sandbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file_bytes(name, spec))
    before = tree(sandbox)
    with pytest.raises(SystemExit) as exit_info:
        main(list(case["args"]))
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert exit_info.value.code == case.get("code", 2), out.err
    assert len(lines) == 1, out.err
    assert lines[0].startswith("error: ") and case["error"] in lines[0], lines[0]
    assert "Traceback" not in out.err + out.out
    assert tree(sandbox) == before, "a refused input wrote something"


def test_strict_json_writer_refuses_nothing_the_catalogue_reads() -> None:
    """The catalogue writes bare NaN on purpose; the harness's own writer never does."""
    assert json.dumps(encode_nonfinite({"x": math.nan}), allow_nan=False) == '{"x": "NaN"}'


RAISING_MIXER = """
from torch import nn


class Boom(nn.Module):
    def __init__(self, d_model, layer_idx=0, **kwargs):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        raise RuntimeError("forward exploded\\nwith a second line\\nand a third")

    def init_state(self, batch_size, *, device, dtype):
        return {}

    def step(self, x, state):
        return self.proj(x), state
"""


def test_a_refused_plugins_reason_is_one_line(sandbox: Path, capsys: pytest.CaptureFixture) -> None:
    """A plugin whose forward always raises fails several checks for one cause: it is refused
    with that cause once, on one line, in the record; the sweep exits 1 (a failed run)."""
    from seqbench.harness.records import iter_records

    (sandbox / "refused_plugin.py").write_text(RAISING_MIXER)
    args = ["run", "--arch", "refused_plugin:Boom", "--task", "tests.harness_support:EchoTask"]
    args += ["--seq-len", "8", "--d-model", "16", "--n-layers", "1", "--steps", "2"]
    args += ["--device", "cpu", "--out", "res"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1, err
    (record,) = list(iter_records(sandbox / "res"))
    reason = record["reason"]
    assert record["status"] == "failed" and "\n" not in reason
    assert reason.startswith("conformance gate refused refused_plugin:Boom: ")
    assert reason.count("forward exploded") == 1 and "second line" not in reason
