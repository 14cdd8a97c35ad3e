"""A folder of run records -> one pandas DataFrame (one row per run), and best-LR selection.

Column names are a contract with the report (docs/records.md lists them all): spec fields keep
their names (`arch`, `task`, `seq_len`, `lr`, ...), task knobs become `knob.<name>`,
architecture overrides `set.<key>`, metrics are flattened (`val_accuracy`, `test_accuracy`
at the training length, `test_accuracy@<L>` at every tested length), timings keep their
names and environment fields get an `env_` prefix. Partial or corrupt files are skipped by
`seqbench.harness.records.read_record`, so a folder being written to can be read at any time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pandas as pd

from seqbench.harness.records import canonical_json, iter_records, spec_hash
from seqbench.harness.spec import RunSpec, identity_of

TABLES = {"knobs": "knob.", "test_knobs": "test_knob.", "overrides": "set."}  # -> column prefix
SPEC_COLUMNS = [f for f in RunSpec.__dataclass_fields__ if f not in TABLES]
SCORES = ("accuracy", "exact_match", "loss")
TIMINGS = ("wall_s", "train_s", "eval_s", "tokens_per_s", "train_tokens")
ENVIRONMENT = (
    "device", "cpu", "gpu", "torch", "python", "torch_threads", "cpu_count", "seqbench",
)  # fmt: skip


def load_records(out_dir: str | os.PathLike, kind: str = "run") -> pd.DataFrame:
    """Every valid record of `kind` under DIR/runs as a DataFrame (empty frame if none)."""
    return records_frame(iter_records(out_dir, kind=kind))


def records_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = [flatten(r) for r in records]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "status", *SPEC_COLUMNS])
    return frame.sort_values(["task", "arch", "seq_len", "lr", "seed"], kind="stable").reset_index(
        drop=True
    )


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One record as a flat row (see module docstring for the naming)."""
    spec = record["spec"]
    row: dict[str, Any] = {
        "run_id": record["run_id"],
        "status": record["status"],
        "reason": record.get("reason"),
        "created": record.get("created"),
        "git_commit": record.get("git_commit"),
        # Same spec_id, different run_id: two definitions of "the same" configuration.
        "spec_id": spec_hash("spec", identity_of(spec)),
    }
    row.update(_definition_columns(record.get("definition")))
    for key in SPEC_COLUMNS:
        value = spec.get(key)
        row[key] = tuple(value) if isinstance(value, list) else value
    for table, prefix in TABLES.items():
        row.update({f"{prefix}{k}": _hashable(v) for k, v in (spec.get(table) or {}).items()})
    row.update(_metrics_columns(record.get("metrics") or {}, spec.get("seq_len")))
    timings = record.get("timings") or {}
    row.update({key: timings.get(key) for key in TIMINGS})
    env = record.get("environment") or {}
    row.update({f"env_{key}": env.get(key) for key in ENVIRONMENT})
    return row


def _definition_columns(definition: Any) -> dict[str, Any]:
    """What the record says defines the run beyond its spec (None for records without it)."""
    definition = definition if isinstance(definition, dict) else {}
    task = definition.get("task") if isinstance(definition.get("task"), dict) else {}
    tags = task.get("tags")
    return {
        "family": definition.get("family"),
        "task_version": task.get("version"),
        "task_tags": tuple(tags) if isinstance(tags, list) else (),
        "task_chance": task.get("chance"),
    }


def has_tag(frame: pd.DataFrame, tag: str) -> pd.Series:
    """Rows whose task carries `tag` (as recorded in the run's definition)."""
    if frame.empty or "task_tags" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["task_tags"].map(lambda tags: isinstance(tags, tuple) and tag in tags)


