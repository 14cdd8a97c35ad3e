"""The measurements a finding's rule reads: per configuration, accuracy intervals at each tested
length, whether any seed was still improving, and how many training tokens it took to learn.

Built from the report's frames (runs at the learning rate picked on validation, every seed)
plus each record's learning curve and test counts, so that a verdict is a pure function of
the records, like the rest of the report.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from seqbench.harness.calibration import full_multiple, reference_caps, setting_key
from seqbench.harness.protocol import Collapse, collapse, is_solved, steps_to, still_improving
from seqbench.harness.report.intervals import AccuracyCI, accuracy_ci


@dataclass
class Config:
    """Every seed of one architecture (and override set) at one setting, at its picked lr."""

    arch: str
    rows: pd.DataFrame  # the runs (any status)
    records: dict[str, dict[str, Any]]  # run_id -> record
    label: str = ""  # the architecture with its overrides, e.g. "mamba[mamba.d_state=4]"
    scaled: bool = False  # rules read scaled accuracy, (acc − chance) / (1 − chance)

    @property
    def name(self) -> str:
        return self.label or self.arch

    @property
    def ok(self) -> pd.DataFrame:
        return self.rows[self.rows["status"] == "ok"]

    @property
    def n_ok(self) -> int:
        return len(self.ok)

    @property
    def seq_len(self) -> int:
        return int(self.rows["seq_len"].iloc[0])

    @property
    def steps(self) -> int:
        return int(self.rows["steps"].max())

    @property
    def batch_tokens(self) -> int:
        return int((self.rows["batch_size"] * self.rows["seq_len"]).max())

    def budget(self) -> str:
        """ "400 steps × 1024 tokens", and for a calibrated budget what it was calibrated on:
        "3x the reference's 300 steps", or "3x the reference's 200 steps, cut by the 400-step
        cap" when the cap, not the multiple, ended the runs (their verdict then waits on
        budget)."""
        text = f"{self.steps} steps × {self.batch_tokens} tokens"
        specs = [self.records[r]["spec"] for r in self.rows["run_id"] if r in self.records]
        if specs and all(s.get("budget") == "reference" for s in specs):
            return f"≤ {text} (reference: until solved)"
        calibrated = [s for s in specs if s.get("budget") == "calibrated"]
        refs = sorted({s.get("reference_steps") for s in calibrated}, key=lambda r: r or 0)
        multiple = specs[0].get("budget_multiple", 3.0) if specs else 3.0
        if refs and refs != [None]:
            steps = "/".join("unsolved" if r is None else str(r) for r in refs)
            cut = any(
                s.get("reference_steps") is not None and not full_multiple(s) for s in calibrated
            )
            cap = f", cut by the {self.steps}-step cap" if cut else ""
            text += f" ({multiple:g}x the reference's {steps} steps{cap})"
        elif refs and self.calibrated:
            cap = max(self._reference_cap(s) or 0 for s in calibrated)
            text += f" ({multiple:g}x the {cap} steps of a reference that did not solve on a seed)"
        return text

    @functools.cached_property
    def _reference_caps(self) -> dict[str, int]:
        """Reference caps per setting, read from the records once (only where S is unknown)."""
        return reference_caps(self.records.values())

    def _reference_cap(self, spec: dict[str, Any]) -> int | None:
        """The cap of the setting's reference runs among all the records (calibration)."""
        return self._reference_caps.get(setting_key(spec))

    def test(self, run_id: str, length: int) -> dict[str, Any]:
        test = (self.records[run_id].get("metrics") or {}).get("test") or {}
        return test.get(str(length)) or {}

    def accuracy(self, length: int | None = None) -> AccuracyCI:
        """The accuracy interval over ok seeds at `length` (default: the training length)."""
        length = length or self.seq_len
        tests = [self.test(r, length) for r in self.ok["run_id"]]
        return accuracy_ci(
            [t.get("accuracy") for t in tests],
            [t.get("scored") for t in tests],
            [t.get("sequences") for t in tests],
        )

    @property
    def chance(self) -> float | None:
        """The task's chance accuracy, as its records state it (None: not defined)."""
        if "task_chance" not in self.rows:
            return None
        values = self.rows["task_chance"].dropna()
        return float(values.iloc[0]) if len(values) else None

    def score(self, length: int | None = None) -> AccuracyCI:
        """What the rules compare: accuracy, or scaled accuracy for a `rescaled` config."""
        ci = self.accuracy(length)
        if not self.scaled:
            return ci
        chance = self.chance or 0.0
        return ci.rescaled(lambda p: (p - chance) / (1 - chance))

    def rescaled(self) -> Config:
        """This configuration judged on scaled accuracy (chance 0, solved 1)."""
        return dataclasses.replace(self, scaled=True)

    @property
    def calibrated(self) -> bool:
        """Every ok seed trained the whole calibrated multiple of its reference's steps
        (harness/calibration.py): its budget is the protocol's, whatever its curve."""
        specs = [self.records[r]["spec"] for r in self.ok["run_id"]]
        return bool(specs) and all(self._full_multiple(s) for s in specs)

    def _full_multiple(self, spec: dict[str, Any]) -> bool:
        """`full_multiple`, with the reference's cap looked up only where S is unknown."""
        unknown = spec.get("reference_steps") is None
        return full_multiple(spec, self._reference_cap(spec) if unknown else None)

    def lengths(self) -> list[int]:
        """Every length some ok seed was tested at (measured or recorded oom)."""
        found: set[int] = set()
        for run_id in self.ok["run_id"]:
            test = (self.records[run_id].get("metrics") or {}).get("test") or {}
            found.update(int(k) for k in test)
        return sorted(found)

    def oom_at(self, length: int) -> bool:
        return any(self.test(r, length).get("status") == "oom" for r in self.ok["run_id"])

    def curves(self) -> list[list[dict[str, Any]]]:
        return [
            (self.records[r].get("metrics") or {}).get("val_curve") or [] for r in self.ok["run_id"]
        ]

    @property
    def solved_seeds(self) -> int:
        """Ok seeds whose final validation check is solved (`protocol.SOLVED`): the report's
        "solved seeds" column."""
        return len(self.solved_tests())

    def solved_tests(self) -> list[float]:
        """Test accuracy at the training length of each ok seed whose final validation check
        is solved (the seeds `solved_seeds` counts, in run order)."""
        found = []
        for run_id, curve in zip(self.ok["run_id"], self.curves(), strict=True):
            if curve and is_solved(curve[-1].get("accuracy")):
                found.append(self.test(run_id, self.seq_len).get("accuracy") or 0.0)
        return found

    @property
    def improving(self) -> bool:
        """Some ok seed was still improving when its budget ran out."""
        return any(still_improving(c) for c in self.curves())

    def collapses(self) -> list[tuple[int, Collapse]]:
        """(seed, collapse) for each ok seed whose final model lost what it had learnt."""
        seeds = [int(self.records[r]["spec"].get("seed", 0)) for r in self.ok["run_id"]]
        falls = [collapse(c) for c in self.curves()]  # in the same order as the ok runs
        return [(seed, fell) for seed, fell in zip(seeds, falls, strict=True) if fell]

    def tokens_to(self, threshold: float) -> float:
        """Median training tokens to reach `threshold` over ok seeds (inf for a seed that never
        did, so a median over mostly-failing seeds is inf)."""
        values = []
        for curve in self.curves():
            hit = steps_to(curve, threshold)
            values.append(float(hit["tokens"]) if hit else math.inf)
        return statistics.median(values) if values else math.nan

    def split(self, column: str) -> list[tuple[Any, Config]]:
        """One configuration per value of `column` (e.g. the training length), in order; the
        whole configuration as one when no run records that column (a knob left unset)."""
        if column not in self.rows.columns:
            return [(None, self)]
        return [
            (value, dataclasses.replace(self, rows=rows))
            for value, rows in self.rows.groupby(column, sort=True)
        ]

    def model_value(self, mixer: str, key: str) -> Any:
        """A mixer hyper-parameter of the recorded model (e.g. mamba's d_state): as the record
        states it, else the mixer's own default when the model uses that mixer (a preset
        that leaves d_state to Mamba-2's constructor records no d_state), else None."""
        for run_id in self.rows["run_id"]:
            record = self.records[run_id]
            model = (record.get("definition") or {}).get("model") or (
                (record.get("metrics") or {}).get("model") or {}
            )
            value = ((model.get("mixer_kwargs") or {}).get(mixer) or {}).get(key)
            if value is not None:
                return value
            if mixer in (model.get("layer_pattern") or ()):
                return mixer_default(mixer, key)
        return None

    def active_params(self) -> float | None:
        values = self.rows["params_active"].dropna()
        return float(values.iloc[0]) if len(values) else None


def describe(configs: Iterable[Config], length: int | None = None) -> str:
    """ "mha 0.99 [0.98, 1.00]; lru 0.21 [0.18, 0.25]" at `length` (scores as the rules read
    them)."""
    return "; ".join(f"{c.name} {c.score(length).format()}" for c in configs)


def collapse_text(configs: Iterable[Config]) -> str:
    """ "mha-moe seed 0: val 0.985 at step 13550, 0.036 at the end (fell at step 13700)", one
    entry per collapsed seed ('' when none)."""
    return "; ".join(
        f"{c.name} seed {seed}: {fell.describe()}" for c in configs for seed, fell in c.collapses()
    )


def budget_text(configs: Iterable[Config]) -> str:
    budgets = sorted({c.budget() for c in configs})
    return ", ".join(budgets)


@functools.lru_cache(maxsize=256)
def mixer_default(mixer: str, key: str) -> Any:
    """The default of a registered mixer's constructor argument `key` (None if it has none)."""
    from seqbench.architectures import MIXERS

    try:
        parameter = inspect.signature(MIXERS.get(mixer).__init__).parameters.get(key)
    except Exception:  # an unknown or unimportable mixer: nothing to read
        return None
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default
