"""Efficiency figures from profile records: time, memory, decode state, throughput, FLOPs,
and MoE expert load (the last from the run records' router statistics).

Scaling panels are log-log with the fitted exponent in the legend (fitted over the longest
half of the lengths, the same fit the claims use). Counted points (meta device: nothing
allocated, nothing timed) are drawn dashed with hollow markers so they are never mistaken
for measurements.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from seqbench.harness.report import plotting
from seqbench.harness.report.document import Block, Skipped
from seqbench.harness.report.stats import long_fit, slope_text

MEMORY_LABELS = {
    "saved_activations": "activations saved for backward",
    "cpu_rss_delta": "CPU peak RSS − baseline",
    "cuda_peak_allocated": "CUDA peak allocated",
}
# Engineering-notation units of the y axes (tick labels like "10 MB", "2 ms").
UNITS = {
    "step_s": "s",
    "step_cpu_s": "s",
    "state_bytes": "B",
    "tokens_per_s": "",
    "decode_tokens_per_s": "",
    "flops_per_token": "",
    **{column: "B" for column in MEMORY_LABELS},
}
NO_PROFILE = "no profile records in this folder (run `seqbench profile … --out DIR`)"


def efficiency_figures(profile: pd.DataFrame, runs_ok: pd.DataFrame, folder: Path) -> list[Block]:
    ok = profile[profile["status"] == "ok"] if not profile.empty else profile
    if ok.empty:
        titles = [
            "Training time vs length",
            "Memory vs length",
            "Decode state vs context",
            "Throughput",
            "FLOPs per token",
        ]
        blocks: list[Block] = [Skipped(t, NO_PROFILE) for t in titles]
    else:
        colours = plotting.palette(ok["series"])
        blocks = [
            time_figure(ok, folder, colours),
            memory_figure(ok, folder, colours),
            state_figure(ok, folder, colours),
            throughput_figure(ok, folder, colours),
            flops_figure(ok, folder, colours),
        ]
    blocks.append(expert_load_figure(runs_ok, folder))
    return blocks


def loglog_panel(ax, frame: pd.DataFrame, y: str, colours: dict, ylabel: str) -> None:
    """One line per series (and per measured/counted), slope of the long range in the legend."""
    for (series, method), points in frame.groupby(["series", "method"], sort=True):
        points = points.dropna(subset=[y]).sort_values("length")
        points = points[points[y] > 0]
        if points["length"].nunique() < 2:
            continue  # a single length is no curve (e.g. an expert-count variant)
        counted = method != "measured"
        fit = long_fit(points["length"], points[y])
        label = f"{series}{' (counted)' if counted else ''}: {slope_text(fit)}"
        ax.plot(
            points["length"],
            points[y],
            marker="o",
            color=colours[series],
            label=label,
            linestyle="--" if counted else "-",
            markerfacecolor="none" if counted else None,
        )
    ax.set(xscale="log", yscale="log", xlabel="sequence length (tokens)", ylabel=ylabel)
    plotting.plain_log_ticks(ax, frame["length"], UNITS.get(y, ""))
    plotting.legend_right(ax)


def _panels(frame_by_panel: list[tuple[str, pd.DataFrame, str, str]], colours: dict):
    """A figure of log-log panels: (title, frame, y column, y label) each."""
    fig, axes = plotting.grid(len(frame_by_panel), width=6.0, height=3.6, max_cols=1)
    for ax, (title, frame, y, ylabel) in zip(axes, frame_by_panel, strict=True):
        loglog_panel(ax, frame, y, colours, ylabel)
        ax.set_title(title)
    return fig


def time_figure(ok: pd.DataFrame, folder: Path, colours: dict) -> Block:
    title = "Training time vs length"
    train = ok[(ok["mode"] == "train") & ok["step_s"].notna()]
    if train["length"].nunique() < 2:
        return Skipped(title, "fewer than two training lengths profiled")
    panels = [("wall time, forward + backward", train, "step_s", "seconds per step (median)")]
    if train["step_cpu_s"].notna().any():
        panels.append(("CPU time of the process", train, "step_cpu_s", "CPU seconds per step"))
    return plotting.save(
        _panels(panels, colours),
        folder,
        "time_vs_length",
        title,
        "Median time of one training step (forward + backward) against sequence length: wall "
        "time, and process CPU time where recorded (on a shared CPU it leaves out time spent "
        "waiting for a core); log-log; legend: fitted exponent over the longest half of the "
        "lengths [95% CI].",
    )


def memory_figure(ok: pd.DataFrame, folder: Path, colours: dict) -> Block:
    title = "Memory vs length"
    train = ok[ok["mode"].isin(["train", "counted"])]
    panels = [
        (label, train, column, "bytes")
        for column, label in MEMORY_LABELS.items()
        if column in train and train[column].notna().any() and train["length"].nunique() > 1
    ]
    if not panels:
        return Skipped(title, "no training-step memory measured at two or more lengths")
    return plotting.save(
        _panels(panels, colours),
        folder,
        "memory_vs_length",
        title,
        "Peak memory of a training step against length, one panel per measuring method (each "
        "names what it counts); log-log with fitted exponents. 'reference' is the explicit-"
        "softmax attention that materialises the L×L scores; plain names use the fused kernel.",
    )


def state_figure(ok: pd.DataFrame, folder: Path, colours: dict) -> Block:
    title = "Decode state vs context"
    state = ok[ok["mode"].isin(["decode", "counted"]) & ok["state_bytes"].notna()]
    if state["length"].nunique() < 2:
        return Skipped(title, "decode state bytes recorded at fewer than two context lengths")
    fig = _panels([("decode state", state, "state_bytes", "bytes")], colours)
    fig.axes[0].set_xlabel("context length (tokens)")
    return plotting.save(
        fig,
        folder,
        "state_vs_context",
        title,
        "Bytes of the decode state (read from the state tensors: KV cache for attention, the "
        "recurrent state for SSMs and LRU) after prefilling a context; exponent ≈ 1 means it "
        "grows with the context, ≈ 0 constant.",
    )


def throughput_figure(ok: pd.DataFrame, folder: Path, colours: dict) -> Block:
    title = "Throughput"
    panels = [
        (label, ok[(ok["mode"] == mode) & ok[column].notna()], column, "tokens / s")
        for mode, column, label in (
            ("train", "tokens_per_s", "training (forward + backward)"),
            ("decode", "decode_tokens_per_s", "decoding one token at a time"),
        )
    ]
    panels = [p for p in panels if not p[1].empty]
    if not panels:
        return Skipped(title, "no measured training or decode points")
    fig = _panels(panels, colours)
    if panels[-1][2] == "decode_tokens_per_s":
        fig.axes[-1].set_xlabel("context length (tokens)")
    return plotting.save(
        fig,
        folder,
        "throughput",
        title,
        "Tokens per second: training steps against sequence length, and single-token decoding "
        "against the context already in the state (medians of repeats after warm-up); log-log "
        "with fitted exponents.",
    )


def flops_figure(ok: pd.DataFrame, folder: Path, colours: dict) -> Block:
    title = "FLOPs per token"
    flops = ok[ok["mode"].isin(["train", "counted"]) & ok["flops_per_token"].notna()]
    if flops.empty:
        return Skipped(title, "no FLOP counts in the profile records")
    moe = flops[flops["n_experts"].notna()]
    with_experts = moe["n_experts"].nunique() > 1
    fig, axes = plotting.grid(2 if with_experts else 1, width=6.0, height=3.6, max_cols=1)
    loglog_panel(axes[0], flops, "flops_per_token", colours, "FLOPs per token")
    axes[0].set_title("training step")
    if with_experts:
        experts_panel(axes[1], moe)
    return plotting.save(
        fig,
        folder,
        "flops_per_token",
        title,
        "FLOPs of one training step per token, counted by torch's FLOP counter (not estimated); "
        "log-log with fitted exponents (per token: 0 means total compute linear in length, 1 "
        "quadratic). Below (when profiled): MoE FLOPs per token against the number of experts "
        "at fixed top-k.",
    )


def experts_panel(ax, moe: pd.DataFrame) -> None:
    for (top_k, length), points in moe.groupby(["top_k", "length"], sort=True):
        if points["n_experts"].nunique() < 2:
            continue
        points = points.sort_values("n_experts")
        ax.plot(
            points["n_experts"],
            points["flops_per_token"],
            marker="o",
            label=f"top-{int(top_k)}, L={int(length)}",
        )
    ax.set(
        xscale="log",
        xlabel="number of experts",
        ylabel="FLOPs per token",
        title="MoE: FLOPs per token vs experts",
    )
    ax.set_ylim(bottom=0)
    plotting.plain_log_ticks(ax, moe["n_experts"], "")
    plotting.legend_right(ax)


def expert_load_figure(runs_ok: pd.DataFrame, folder: Path) -> Block:
    title = "MoE expert load"
    moe = runs_ok[runs_ok["moe"].notna()] if "moe" in runs_ok else runs_ok.iloc[0:0]
    if moe.empty:
        return Skipped(title, "no ok run of a Mixture-of-Experts model recorded router statistics")
    groups = list(moe.groupby(["arch", "task"], sort=True))
    fig, axes = plotting.grid(len(groups), width=4.6, height=3.3)
    for ax, ((arch, task), runs) in zip(axes, groups, strict=True):
        layers = sorted(runs["moe"].iloc[0])
        n_experts = len(runs["moe"].iloc[0][layers[0]]["load"])
        width = 0.8 / len(layers)
        for i, layer in enumerate(layers):
            loads = np.array([stats[layer]["load"] for stats in runs["moe"]])  # (seeds, E)
            ax.bar(np.arange(n_experts) + i * width, loads.mean(axis=0), width, label=layer)
        ax.axhline(1.0 / n_experts, color="0.3", linestyle="--", linewidth=1, label="uniform")
        ax.set(title=f"{arch} · {task}", xlabel="expert", ylabel="share of routed tokens")
        ax.set_xticks(np.arange(n_experts) + 0.4 - width / 2, [str(e) for e in range(n_experts)])
        ax.legend(fontsize="x-small")
    return plotting.save(
        fig,
        folder,
        "moe_expert_load",
        title,
        "Share of routed token assignments per expert on the test data at the training length "
        "(mean over seeds, per MoE layer); dashed: a perfectly balanced router.",
    )
