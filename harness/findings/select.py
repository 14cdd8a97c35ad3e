"""Which runs test a finding, and how they split into settings and configurations.

A finding names the tasks it is judged on; its runs are the report's runs at the picked lr
for those tasks. They split into **settings** (same task, knobs, test knobs, width, batch and
— unless the finding reads a curve across them — training lengths) and, within a setting,
into **configurations**:
one per architecture and override set, holding every seed. Architectures are found by name,
so a finding about a mixer that is not installed (mamba3, deltanet) simply has no
configuration for it and reads "not measured".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from seqbench.harness.findings.base import NOT_MEASURED, Outcome, TaskSelector
from seqbench.harness.findings.evidence import Config
from seqbench.harness.report import fmt

PLACED_BY = ("seq_len", "steps", "batch_size")  # a run without one is no evidence


@dataclass
class Setting:
    label: str
    configs: dict[str, Config]  # config label ("mamba", "mamba[mamba.d_state=4]") -> Config

    def get(self, *labels: str) -> list[Config]:
        return [self.configs[label] for label in labels if label in self.configs]

    def plain(self, arch: str) -> Config | None:
        """The architecture without overrides, if run."""
        return self.configs.get(arch)

    def one(self, arch: str) -> Config | None:
        """The architecture as run here: its plain configuration, else its only variant (a
        suite may run attention with other head counts: mha[attention.n_heads=4, ...])."""
        found = self.variants(arch)
        return self.plain(arch) or (found[0] if len(found) == 1 else None)

    def ones(self, *archs: str) -> list[Config]:
        return [c for c in (self.one(a) for a in archs) if c is not None]

    def variants(self, arch: str) -> list[Config]:
        """Every configuration of `arch` (plain and with overrides)."""
        return [c for c in self.configs.values() if c.arch == arch]


def missing(setting: Setting, *needs: str) -> Outcome:
    """The outcome of a setting that lacks the runs a rule needs."""
    have = ", ".join(setting.configs) or "no runs"
    return Outcome(NOT_MEASURED, f"needs {' and '.join(needs)} (has: {have})", setting.label)


@dataclass
class Evidence:
    """The report's runs at the picked lr (`best`, every status) and the records by run id."""

    best: pd.DataFrame
    records: dict[str, dict[str, Any]]

    def settings(
        self, tasks: TaskSelector | Sequence[str], across: Sequence[str] = ()
    ) -> list[Setting]:
        """The settings of the selected tasks (a selector, or plain names); columns in
        `across` (e.g. "seq_len") stay inside one setting rather than splitting it."""
        if self.best.empty:
            return []
        if not isinstance(tasks, TaskSelector):
            tasks = TaskSelector((), names=tuple(tasks))
        tags = self.best["task_tags"] if "task_tags" in self.best else [()] * len(self.best)
        chosen = [
            tasks.matches(str(task), tuple(t) if isinstance(t, (tuple, list)) else ())
            for task, t in zip(self.best["task"], tags, strict=True)
        ]
        frame = self.best[chosen]
        # a run that does not record where and how long it trained cannot be placed
        if any(c not in frame.columns for c in PLACED_BY):
            return []
        frame = frame.dropna(subset=list(PLACED_BY))
        if frame.empty:
            return []
        knobs = sorted(c for c in frame.columns if c.startswith(("knob.", "test_knob.")))
        where = ("task", "seq_len", "min_seq_len", "d_model", "batch_size", *knobs)
        keys = [c for c in where if c not in across]
        keys = [c for c in keys if c in frame.columns]
        settings = []
        for key, group in frame.groupby(keys, sort=True, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            varying = [
                f"{c.removeprefix('knob.')}={fmt.values([v])}"
                for c, v in zip(keys, key, strict=True)
                if c != "task" and frame[c].astype(str).nunique(dropna=False) > 1
            ]
            label = " ".join([str(key[0]), *varying])
            settings.append(Setting(label, self._configs(group)))
        return settings

    def _configs(self, group: pd.DataFrame) -> dict[str, Config]:
        sets = sorted(c for c in group.columns if c.startswith("set."))
        labels = [config_label(row, sets) for _, row in group.iterrows()]
        configs = {}
        for label in dict.fromkeys(labels):
            rows = without_calibration_runs(group[[lab == label for lab in labels]])
            configs[label] = Config(str(rows["arch"].iloc[0]), rows, self.records, label)
        return configs


def without_calibration_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """A configuration run both as its setting's reference and at the calibrated budget (a
    suite that measures the reference's steps with early stop, then trains it like every
    other model: extrapolation claims need a model trained past its first solved check) is
    judged on its calibrated runs; the reference runs only set the budget."""
    if "budget" not in rows or not (rows["budget"] == "calibrated").any():
        return rows
    return rows[rows["budget"] != "reference"]


def config_label(row: pd.Series, sets: Sequence[str]) -> str:
    overrides = [
        f"{c.removeprefix('set.')}={fmt.values([row[c]])}" for c in sets if not _missing(row[c])
    ]
    return f"{row['arch']}[{', '.join(overrides)}]" if overrides else str(row["arch"])


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
