"""Sweep figure: one bar per grid point for the chosen metric; failed points marked."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from workbench.plots.style import class_colour


def plot_sweep(
    rows: list[dict[str, Any]], parameters: list[str], *, metric: str, title: str = "Sweep"
) -> Figure:
    """Bars of `metric` per point (labelled by its parameter values); failed points say so."""
    fig = Figure(figsize=(max(5.0, 1.1 * len(rows) + 2), 3.6))
    ax = fig.subplots()
    labels = ["\n".join(f"{p}={row.get(p)}" for p in parameters) for row in rows]
    values = [row.get(metric) if row.get("status") == "ok" else 0.0 for row in rows]
    bars = ax.bar(range(len(rows)), [v or 0.0 for v in values], color=class_colour(0))
    for bar, row, value in zip(bars, rows, values, strict=True):
        if row.get("status") != "ok":
            bar.set_hatch("//")
            ax.annotate("failed", (bar.get_x() + bar.get_width() / 2, 0), ha="center", va="bottom")
        elif value is not None:
            ax.annotate(
                f"{value:.3f}",
                (bar.get_x() + bar.get_width() / 2, value),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_xlabel("grid point")
    ax.set_ylabel(metric)
    ax.set_title(title)
    fig.tight_layout()
    return fig
