"""The shared atomic writer: whole files only, no leftovers, and the mode `open()` would give."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import seqbench.harness.atomic as atomic
from seqbench.harness.atomic import FILE_MODE, atomic_write_text
from seqbench.harness.records import atomic_write_json


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_whole_file_and_creates_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "report.md"
    assert atomic_write_text(target, "héllo\n") == target
    assert target.read_text(encoding="utf-8") == "héllo\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]  # no temporary left


def test_files_are_readable_like_plain_open_not_owner_only(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; records on a shared filesystem must follow the umask."""
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    atomic_write_json(tmp_path / "record.json", {"a": 1})
    assert _mode(tmp_path / "atomic.txt") == _mode(plain) == FILE_MODE
    assert _mode(tmp_path / "record.json") == FILE_MODE
    assert json.loads((tmp_path / "record.json").read_text()) == {"a": 1}


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "runs.csv"
    atomic_write_text(target, "old\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["runs.csv"]
