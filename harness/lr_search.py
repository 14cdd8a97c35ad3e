"""How a sweep tries the learning rates of a configuration: every one ("all", the default), or
one after another in the order given until one solves the configuration on every seed
("first-solved"; a suite file's top-level `lr_search`, docs/harness.md).

Why first-solved exists: the report and the findings read each configuration at the lr with
the best mean validation accuracy over seeds (`seqbench.harness.store.select_best_lr`). Once
one lr has solved every seed (validation accuracy at the solved threshold, SOLVED), another lr
can move that mean by at most 1 - SOLVED, so training it changes no verdict; yet the lrs that
do not solve train their whole budget, which made them most of MQAR's cost in the `paper`
suite. A configuration that no lr solves on every seed still tries every lr, so "did not
learn" is never claimed on fewer lrs than the suite lists.

A configuration is a run's spec without its lr and seed; its lrs keep the order in which the
sweep's specs list them (a suite's lr axis, in file order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from seqbench.harness.calibration import solved_at
from seqbench.harness.records import canonical_json
from seqbench.harness.spec import RunSpec

if TYPE_CHECKING:  # prepare builds models (torch): suite files load without it
    from seqbench.harness.prepare import Prepared

LR_SEARCHES = ("all", "first-solved")


def config_key(spec: RunSpec) -> str:
    """What the lrs and seeds of one configuration share."""
    return canonical_json({k: v for k, v in spec.to_dict().items() if k not in ("lr", "seed")})


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


def solved_configs(
    tried: Sequence[Prepared], record_of: Callable[[str], dict[str, Any] | None]
) -> set[str]:
    """The configurations of `tried` of which some lr solved every seed (a missing or failed
    record is not solved)."""
    solved: dict[tuple[str, float], bool] = {}
    for p in tried:
        record = record_of(p.run_id)
        key = (config_key(p.spec), p.spec.lr)
        ok = record is not None and solved_at(record) is not None
        solved[key] = solved.get(key, True) and ok
    return {config for (config, _), ok in solved.items() if ok}
