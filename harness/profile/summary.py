"""The sweep's summary tables in human units (built with pandas from the records)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from seqbench.harness.common.profile_frame import fits_frame, profile_frame
from seqbench.harness.profile.points import point_label

MB = 1e6
# column title -> (source column, scale divisor, format)
COLUMNS = {
    "train": {
        "ms/step": ("step_s", 1e-3, "{:.1f}"),
        "cpu ms/step": ("step_cpu_s", 1e-3, "{:.1f}"),
        "tok/s": ("tokens_per_s", 1, "{:,.0f}"),
        "rss MB": ("cpu_rss_delta", MB, "{:.1f}"),
        "saved MB": ("saved_activations", MB, "{:.1f}"),
        "cuda MB": ("cuda_peak_allocated", MB, "{:.1f}"),
        "MFLOP/tok": ("flops_per_token", 1e6, "{:.2f}"),
        "active/total params": (None, 1, ""),
    },
    "decode": {
        "prefill s": ("prefill_s", 1, "{:.3f}"),
        "ms/token": ("decode_s_per_token", 1e-3, "{:.2f}"),
        "cpu ms/token": ("decode_cpu_s_per_token", 1e-3, "{:.2f}"),
        "state KiB": ("state_bytes", 1024, "{:,.1f}"),
    },
    "counted": {
        "MFLOP/tok": ("flops_per_token", 1e6, "{:.2f}"),
        "saved MB": ("saved_activations", MB, "{:,.1f}"),
        "state KiB": ("state_bytes", 1024, "{:,.1f}"),
    },
}
KEYS = ["arch", "impl", "length", "batch", "d_model", "overrides", "status"]


def _fmt(value: Any, scale: float, fmt: str) -> str:
    if value is None or pd.isna(value):
        return "-"
    return fmt.format(value / scale)


def points_table(records: list[dict[str, Any]], mode: str) -> str | None:
    frame = profile_frame(records)
    if frame.empty or not (frame["mode"] == mode).any():
        return None
    frame = frame[frame["mode"] == mode]
    table = frame[KEYS].copy()
    table["impl"] = table["impl"].fillna("-")
    for title, (source, scale, fmt) in COLUMNS[mode].items():
        if source is None:
            table[title] = [
                f"{a:,.0f}/{t:,.0f}" if pd.notna(a) else "-"
                for a, t in zip(frame["params_active"], frame["params_total"], strict=True)
            ]
        elif frame[source].notna().any():
            table[title] = [_fmt(v, scale, fmt) for v in frame[source]]
    if mode == "train" and frame["cpu_rss_delta"].notna().any():
        ratio = frame["cpu_rss_delta"] / frame["saved_activations"]
        table["rss/saved"] = [_fmt(v, 1, "{:.2f}") for v in ratio]
    table = table.rename(columns={"length": "ctx" if mode == "decode" else "L"})
    return table.to_string(index=False)


def fits_table(fit_records: list[dict[str, Any]]) -> str | None:
    frame = fits_frame(fit_records)
    if frame.empty:
        return None
    frame["impl"] = frame["impl"].fillna("-")
    keys = ["mode", "arch", "impl", "overrides", "x", "quantity", "range"]
    frame = frame.sort_values(keys, kind="stable")
    frame["slope [95% CI]"] = [
        f"{s:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if pd.notna(lo) else "")
        for s, lo, hi in zip(frame["slope"], frame["ci_low"], frame["ci_high"], strict=True)
    ]
    frame["x range"] = [
        f"{a:,.0f}-{b:,.0f}" for a, b in zip(frame["x_min"], frame["x_max"], strict=True)
    ]
    return frame[[*keys, "x range", "n_points", "slope [95% CI]"]].to_string(index=False)


def failures_list(point_records: list[dict[str, Any]]) -> str | None:
    """One line per point that is not ok: what, status, why."""
    lines = [
        f"  {point_label(r['spec'])}: {r['status']} — {(r['reason'] or '')[:160]}"
        for r in point_records
        if r["status"] != "ok"
    ]
    return "\n".join(lines) if lines else None


def summary(point_records: list[dict[str, Any]], fit_records: list[dict[str, Any]]) -> str:
    titles = {
        "train": "Training step (forward+backward), measured",
        "decode": "Inference: prefill and decode, measured",
        "counted": "On paper: counted on the meta device (not measured)",
    }
    parts = []
    for mode, title in titles.items():
        table = points_table(point_records, mode)
        if table:
            parts.append(f"{title}\n{table}")
    table = fits_table(fit_records)
    if table:
        parts.append(f"Log-log scaling exponents (slope of log y on log x)\n{table}")
    failed = failures_list(point_records)
    if failed:
        parts.append(f"Points not ok\n{failed}")
    return "\n\n".join(parts)
