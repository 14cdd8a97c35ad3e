"""Reading a difficulty sweep: one configuration's scores along a knob (pairs, string length,
map size), the hardest point a reference solves, where another model stops solving.

A published finding names a condition (more pairs than the state holds, a string longer than
the state, a dense model below its memorisation ceiling); a sweep crosses it, and the verdict
is read where the curve says the condition holds, never at one point picked in advance
(MAD's difficulty sweeps). The helpers here say where that is, and what to write when the
sweep never reaches it.
"""

from __future__ import annotations

from typing import Any

from seqbench.harness.findings.base import INCONCLUSIVE, MARGINS, SUPPORTED, Outcome
from seqbench.harness.findings.evidence import Config
from seqbench.harness.findings.rules import at_least, gate

Curve = list[tuple[Any, Config]]  # (knob value, the configuration's runs at it), in order

# What an outcome says when the sweep never reached the paper's condition.
NOT_AT_CONDITION = "not at the paper's condition"


def curve(config: Config, column: str) -> Curve:
    return config.split(column)


def at(points: Curve, value: Any) -> Config | None:
    return next((c for v, c in points if v == value), None)


def solves(config: Config | None, length: int | None = None) -> bool:
    """Its interval lies at or above `MARGINS.solved`."""
    return config is not None and at_least(config, MARGINS.solved, length) == SUPPORTED


def solved_points(points: Curve, length: int | None = None) -> list[Any]:
    return [v for v, c in points if solves(c, length)]


def hardest_solved(points: Curve) -> Any | None:
    """The largest knob value the configuration solves, or None."""
    found = solved_points(points)
    return found[-1] if found else None


def first_unsolved(points: Curve, among: list[Any]) -> Any | None:
    """The smallest value of `among` at which the configuration does not solve (None: it
    solves every one of them)."""
    return next((v for v in among if not solves(at(points, v))), None)


def format_curve(name: str, points: Curve, unit: str = "", length: int | None = None) -> str:
    """ "mamba 4: 1.00, 8: 0.62 [0.41, 0.80], 16: 0.30" """
    body = ", ".join(f"{_value(v)}{unit}: {c.score(length).format()}" for v, c in points)
    return f"{name} {body}"


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def not_at_condition(setting: str, configs: list[Config], observed: str, why: str) -> Outcome:
    """Inconclusive because the sweep never crossed the paper's condition (`why` says how)."""
    return Outcome(gate(configs, INCONCLUSIVE), f"{observed} ({NOT_AT_CONDITION}: {why})", setting)
