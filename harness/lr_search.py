"""How a sweep tries the learning rates of a configuration: every one ("all", the default), or
one after another in the order given until one solves the configuration on every seed
("first-solved"; a suite file's top-level `lr_search`, or `seqbench run --lr-search`;
docs/harness.md).

Why first-solved exists: the report and the findings read each configuration at the lr with
the best mean final validation accuracy over seeds (`seqbench.harness.store.select_best_lr`).
Once one lr ends at the solved threshold (SOLVED) on every seed, another lr can raise that mean
by at most 1 - SOLVED; yet the lrs that do not solve train their whole budget, which made
them most of MQAR's cost in the `paper` suite. A configuration that no lr solves on every
seed still tries every lr, so "did not learn" never rests on fewer lrs than the suite lists.

The output folder is part of the sweep: an lr of which the folder already holds a record of
the configuration (an earlier sweep with every lr, another seed set) is tried again for every
seed of this sweep, so `--force` reruns it rather than leaving a stale record beside the new
ones, and a rerun of the same sweep takes a reference's steps (harness/calibration.py) over
the same lrs. What it cannot do is train an lr for seeds outside the sweep: a second seed set
that needs an lr the first did not try leaves that lr with fewer seeds, so each seed set gets
a folder of its own (`--out`, as the `paper` suite's runs do).

A configuration is a run's spec without its lr and seed; its lrs keep the order in which the
sweep's specs list them (a suite's lr axis, in file order).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from seqbench.errors import UserError
from seqbench.harness.protocol import is_solved
from seqbench.harness.records import canonical_json, iter_records
from seqbench.harness.spec import RunSpec, identity_of

if TYPE_CHECKING:  # prepare builds models (torch): suite files load without it
    from seqbench.harness.prepare import Prepared

LR_SEARCHES = ("all", "first-solved")


def config_key(spec: RunSpec | dict[str, Any]) -> str:
    """What the lrs and seeds of one configuration share."""
    data = identity_of(spec.to_dict() if isinstance(spec, RunSpec) else spec)  # records too
    return canonical_json({k: v for k, v in data.items() if k not in ("lr", "seed")})


def lr_stages(prepared: Sequence[Prepared], lr_search: str) -> list[list[Prepared]]:
    """The runs in the order the search launches them: "all", one stage; "first-solved",
    stage k holds the k-th lr of every configuration (its seeds together)."""
    if lr_search == "all":
        return [list(prepared)]
    order: dict[str, list[float]] = {}
    for p in prepared:
        lrs = order.setdefault(config_key(p.spec), [])
        if p.spec.lr not in lrs:
            lrs.append(p.spec.lr)
    stages: list[list[Prepared]] = [[] for _ in range(max(map(len, order.values()), default=0))]
    for p in prepared:
        stages[order[config_key(p.spec)].index(p.spec.lr)].append(p)
    return stages


def ends_solved(record: dict[str, Any] | None) -> bool:
    """The run ended at the solved threshold: its final validation accuracy, which the lr pick
    reads (a run that passed it and fell back is not solved)."""
    if record is None or record.get("status") != "ok":
        return False
    return is_solved(((record.get("metrics") or {}).get("val") or {}).get("accuracy"))


def solved_configs(
    tried: Sequence[Prepared], record_of: Callable[[str], dict[str, Any] | None]
) -> set[str]:
    """The configurations of `tried` of which some lr ended solved on every seed of `tried` (a
    missing or failed record is not solved)."""
    solved: dict[tuple[str, float], bool] = {}
    for p in tried:
        key = (config_key(p.spec), p.spec.lr)
        solved[key] = solved.get(key, True) and ends_solved(record_of(p.run_id))
    return {config for (config, _), ok in solved.items() if ok}


@dataclass
class LrSearch:
    """One sweep's search: its mode and the (configuration, lr) pairs its folder holds."""

    mode: str = "all"
    recorded: set[tuple[str, float]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.mode not in LR_SEARCHES:
            choices = ", ".join(LR_SEARCHES)
            raise UserError(f"lr_search must be one of {choices}, not {self.mode!r}")

    def read(self, out_dir: str | os.PathLike) -> None:
        """Note what the folder holds (call it under the folder's writer lock)."""
        if self.mode != "all":
            runs = iter_records(out_dir, "run")
            self.recorded = {(config_key(r["spec"]), r["spec"]["lr"]) for r in runs}

    def stages(self, prepared: Sequence[Prepared]) -> list[list[Prepared]]:
        return lr_stages(prepared, self.mode)

    def wanted(self, p: Prepared, solved: set[str]) -> bool:
        """Whether `p` runs in its stage: its configuration is unsolved so far, or the folder
        holds a record of it at this lr (module docstring)."""
        key = config_key(p.spec)
        return key not in solved or (key, p.spec.lr) in self.recorded
