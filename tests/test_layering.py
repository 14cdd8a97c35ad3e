"""Who may import whom: training, the report and the shared helpers never import the profiler
(they share `seqbench.harness.common` with it instead)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Everything under harness/ except the profiler itself, its CLI command and the launchers'
# dispatch of a profile job.
ALLOWED = {"harness/cli/profile_cmd.py", "harness/launchers/base.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_nothing_outside_the_profiler_imports_it() -> None:
    offenders = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("harness/profile/") or rel in ALLOWED:
            continue
        bad = [m for m in imported_modules(path) if m.startswith("seqbench.harness.profile")]
        if bad:
            offenders.append(f"{rel}: {', '.join(sorted(bad))}")
    assert not offenders, offenders
