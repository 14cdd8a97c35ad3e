"""Suites: TOML files of run grids (built-ins shipped in harness/suites/, user files by path).

    description = "one line shown by `seqbench list suites`"
    lr_search = "first-solved"   # optional, default "all": see seqbench.harness.lr_search

    [defaults]              # any RunSpec field, applied to every grid below
    steps = 400
    d_model = 64

    [by_task.mqar]          # fields for one task, over the defaults
    lr = [1e-3, 3e-3]

    [by_arch.lru]           # fields for one architecture, over by_task (grids still win)
    lr = 1e-3

    [[grid]]                # one cartesian product; a suite is the union of its grids
    arch = ["mha", "lru"]   # a list is an axis: one run per value
    task = "mqar"
    knobs = { num_pairs = 8, vocab_size = [64, 128] }   # lists inside tables are axes too
    seed = [0, 1]

`eval_lengths` is a list by nature: a plain list of integers is one value (a list of lists is
an axis). `knobs` and `overrides` tables merge key by key (defaults, then by_task, then by_arch,
then the grid). Unknown keys anywhere are an error naming the file and the grid (docs/harness.md).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from seqbench.errors import UserError
from seqbench.harness.lr_search import LrSearch
from seqbench.harness.spec import RunSpec
from seqbench.registry import did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP_LEVEL_KEYS = ("description", "lr_search", "defaults", "by_task", "by_arch", "grid")
# [by_task.NAME], [by_arch.NAME]: fields for one task / architecture (the word errors use)
BY_TABLES = {"task": "task", "arch": "architecture"}
TABLE_FIELDS = ("knobs", "test_knobs", "overrides")


@dataclass
class Suite:
    name: str
    description: str
    specs: list[RunSpec]
    source: str  # file the suite came from
    lr_search: str = "all"  # how a sweep tries each configuration's lrs (harness/lr_search.py)


def builtin_dir() -> Path:
    return Path(str(resources.files("seqbench.harness") / "suites"))


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml"))


def suite_rows() -> list[dict[str, object]]:
    """Every built-in suite: its number of runs, tasks, architectures and description."""
    rows = []
    for name in builtin_names():
        suite = load_builtin(name)
        rows.append(
            {
                "name": name,
                "runs": len(suite.specs),
                "tasks": ",".join(dict.fromkeys(s.task for s in suite.specs)),
                "architectures": ",".join(dict.fromkeys(s.arch for s in suite.specs)),
                "description": suite.description,
            }
        )
    return rows


def load_builtin(name: str) -> Suite:
    path = builtin_dir() / f"{name}.toml"
    if not path.is_file():
        names = builtin_names()
        hint = did_you_mean(name, names)
        raise UserError(f"unknown suite {name!r}{hint} (built-in: {', '.join(names)})")
    return load_file(path)


def load_file(path: str | Path) -> Suite:
    """Parse and expand a suite file; every problem is one UserError line naming the file."""
    path = Path(path)
    where = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read suite file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: invalid TOML: {exc}") from None
    lr_search = data.get("lr_search", "all")
    try:
        LrSearch(lr_search)  # its own check, named after the file
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    description = str(data.get("description", ""))
    return Suite(path.stem, description, expand(data, where), str(path), lr_search)


def expand(data: dict[str, Any], where: str) -> list[RunSpec]:
    """Every RunSpec of a parsed suite, in file order (grid by grid, axes in key order)."""
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            hint = did_you_mean(key, list(TOP_LEVEL_KEYS))
            raise UserError(
                f"{where}: unknown top-level key {key!r}{hint} (use [defaults], [[grid]])"
            )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UserError(f"{where}: [defaults] must be a table")
    by = {field: by_table(data, field, where) for field in BY_TABLES}
    grids = data.get("grid", [])
    if not isinstance(grids, list) or not grids:
        raise UserError(f"{where}: no [[grid]] tables: a suite needs at least one grid")
    specs: list[RunSpec] = []
    used: dict[str, set[str]] = {field: set() for field in BY_TABLES}
    for i, grid in enumerate(grids, start=1):
        if not isinstance(grid, dict):
            raise UserError(f"{where}: grid {i} must be a table")
        grid_where = f"{where}: grid {i}"
        archs = grid.get("arch", defaults.get("arch"))
        if archs == []:
            raise UserError(f"{grid_where}: arch is an empty list (an axis needs values)")
        tasks = grid.get("task", defaults.get("task"))
        for arch in archs if isinstance(archs, list) else [archs]:
            for task in tasks if isinstance(tasks, list) and tasks else [tasks]:
                chosen = {"arch": arch, "task": task}
                entry = merge(layered(defaults, by, chosen, used), grid)
                entry.update({k: v for k, v in chosen.items() if v is not None})
                for point in grid_points(entry, grid_where):
                    specs.append(RunSpec.from_dict(point, grid_where))
    for field in BY_TABLES:
        for name in by[field]:
            if name not in used[field]:
                hint = did_you_mean(name, sorted(used[field]))
                raise UserError(
                    f"{where}: [by_{field}.{name}] matches no {BY_TABLES[field]} of the suite{hint}"
                )
    return specs


def layered(
    defaults: dict[str, Any],
    by: dict[str, dict[str, dict[str, Any]]],
    chosen: dict[str, Any],
    used: dict[str, set[str]],
) -> dict[str, Any]:
    """The defaults with the run's [by_task.<task>] then [by_arch.<arch>] merged over them
    (marking each table as used, so a table naming nothing in the suite is an error)."""
    base = defaults
    for field in BY_TABLES:
        name = chosen[field]
        if isinstance(name, str):
            used[field].add(name)
            base = merge(base, by[field].get(name, {}))
    return base


def by_table(data: dict[str, Any], field: str, where: str) -> dict[str, dict[str, Any]]:
    """[by_task.NAME] / [by_arch.NAME]: RunSpec fields for one task or architecture (not the
    field that selects them: a by_task table cannot set task, nor a by_arch table arch)."""
    tables = data.get(f"by_{field}", {})
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise UserError(f"{where}: [by_{field}] must hold one table per {BY_TABLES[field]}")
    for name, fields in tables.items():
        if field in fields:
            raise UserError(f"{where}: [by_{field}.{name}] cannot set {field}")
    return tables


def merge(defaults: dict[str, Any], grid: dict[str, Any]) -> dict[str, Any]:
    """Grid values over defaults; knobs/overrides tables merge key by key."""
    merged = {**defaults, **grid}
    for key in TABLE_FIELDS:
        if isinstance(defaults.get(key), dict) and isinstance(grid.get(key), dict):
            merged[key] = {**defaults[key], **grid[key]}
    return merged


def grid_points(entry: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The cartesian product over every list-valued field (see module docstring)."""
    axes: list[tuple[tuple[str, ...], list[Any]]] = []
    for key, value in entry.items():
        if key in TABLE_FIELDS and isinstance(value, dict):
            axes += [((key, k), v) for k, v in value.items() if isinstance(v, list)]
        elif _is_axis(key, value):
            axes.append(((key,), value))
    for path, values in axes:
        if not values:
            raise UserError(f"{where}: {'.'.join(path)} is an empty list (an axis needs values)")
    points = []
    for combo in itertools.product(*(values for _, values in axes)):
        point = {k: (dict(v) if isinstance(v, dict) else v) for k, v in entry.items()}
        for (path, _), value in zip(axes, combo, strict=True):
            if len(path) == 1:
                point[path[0]] = value
            else:
                point[path[0]][path[1]] = value
        points.append(point)
    return points


def _is_axis(key: str, value: Any) -> bool:
    if not isinstance(value, list):
        return False
    if key == "eval_lengths":
        return bool(value) and all(isinstance(v, list) for v in value)
    return True
