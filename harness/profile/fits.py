"""Scaling fits over the points of a store, written back as records of mode "fit".

A series is the set of ok point records that differ only in one swept variable x (the length,
d_model, or an override such as ffn.n_experts). For each series with at least two distinct x,
every quantity of its mode gets a log-log fit over all points and over the longest half
("long"), so the report can read exponents and their intervals straight from records.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from seqbench.harness.common.profile_frame import LENGTH_FIELD, metric
from seqbench.harness.common.scaling import fit_loglog, long_range
from seqbench.harness.profile.points import series_key, series_spec, x_value
from seqbench.harness.records import spec_hash

QUANTITIES = {
    "train": (
        "step_s",
        "step_cpu_s",
        "memory_bytes.cpu_rss_delta",
        "memory_bytes.saved_activations",
        "memory_bytes.cuda_peak_allocated",
        "flops_per_token",
        "flops_per_step",
    ),
    "decode": (
        "state_bytes",
        "decode_s_per_token",
        "decode_cpu_s_per_token",
        "prefill_s",
        "prefill_cpu_s",
    ),
    "counted": ("state_bytes", "saved_activations", "flops_per_token", "flops_per_step"),
}


def fit_series(points: list[tuple[float, dict[str, Any]]], mode: str) -> dict[str, Any]:
    """{quantity: {"all": fit, "long": fit or None, "points": [[x, y], ...]}} for one series."""
    fits: dict[str, Any] = {}
    for quantity in QUANTITIES[mode]:
        pts = sorted(
            (x, y) for x, metrics in points if (y := metric(metrics, quantity)) is not None
        )
        if len({x for x, _ in pts}) < 2:
            continue
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        entry: dict[str, Any] = {"points": [list(p) for p in pts], "all": None, "long": None}
        fit = fit_loglog(xs, ys)
        entry["all"] = fit.to_dict() if fit else None
        long_xs = set(long_range(xs))
        if len(long_xs) < len(set(xs)):
            long_fit = fit_loglog(*zip(*[p for p in pts if p[0] in long_xs], strict=True))
            entry["long"] = long_fit.to_dict() if long_fit else None
        fits[quantity] = entry
    return fits


def fit_records(records: list[dict[str, Any]], axes: list[str]) -> list[tuple[dict, dict]]:
    """(spec, metrics) of one fit record per series along each axis (length always included)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        spec = record["spec"]
        if record["status"] != "ok" or spec.get("mode") not in QUANTITIES:
            continue
        for x in [LENGTH_FIELD[spec["mode"]], *axes]:
            if x_value(spec, x) is not None:
                groups[(x, series_key(spec, x))].append(record)
    out = []
    for (x, _), members in sorted(groups.items()):
        mode = members[0]["spec"]["mode"]
        points = [(float(x_value(r["spec"], x)), r["metrics"]) for r in members]
        if len({p[0] for p in points}) < 2:
            continue
        spec = {
            "mode": "fit",
            "of_mode": mode,
            "x": x,
            "series": series_spec(members[0]["spec"], x),
        }
        metrics = {
            "fits": fit_series(points, mode),
            "x_values": sorted({p[0] for p in points}),
            "point_ids": sorted(r["run_id"] for r in members),
        }
        out.append((spec, metrics))
    return out


def fit_id(spec: dict[str, Any]) -> str:
    return spec_hash("profile", spec)