def latest_definitions(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep, for every spec recorded under several definitions, the newest definition's runs.

    A preset or task generator that changed between two sweeps into one folder leaves records
    with one spec and two run_ids; mixing them would average two experiments. Returns the kept
    frame and the labels of the configurations that had more than one definition."""
    if frame.empty or "spec_id" not in frame.columns:
        return frame, []
    newest = frame.sort_values("created", kind="stable", na_position="first")
    newest = newest.groupby("spec_id")["run_id"].last()
    counts = frame.groupby("spec_id")["run_id"].nunique()
    mixed = counts[counts > 1].index
    labels = sorted(
        f"{row.arch} on {row.task} (L={row.seq_len}, lr={row.lr:g}, seed {row.seed})"
        for row in frame[frame["spec_id"].isin(mixed)].drop_duplicates("spec_id").itertuples()
    )
    return frame[frame["run_id"].isin(set(newest))].reset_index(drop=True), labels


def _metrics_columns(metrics: dict[str, Any], seq_len: int | None) -> dict[str, Any]:
    cols: dict[str, Any] = {
        key: metrics.get(key)
        for key in ("params_total", "params_active", "steps_run", "stopped_early", "train_loss")
    }
    val = metrics.get("val") or {}
    cols.update({f"val_{s}": val.get(s) for s in SCORES})
    cols["val_curve"] = metrics.get("val_curve")  # list of {"step", "accuracy", ...}
    test = metrics.get("test") or {}
    at_train = test.get(str(seq_len)) or {}
    cols.update({f"test_{s}": at_train.get(s) for s in SCORES})
    for length in sorted(test, key=int):
        cols.update({f"test_{s}@{length}": test[length].get(s) for s in SCORES})
    measured = [int(k) for k, v in test.items() if (v or {}).get("accuracy") is not None]
    cols["longest_len"] = max(measured) if measured else None  # lengths run out of memory: no
    longest = test.get(str(cols["longest_len"])) or {}
    cols["test_accuracy_longest"] = longest.get("accuracy")
    cols.update(_moe_columns(metrics.get("moe")))
    paths = metrics.get("kernel_paths") or {}
    cols["kernel_paths"] = paths or None
    cols["kernel_path"] = ",".join(sorted(set(paths.values()))) or None
    return cols


def _moe_columns(moe: dict[str, Any] | None) -> dict[str, Any]:
    """Means over MoE layers; `moe_load_max` is the busiest expert's share × n_experts
    (1.0 = perfectly balanced, n_experts = everything on one expert)."""
    if not moe:
        return {"moe": None, "moe_balance_loss": None, "moe_dropped_fraction": None,
                "moe_load_max": None}  # fmt: skip
    layers = list(moe.values())

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    return {
        "moe": moe,
        "moe_balance_loss": mean([layer["balance_loss"] for layer in layers]),
        "moe_dropped_fraction": mean([layer["dropped_fraction"] for layer in layers]),
        "moe_load_max": mean([max(layer["load"]) * layer["n_experts"] for layer in layers]),
    }


def _hashable(value: Any) -> Any:
    """A knob or override value usable as a group key: lists become tuples, tables their
    canonical JSON text (a record may hold either)."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return canonical_json(value)
    return value


# -- best learning rate ----------------------------------------------------------------------------
def group_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that define "the same experiment except for lr and seed"."""
    spec_like = [c for c in SPEC_COLUMNS if c not in ("lr", "seed")]
    spec_like += sorted(c for c in frame.columns if c.startswith(tuple(TABLES.values())))
    # A field no record states (records written before it existed) groups nothing.
    return [c for c in spec_like if c in frame.columns and frame[c].notna().any()]


def best_lr_table(frame: pd.DataFrame, metric: str = "val_accuracy") -> pd.DataFrame:
    """Per group (spec except lr and seed): the lr whose mean validation `metric` over seeds
    is highest. Runs not ok count as 0, so a diverging lr never wins; ties go to the lower
    mean validation loss, then to the smaller lr. Never looks at test columns."""
    if frame.empty:
        return pd.DataFrame(columns=[*group_columns(frame), "lr", f"mean_{metric}", "n_seeds"])
    keys = group_columns(frame)
    scored = frame.assign(
        _score=frame[metric].where(frame["status"] == "ok").astype(float).fillna(0.0),
        _loss=frame["val_loss"].where(frame["status"] == "ok").astype(float).fillna(float("inf")),
    )
    per_lr = (
        scored.groupby([*keys, "lr"], dropna=False)
        .agg(_score=("_score", "mean"), _loss=("_loss", "mean"), n_seeds=("seed", "nunique"))
        .reset_index()
        .sort_values(["_score", "_loss", "lr"], ascending=[False, True, True], kind="stable")
    )
    best = per_lr.groupby(keys, dropna=False, sort=False).head(1)
    best = best.rename(columns={"_score": f"mean_{metric}"}).drop(columns="_loss")
    return best.reset_index(drop=True)


def select_best_lr(frame: pd.DataFrame, metric: str = "val_accuracy") -> pd.DataFrame:
    """The rows (every seed) of each group's best lr, as chosen by `best_lr_table`."""
    if frame.empty:
        return frame
    table = best_lr_table(frame, metric)[[*group_columns(frame), "lr"]]
    keys = [*group_columns(frame), "lr"]
    chosen = frame.merge(table, on=keys, how="inner")
    return chosen.reset_index(drop=True)


def length_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Long format of the test scores: one row per (run, tested length), with `ratio` =
    length / training length, for extrapolation plots."""
    rows = []
    for _, run in frame.iterrows():
        for col in frame.columns:
            if col.startswith("test_accuracy@") and pd.notna(run[col]):
                length = int(col.split("@")[1])
                rows.append(
                    {
                        "run_id": run["run_id"],
                        "length": length,
                        "ratio": length / run["seq_len"],
                        **{s: run.get(f"test_{s}@{length}") for s in SCORES},
                    }
                )
    long = pd.DataFrame(rows, columns=["run_id", "length", "ratio", *SCORES])
    return long.merge(frame.drop(columns=[c for c in frame if "@" in c]), on="run_id")
