"""Profile records as pandas DataFrames (one row per point, one row per fitted exponent).

Neutral ground (`seqbench.harness.common`): the profiler prints these as its summary and the
report reads them, and neither imports the other.

The report reads these instead of walking the JSON itself; the CLI prints them as its summary.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

# The length a point of each mode is measured at (its x in the scaling fits).
LENGTH_FIELD = {"train": "seq_len", "decode": "context", "counted": "seq_len"}

POINT_METRICS = {
    "step_s": "step_s",
    "step_cpu_s": "step_cpu_s",
    "tokens_per_s": "tokens_per_s",
    "cpu_rss_delta": "memory_bytes.cpu_rss_delta",
    "saved_activations": "memory_bytes.saved_activations",
    "cuda_peak_allocated": "memory_bytes.cuda_peak_allocated",
    "flops_per_token": "flops_per_token",
    "prefill_s": "prefill_s",
    "decode_s_per_token": "decode_s_per_token",
    "decode_cpu_s_per_token": "decode_cpu_s_per_token",
    "state_bytes": "state_bytes",
    "params_total": "parameters.total",
    "params_active": "parameters.active",
}


def metric(metrics: dict[str, Any], path: str) -> float | None:
    """A dotted path into a record's metrics ("memory_bytes.cpu_rss_delta"), numbers only."""
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def extra_overrides(spec: dict[str, Any]) -> str:
    """Overrides other than width and attention impl (they have their own columns)."""
    skip = ("d_model", "attention.impl")
    return " ".join(f"{k}={v}" for k, v in spec["overrides"].items() if k not in skip)


def point_row(record: dict[str, Any]) -> dict[str, Any]:
    spec, metrics = record["spec"], record["metrics"]
    row: dict[str, Any] = {
        "run_id": record["run_id"],
        "mode": spec["mode"],
        "method": "counted-meta" if spec["mode"] == "counted" else "measured",
        "arch": spec["arch"],
        "impl": spec.get("impl"),
        "length": spec[LENGTH_FIELD[spec["mode"]]],
        "batch": spec["batch"],
        "d_model": spec["d_model"],
        "n_layers": spec["n_layers"],
        "overrides": extra_overrides(spec),
        "device": spec["device"],
        "status": record["status"],
        "reason": record["reason"],
    }
    for column, path in POINT_METRICS.items():
        row[column] = metric(metrics, path)
    if spec["mode"] == "counted":  # counted saved bytes are not nested under memory_bytes
        row["saved_activations"] = metric(metrics, "saved_activations")
    return row


def profile_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per profile point (fit records left out)."""
    rows = [point_row(r) for r in records if r["kind"] == "profile" and r["spec"]["mode"] != "fit"]
    return pd.DataFrame(rows)


def fits_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (series, quantity, range) exponent with its 95% interval."""
    rows = []
    for record in records:
        spec = record["spec"]
        if record["kind"] != "profile" or spec["mode"] != "fit":
            continue
        series = spec["series"]
        for quantity, entry in record["metrics"]["fits"].items():
            for range_name in ("all", "long"):
                fit = entry.get(range_name)
                if fit is None:
                    continue
                rows.append(
                    {
                        "mode": spec["of_mode"],
                        "arch": series["arch"],
                        "impl": series.get("impl"),
                        "overrides": extra_overrides(series),
                        "x": spec["x"],
                        "quantity": quantity,
                        "range": range_name,
                        **{k: fit[k] for k in ("slope", "ci_low", "ci_high", "r2", "n_points")},
                        "x_min": fit["x_min"],
                        "x_max": fit["x_max"],
                    }
                )
    return pd.DataFrame(rows)
