"""Shared figure machinery: a headless backend, one style, stable colours, saving.

Why Agg: reports are built on servers and in CI without a display; selecting the backend
before pyplot is imported keeps matplotlib from probing for one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib import ticker
from matplotlib.figure import Figure as MplFigure

from seqbench.harness.report.document import Figure

DPI = 110
MAX_TICKS = 6


def style() -> None:
    sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)


def palette(names: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per name, assigned in sorted order so a name keeps its colour across figures."""
    ordered = sorted(set(names))
    colours = sns.color_palette("tab10" if len(ordered) <= 10 else "husl", len(ordered))
    return dict(zip(ordered, colours, strict=True))


def grid(n_panels: int, width: float = 4.6, height: float = 3.5, max_cols: int = 3):
    """A figure with `n_panels` axes in rows of at most `max_cols` (spare axes removed)."""
    cols = min(max_cols, n_panels)
    rows = -(-n_panels // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained"
    )
    flat = list(axes.flat)
    for ax in flat[n_panels:]:
        ax.remove()
    return fig, flat[:n_panels]


def plain_log_ticks(ax, lengths: Iterable[float], y_unit: str | None = None) -> None:
    """Log-axis ticks at the lengths actually used (when few) as plain numbers ("1024"), and
    engineering units on y ("10 MB") instead of mathtext powers: easier to read, cheaper to
    render."""
    used = sorted({float(x) for x in lengths if x and x > 0})
    if len(used) > 1:
        ax.xaxis.set_major_locator(ticker.FixedLocator(spaced_ticks(used)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: short_number(x)))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    if y_unit is not None:
        ax.yaxis.set_major_formatter(ticker.EngFormatter(unit=y_unit))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def spaced_ticks(used: list[float]) -> list[float]:
    """The used values to label on a log axis, at most about MAX_TICKS of them: each kept tick
    is a fixed factor above the last, so labels never collide however wide the range."""
    factor = max(1.5, (used[-1] / used[0]) ** (1 / MAX_TICKS))
    kept = [used[0]]
    for value in used[1:]:
        if value >= kept[-1] * factor:
            kept.append(value)
    return kept


def short_number(x: float) -> str:
    """Tick label of a length: 512, 1k (= 1024), 64k, 1M (= 2^20); other values as %g."""
    for size, suffix in ((1 << 20, "M"), (1 << 10, "k")):
        if x >= size and float(x) % (size // 4) == 0:
            return f"{x / size:g}{suffix}"
    return f"{x:g}"


def legend_right(ax) -> None:
    """Legend outside the axes on the right, so long labels (with slopes) never hide data;
    none for axes without a labelled line (every point of a figure left out as unplaceable)."""
    if not ax.get_legend_handles_labels()[0]:
        return
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def save(fig: MplFigure, folder: Path, name: str, title: str, caption: str) -> Figure:
    """Write figures/<name>.png and describe it for the document."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Figure(path, title, caption)


def close_all() -> None:
    plt.close("all")
