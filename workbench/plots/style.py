"""Shared figure style: one colour per class everywhere, and stage colours for the pipeline."""

from __future__ import annotations

CLASS_CMAP = "tab10"  # class i is drawn in CLASS_CMAP(i % 10) in every figure
STAGE_COLOURS = {  # pipeline stages in figures 1-3
    "identify": "#4C72B0",
    "design": "#55A868",
    "data": "#C44E52",
    "train": "#8172B2",
    "deploy": "#CCB974",
    "planning": "#64B5CD",
    "qa": "#DD8452",
}
DONE_EDGE = "#2ca02c"  # outline of a stage whose artifact exists in the run directory


def class_colour(i: int) -> tuple[float, float, float, float]:
    """The colour of class `i` (RGBA), the same in every figure."""
    from matplotlib import colormaps

    return colormaps[CLASS_CMAP](int(i) % 10)
