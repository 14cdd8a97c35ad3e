"""Everything the report reads, loaded once from a folder of records.

Run records become the harness's DataFrame (`seqbench.harness.store`, one row per run) and the best
learning rate per configuration is picked there, on validation. Profile records become a
second frame here, one row per measured point, with the few fields the efficiency figures
and claims need pulled out of the spec (mode, length, attention impl, heads, experts).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from seqbench.errors import UserError
from seqbench.harness.common.profile_frame import LENGTH_FIELD, POINT_METRICS, point_row
from seqbench.harness.records import Scan, canonical_json, runs_dir, scan_records
from seqbench.harness.store import (
    latest_definitions,
    length_table,
    records_frame,
    select_best_lr,
)


@dataclass
class ReportData:
    """The records of one folder, as frames (see module docstring)."""

    folder: Path
    records: list[dict[str, Any]]  # every valid record, both kinds, as read
    runs: pd.DataFrame  # every run record (any status)
    best: pd.DataFrame  # runs of the lr picked on validation per configuration (any status)
    lengths: pd.DataFrame  # ok runs of `best`, one row per (run, tested length)
    profile: pd.DataFrame  # one row per profile point (any status)
    # configurations recorded under more than one definition (only the newest is used)
    superseded: list[str] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, reason) not read

    @property
    def best_ok(self) -> pd.DataFrame:
        return self.best[self.best["status"] == "ok"] if not self.best.empty else self.best


def load_folder(folder: str | os.PathLike) -> Scan:
    """Every valid record of DIR/runs/, and every file skipped with its reason; a missing
    folder, or one where nothing valid remains, is a one-line error (shared by `seqbench
    report` and `seqbench compare`)."""
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"{folder}: no such folder")
    scan = scan_records(path)
    if not scan.records and scan.skipped:
        first, reason = scan.skipped[0]
        more = f" and {len(scan.skipped) - 1} more" if len(scan.skipped) > 1 else ""
        raise UserError(
            f"{folder}: no valid records in {runs_dir(path)}: skipped {first.name} ({reason}){more}"
        )
    if not scan.records:
        raise UserError(
            f"{folder}: no records in {runs_dir(path)} (write some with `seqbench run` or "
            "`seqbench profile`)"
        )
    return scan


SKIPPED_SHOWN = 10  # files named one per line; the rest are counted


def skipped_lines(skipped: list[tuple[Path, str]], limit: int = SKIPPED_SHOWN) -> list[str]:
    """One warning line per skipped file up to `limit`, then one line counting the rest."""
    lines = [f"warning: skipped {path}: {reason}" for path, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"warning: skipped {len(skipped) - limit} more files ({len(skipped)} in all)")
    return lines


def load(folder: str | os.PathLike) -> ReportData:
    """Read DIR/runs/*.json into the frames the report draws from."""
    path = Path(folder)
    scan = load_folder(path)
    records = scan.records
    runs = records_frame([r for r in records if r["kind"] == "run"])
    runs, superseded = latest_definitions(runs)
    runs = with_model_columns(runs, records)
    best = select_best_lr(runs) if not runs.empty else runs
    ok = best[best["status"] == "ok"] if not best.empty else best
    lengths = length_table(ok) if not ok.empty else pd.DataFrame()
    profile = profile_frame(records)
    return ReportData(path, records, runs, best, lengths, profile, superseded, scan.skipped)


# -- model description (both kinds) ------------------------------------------------------------
MODEL_COLUMNS = (
    "layer_pattern",
    "family",
    "ffn",
    "n_heads",
    "n_kv_heads",
    "n_experts",
    "top_k",
    "model_key",
)


def model_fields(model: dict[str, Any] | None, family: str | None = None) -> dict[str, Any]:
    """What the claims need to know about a model, from its recorded config (ModelConfig).
    `family`: as the record states it; otherwise from the registered families of its mixers."""
    model = model or {}
    pattern = tuple(model.get("layer_pattern") or ())
    attention = (model.get("mixer_kwargs") or {}).get("attention") or {}
    ffn_kwargs = model.get("ffn_kwargs") or {}
    families = {mixer_family(name) for name in pattern}
    if family is None:
        family = families.pop() if len(families) == 1 else ("hybrid" if families else None)
    return {
        "layer_pattern": pattern,
        "family": family,
        "ffn": model.get("ffn"),
        "n_heads": attention.get("n_heads"),
        "n_kv_heads": attention.get("n_kv_heads", attention.get("n_heads")),
        "n_experts": ffn_kwargs.get("n_experts"),
        "top_k": ffn_kwargs.get("top_k"),
        "model_key": model_key(model),
    }


def model_key(model: dict[str, Any]) -> str:
    """The model config with its kv-head count left out: equal keys mean "the same model but
    for grouped-query attention", the comparison the GQA claim needs."""
    plain = json.loads(json.dumps(model, default=str))
    attention = (plain.get("mixer_kwargs") or {}).get("attention")
    if isinstance(attention, dict):
        attention.pop("n_kv_heads", None)
    return canonical_json(plain)


@cache
def mixer_family(name: str) -> str | None:
    """The family of a sequence mixer ("attention", "ssm", "linear-recurrence"), as registered;
    for profile points, whose records do not state it. None for a name this installation
    cannot resolve (e.g. an uninstalled plugin)."""
    try:
        from seqbench.architectures import MIXERS

        return MIXERS.meta(name).get("family")
    except Exception:  # unknown name, or a plugin that fails to import
        return None


def with_model_columns(runs: pd.DataFrame, records: list[dict[str, Any]]) -> pd.DataFrame:
    """The run frame with MODEL_COLUMNS taken from each record's `definition` (its resolved
    model config and family)."""
    if runs.empty:
        return runs.assign(**{c: None for c in MODEL_COLUMNS})
    by_id = {}
    for r in records:
        if r["kind"] == "run":
            definition = r.get("definition") or {}
            by_id[r["run_id"]] = model_fields(definition.get("model"), definition.get("family"))
    extra = pd.DataFrame.from_dict(by_id, orient="index")[list(MODEL_COLUMNS)]
    runs = runs.drop(columns=[c for c in MODEL_COLUMNS if c in runs.columns])
    return runs.merge(extra, left_on="run_id", right_index=True, how="left")


# -- profile records ---------------------------------------------------------------------------
def is_point(record: dict[str, Any]) -> bool:
    """A measured or counted profile point (not one of the profiler's derived fit records)."""
    return record["kind"] == "profile" and record["spec"].get("mode") in LENGTH_FIELD


def profile_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per profile point: the profiler's own columns
    (`seqbench.harness.common.profile_frame`) plus what the report adds (model family, heads,
    experts, FLOPs per step, decode tokens/s, a series label)."""
    rows = []
    for record in records:
        if not is_point(record):
            continue
        try:
            row = point_row(record)
        except (KeyError, TypeError):  # a record of another schema version: not a point we know
            continue
        spec = record["spec"]
        row.update(model_fields(spec.get("model")), dtype=spec.get("dtype"))
        row["prefill_cpu_s"] = (record.get("metrics") or {}).get("prefill_cpu_s")
        row["flops_per_step"] = _times(row["flops_per_token"], row["batch"] * row["length"])
        row["decode_tokens_per_s"] = _times(
            1 / row["decode_s_per_token"] if row["decode_s_per_token"] else None, row["batch"]
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=PROFILE_COLUMNS)
    frame["series"] = [series_label(r) for r in frame.itertuples()]
    for column, prefix in (("d_model", "d="), ("batch", "batch ")):
        if frame[column].nunique() > 1:  # name the size only where sizes differ
            frame["series"] += frame[column].map(lambda v, p=prefix: f" {p}{v}")
    return frame


# Columns of an empty profile frame, so that checks can filter it like a full one.
PROFILE_COLUMNS = [
    *("run_id", "mode", "method", "arch", "impl", "length", "batch", "d_model", "n_layers"),
    *("overrides", "device", "status", "reason", *POINT_METRICS, *MODEL_COLUMNS, "dtype"),
    *("prefill_cpu_s", "flops_per_step", "decode_tokens_per_s", "series"),
]


def series_label(row: Any) -> str:
    """How a profiled model is named in figures: its arch, its attention impl when not the
    default, and other overrides (widths are appended by `profile_frame` where they differ),
    so two variants of one arch are two lines."""
    label = str(row.arch)
    if isinstance(row.impl, str) and row.impl != "sdpa":
        label += f" ({row.impl})"
    return label + (
        f" [{row.overrides}]" if isinstance(row.overrides, str) and row.overrides else ""
    )


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def spec_label(spec: dict[str, Any], kind: str) -> str:
    """A short human name of a spec, e.g. 'mha on mqar, L=64, d=64, lr=0.003, seed 0' (fields
    the spec lacks are left out)."""
    if kind == "run":
        head = f"{spec.get('arch')} on {spec.get('task')}"
        fields = (("seq_len", "L={}"), ("d_model", "d={}"), ("lr", "lr={}"), ("seed", "seed {}"))
    else:
        head = f"{spec.get('mode')} {spec.get('arch')}"
        fields = (
            ("seq_len", "L={}"),
            ("context", "context {}"),
            ("d_model", "d={}"),
            ("batch", "batch {}"),
            ("impl", "impl {}"),
        )
    parts = [head] + [form.format(spec[k]) for k, form in fields if spec.get(k) is not None]
    return ", ".join(parts)
