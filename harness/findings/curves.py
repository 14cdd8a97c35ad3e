"""Reading a difficulty sweep: one configuration's scores along a knob (pairs, string length,
map size), the hardest point a reference solves, where another model stops solving.

A published finding names a condition (more pairs than the state holds, a string longer than
the state, a dense model below its memorisation ceiling); a sweep crosses it, and the verdict
is read where the curve says the condition holds, never at one point picked in advance
(MAD's difficulty sweeps). The helpers here say where that is, and what to write when the
sweep never reaches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seqbench.harness.findings.base import (
    INCONCLUSIVE,
    MARGINS,
    NOT_AT_CONDITION,
    SUPPORTED,
    Outcome,
)
from seqbench.harness.findings.evidence import Config
from seqbench.harness.findings.rules import above, at_least, gate

Curve = list[tuple[Any, Config]]  # (knob value, the configuration's runs at it), in order
HELD = "solved on its interval or by a seed"  # what `holds` tests, in a verdict's text


def curve(config: Config, column: str) -> Curve:
    return config.split(column)


def at(points: Curve, value: Any) -> Config | None:
    return next((c for v, c in points if v == value), None)


def solves(config: Config | None, length: int | None = None) -> bool:
    """Its interval lies at or above `MARGINS.solved`."""
    return config is not None and at_least(config, MARGINS.solved, length) == SUPPORTED


def holds(config: Config | None) -> bool:
    """The model's state is shown to hold this point of a capacity sweep: its interval solves
    it, or one seed solved it outright (validation ≥ `protocol.SOLVED`, the report's "solved
    seeds", with its test accuracy ≥ `MARGINS.solved`, so that one lucky validation check is
    not enough). A capacity claim is about what the architecture can hold; one seed that
    solves a point shows the state holds it, and the seeds that did not failed to find the
    solution, which the claim does not speak to (Zoology reports the best run of its sweeps;
    here the seeds at the picked lr count). Used for the model under test only; a reference
    must solve on its interval."""
    if config is None:
        return False
    return solves(config) or any(t >= MARGINS.solved for t in config.solved_tests())


def solved_points(points: Curve, length: int | None = None) -> list[Any]:
    return [v for v, c in points if solves(c, length)]


def hardest_solved(points: Curve) -> Any | None:
    """The largest knob value the configuration solves, or None."""
    found = solved_points(points)
    return found[-1] if found else None


def first_unheld(points: Curve, among: list[Any]) -> Any | None:
    """The smallest value of `among` the model's state is not shown to hold (`holds`; None:
    it holds every one of them)."""
    return next((v for v in among if not holds(at(points, v))), None)


def format_curve(name: str, points: Curve, unit: str = "", length: int | None = None) -> str:
    """ "mamba 4: 1.00, 8: 0.62 [0.41, 0.80], 16: 0.30" """
    body = ", ".join(f"{_value(v)}{unit}: {c.score(length).format()}" for v, c in points)
    return f"{name} {body}"


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def not_at_condition(setting: str, configs: list[Config], observed: str, why: str) -> Outcome:
    """The sweep never crossed the paper's condition (`why` says how): no verdict either way
    (still "inconclusive: budget" or "inconclusive" when the gate says so)."""
    verdict = gate(configs, NOT_AT_CONDITION)
    return Outcome(verdict, f"{observed} ({NOT_AT_CONDITION}: {why})", setting)


def capacity_outcomes(
    setting: str,
    reference: Config,
    others: list[Config],
    column: str,
    unit: str,
    *,
    note: Callable[[Config], str] = lambda _: "",
    must_learn: bool = False,
) -> list[Outcome]:
    """One outcome per model of a capacity sweep (string or sequence length): judged at the
    first point `reference` solves and the model's state is not shown to hold (`holds`), as
    `above(reference, model)` there. A model that holds every point the reference solves was
    never pushed past its state, and with `must_learn` one that solves no shorter point has not
    learnt the task at all: neither is the paper's condition. `note(model)` adds to its text
    (e.g. the sample-efficiency figures)."""
    ref_curve = curve(reference, column)
    solved = solved_points(ref_curve)
    head = format_curve(reference.name, ref_curve, unit)
    if not solved:
        why = f" ({reference.name} solves no point within its budget: nothing to compare)"
        return [Outcome(gate([reference, *others], INCONCLUSIVE), head + why, setting)]
    outcomes = []
    for other in others:
        points = curve(other, column)
        text = f"{head}; {format_curve(other.name, points, unit)}{note(other)}"
        label = f"{setting} {other.name}"
        shared = [v for v in solved if at(points, v) is not None]
        if not shared:
            why = f" ({other.name} has no runs at a point {reference.name} solves)"
            outcomes.append(Outcome(INCONCLUSIVE, text + why, label))
            continue
        fails = first_unheld(points, shared)
        if fails is None:
            why = f"{other.name}'s state holds every point {reference.name} solves ({HELD})"
            outcomes.append(not_at_condition(label, [reference, other], text, why))
            continue
        if must_learn and not any(v < fails for v in solved_points(points)):
            why = f"{other.name} solves no shorter point: a learning failure, not its state's"
            outcomes.append(not_at_condition(label, [reference, other], text, why + " limit"))
            continue
        a, o = at(ref_curve, fails), at(points, fails)
        text += f"; judged at {_value(fails)}{unit} ({reference.name} solves it, {other.name} not)"
        outcomes.append(Outcome(gate([a, o], above(a, o)), text, label))
    return outcomes
