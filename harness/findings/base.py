"""What a published finding is in seqbench: a citation, a statement, the grid that tests it, the
expected ordering, and a rule that turns measured intervals into a verdict.

Verdicts:
- **supported** — the rule holds at every measured setting, and at two settings at least (a
  finding must not hang on one tuned configuration);
- **contradicted** — at some setting the intervals exclude the expected ordering;
- **inconclusive** — the intervals overlap, or fewer than two settings could be judged;
  **inconclusive: budget** when a run the rule needs was still improving when its step budget
  ran out (`seqbench.harness.protocol.still_improving`): it has not shown what it cannot do;
- **not at the paper's condition** — the runs exist but never reach the condition the paper
  names (every string fits the state, the dense model memorises every map): such a setting
  neither supports nor contradicts, and a finding with no setting at its condition says so;
- **not measured** — the folder lacks the runs (e.g. an architecture not installed here).

The numeric margins live in `Margins`, named, so that the rules, docs/findings.md and the
tests refer to the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
BUDGET = "inconclusive: budget"
NOT_MEASURED = "not measured"
NOT_AT_CONDITION = "not at the paper's condition"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, BUDGET, NOT_AT_CONDITION, NOT_MEASURED)
DEFINITE = (SUPPORTED, CONTRADICTED)


@dataclass(frozen=True)
class Margins:
    """The numbers behind the rules (docs/findings.md says why each)."""

    far: float = 0.10  # "far above": mean gap of at least 10 points of accuracy
    solved: float = 0.90  # "solves it": mean test accuracy at least 0.9
    close: float = 0.05  # "close to": mean gap of at most 5 points
    chance_high: float = 0.50  # "falls towards chance": upper bound below 0.5
    extrapolates: float = 0.95  # Mamba's induction claim: >= 0.95 ...
    extrapolation_ratio: int = 64  # ... up to 64x the training length
    fewer_samples: float = 2.0  # "far fewer samples": at most half the tokens to 0.9
    min_seeds: int = 3  # seeds per configuration for a verdict
    min_settings: int = 2  # settings a supported verdict needs
    active_tolerance: float = 0.10  # "equal active parameters": within 10%


MARGINS = Margins()


@dataclass
class Outcome:
    """The verdict at one setting (or across settings), with what was observed."""

    verdict: str
    observed: str
    setting: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


@dataclass(frozen=True)
class TaskSelector:
    """Which tasks test a finding: those whose recorded tags include every one of `tags` and
    none of `exclude` (tags come from the task classes, so a new task with the right tags is
    picked up without editing the finding). `names` serve records that predate task tags."""

    tags: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def matches(self, task: str, tags: tuple[str, ...] | None) -> bool:
        if not tags:
            return task in self.names
        return all(t in tags for t in self.tags) and not any(t in tags for t in self.exclude)

    def describe(self) -> str:
        text = "tasks tagged " + " + ".join(self.tags)
        return text + (f", not {' / '.join(self.exclude)}" if self.exclude else "")


@dataclass(frozen=True)
class Finding:
    """One published finding as a checkable claim (see module docstring)."""

    name: str
    citation: str
    statement: str
    tasks: TaskSelector  # the tasks it is judged on
    grid: str  # the grid that tests it, in words (the suites hold it as runs)
    expected: str  # the expected ordering
    rule: str  # how intervals become a verdict
    judge: Callable[[Any], list[Outcome]] = field(repr=False, compare=False)
    suites: tuple[str, ...] = ("paper", "paper-full")
