"""One import name: the wheel installs `seqbench` only, and nothing imports the old names."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from seqbench.registry import import_dotted

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {
    "seqbench": "seqbench",
    "architectures": "seqbench/architectures",
    "tasks": "seqbench/tasks",
    "harness": "seqbench/harness",
}
OLD_NAMES = ("architectures", "tasks", "harness")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("seqbench-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_installs_one_top_level_name(wheel) -> None:
    (top_level,) = [n for n in wheel.namelist() if n.endswith(".dist-info/top_level.txt")]
    assert wheel.read(top_level).decode().split() == ["seqbench"]
    tops = {n.split("/")[0] for n in wheel.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"seqbench"}


def test_the_wheel_holds_every_module_and_suite(wheel) -> None:
    names = set(wheel.namelist())
    expected = set()
    for folder, target in MAPPED.items():
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".toml", ".c", ".h") and "__pycache__" not in path.parts:
                expected.add(f"{target}/{path.relative_to(ROOT / folder).as_posix()}")
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel (add the package to pyproject.toml): {missing}"


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_file_imports_the_old_top_level_names() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        if {".venv", ".git", "build"} & set(path.parts):
            continue
        for name in _imported_modules(path):
            if name.split(".")[0] in OLD_NAMES:
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders


def test_looking_up_a_dotted_name_leaves_sys_path_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    assert import_dotted("json:dumps") is not None
    assert sys.path == before


def test_a_module_that_fails_to_import_is_one_line(tmp_path, monkeypatch) -> None:
    (tmp_path / "broken_plugin_mod.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from seqbench.errors import UserError

    with pytest.raises(UserError) as info:
        import_dotted("broken_plugin_mod:Mixer")
    assert "\n" not in str(info.value) and "SyntaxError" in str(info.value)


def test_a_plugin_written_against_the_public_api_only(tmp_path) -> None:
    """The example plugin's shape, in a fresh interpreter that imports nothing but seqbench.api."""
    code = """
import torch
from seqbench.api import MIXERS, PRESETS, check_architecture, register_preset, state_bytes

@MIXERS.register("api_test_scale", family="test")
class Scale(torch.nn.Module):
    def __init__(self, d_model, *, layer_idx=0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(d_model))
    def forward(self, x):
        return x * self.w
    def init_state(self, batch_size, *, device, dtype):
        return {}
    def step(self, x_t, state):
        return x_t * self.w, state

register_preset("api-test", "test", "a per-channel scale", layer_pattern=("api_test_scale",))
assert "api-test" in PRESETS
report = check_architecture("api_test_scale")
assert report.passed, report
print("ok", state_bytes({}))
"""
    script = tmp_path / "plugin_check.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok 0"
