"""Sweep figure: one bar per grid point for the validation metric that chose the winner;
the winner and failed points marked."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from workbench.plots.style import class_colour


def plot_sweep(
    rows: list[dict[str, Any]],
    parameters: list[str],
    *,
    metric: str,
    higher_is_better: bool | None = None,
    winner: int | None = None,
    title: str = "Sweep",
) -> Figure:
    """Bars of `metric` per point (labelled by its parameter values); the row at position
    `winner` (chosen by `metric`, a validation metric) is highlighted; failed points say so."""
    fig = Figure(figsize=(max(5.0, 1.1 * len(rows) + 2), 3.6))
    ax = fig.subplots()
    labels = ["\n".join(f"{p}={row.get(p)}" for p in parameters) for row in rows]
    values = [row.get(metric) if row.get("status") == "ok" else 0.0 for row in rows]
    colours = [class_colour(2 if i == winner else 0) for i in range(len(rows))]
    bars = ax.bar(range(len(rows)), [v or 0.0 for v in values], color=colours)
    for i, (bar, row, value) in enumerate(zip(bars, rows, values, strict=True)):
        x = bar.get_x() + bar.get_width() / 2
        if row.get("status") != "ok":
            bar.set_hatch("//")
            ax.annotate("failed", (x, 0), ha="center", va="bottom")
        elif value is not None:
            text = f"{value:.3f}" + ("\nwinner" if i == winner else "")
            ax.annotate(text, (x, value), ha="center", va="bottom", fontsize=8)
    ax.margins(y=0.2)  # room for the value and "winner" above the bars
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_xlabel("grid point")
    if higher_is_better is None or winner is None:
        ax.set_ylabel(metric)
        ax.set_title(f"{title}\nno validation metric, no winner")
    else:
        better = "higher" if higher_is_better else "lower"
        ax.set_ylabel(f"{metric} (validation, {better} is better)")
        ax.set_title(f"{title}\nwinner: point {winner}, chosen by {metric}")
    fig.tight_layout()
    return fig
