"""KEY=VALUE options shared by `seqbench run` and `seqbench profile` (`--set`, `--knob`)."""

from __future__ import annotations

import json
from typing import Any

from seqbench.errors import UserError
from seqbench.harness.bounds import check_finite


def parse_value(text: str) -> Any:
    """JSON when it parses (16, 0.5, true, [1,2]), the plain string otherwise (mamba,attention)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pair(pair: str, flag: str) -> tuple[str, Any]:
    """ "KEY=VALUE" -> (key, typed value); one-line error naming the flag otherwise."""
    key, eq, value = pair.partition("=")
    if not eq or not key.strip():
        raise UserError(f"{flag} expects KEY=VALUE, got {pair!r}")
    parsed = parse_value(value.strip())
    check_finite(parsed, f"{flag} {key.strip()}")
    return key.strip(), parsed


def parse_pairs(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, Any]:
    """Repeatable KEY=VALUE options as one dict; a key given twice is an error, not a silent
    overwrite (grids belong in a suite file, or in `seqbench profile`, which sweeps them)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, value = parse_pair(pair, flag)
        if key in out and out[key] != value:
            raise UserError(f"{flag} {key} given twice ({out[key]!r}, {value!r}); use one value")
        out[key] = value
    return out


def parse_sweeps(pairs: tuple[str, ...] | list[str], flag: str) -> dict[str, list[Any]]:
    """Repeatable KEY=VALUE options where a key given several times is swept over its values."""
    sweeps: dict[str, list[Any]] = {}
    for pair in pairs:
        key, value = parse_pair(pair, flag)
        values = sweeps.setdefault(key, [])
        if value not in values:
            values.append(value)
    return sweeps


def make_launcher(
    name: str, workers: int | None, address: str | None = None, threads: int | None = None
) -> Any:
    """The launcher named by --launcher, checked against --workers and --address (one line);
    `threads`: torch threads per job (--threads; None: the launcher's default)."""
    from seqbench.harness.launchers import get_launcher

    if workers and name == "serial":
        raise UserError("--workers applies to --launcher local, slurm or ray")
    if address and name != "ray":
        raise UserError("--address applies to --launcher ray")
    launcher = get_launcher(name, workers, address=address)
    launcher.threads = threads
    return launcher
