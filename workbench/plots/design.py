"""The architecture diagram of stage 2: one box per block, coloured by section, drawn top-down.

Drawn from `workbench.design.summarize` (pure Python, no Keras), so it can be redrawn live as a
widget changes the spec. Boxes carry a `gid` ("block:<label>", "output:<name>") for tests.
"""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING

from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from workbench.design import NAMED_OUTPUTS, ModelSpec, human, summarize

if TYPE_CHECKING:
    from workbench.identify import ProblemCard

SECTION_COLOURS = {"input": "#8c8c8c", "stem": "#4C72B0", "learner": "#55A868", "task": "#C44E52"}
NAMED_EDGE = "#E6A100"  # outline of the boxes that end in a named, reusable output
INK = "#222222"
STEP = 0.46  # inches from one box to the next
BOX_H = 0.32  # box height in inches
BOX_X, BOX_W = 1.15, 4.6  # box position and width in inches
WIDTH = 8.6  # figure width in inches


def plot_architecture(spec: ModelSpec, card: ProblemCard, *, title: str | None = None) -> Figure:
    """The spec's blocks from input (top) to head (bottom), with output shapes and costs."""
    summary = summarize(spec, card)
    blocks = [(label, list(rows)) for label, rows in groupby(summary.rows, key=lambda r: r.block)]
    height = len(blocks) * STEP + 1.5
    fig = Figure(figsize=(WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    shape = (
        f"{card.input_shape[0]} features"
        if len(card.input_shape) == 1
        else "x".join(map(str, card.input_shape)) + " input"
    )
    ax.text(
        0.15,
        height - 0.2,
        title or f"Model {spec.name!r} for {card.dataset or 'the card'} ({shape})",
        fontsize=13,
        fontweight="bold",
        va="top",
    )
    ax.text(
        0.15,
        height - 0.55,
        f"{summary.params:,} parameters, {human(summary.macs)} multiply-adds (MACs) = "
        f"{human(summary.flops)} FLOPs per example (FLOPs = 2 x MACs)",
        fontsize=9,
        va="top",
        color=INK,
    )
    top = height - 0.95  # y of the first box's top
    ys = [top - i * STEP - BOX_H for i in range(len(blocks))]
    for (label, rows), y in zip(blocks, ys, strict=True):
        section, last = rows[0].section, rows[-1]
        named = next((r.name for r in rows if r.name in NAMED_OUTPUTS), None)
        colour = SECTION_COLOURS[section]
        ax.add_patch(
            FancyBboxPatch(
                (BOX_X, y),
                BOX_W,
                BOX_H,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor=to_rgba(colour, 0.25 if named is None else 0.4),
                edgecolor=NAMED_EDGE if named else colour,
                linewidth=3 if named else 1.2,
                gid=f"output:{named}" if named else f"block:{label}",
            )
        )
        mid = y + BOX_H / 2
        weight = "bold" if named else "normal"
        ax.text(BOX_X + 0.1, mid, label, va="center", fontsize=9, fontweight=weight, color=INK)
        out = "x".join(map(str, last.output_shape))
        ax.text(BOX_X + BOX_W - 0.1, mid, out, va="center", ha="right", fontsize=9, color=INK)
        cost = (
            f"{human(sum(r.params for r in rows))} params, {human(sum(r.macs for r in rows))} MACs"
        )
        ax.text(BOX_X + BOX_W + 0.15, mid, cost, va="center", fontsize=8, color="#555555")
        if any(r.kind == "Add" for r in rows):  # the residual shortcut around the block
            ax.add_patch(
                FancyArrowPatch(
                    (BOX_X, y + BOX_H - 0.03),
                    (BOX_X, y + 0.03),
                    connectionstyle="arc3,rad=0.9",
                    arrowstyle="-|>",
                    mutation_scale=8,
                    color=INK,
                    linewidth=1,
                )
            )
    for y0, y1 in zip(ys, ys[1:], strict=False):  # data flows down
        x = BOX_X + BOX_W / 2
        ax.add_patch(
            FancyArrowPatch(
                (x, y0), (x, y1 + BOX_H), arrowstyle="-|>", mutation_scale=8, color=INK, lw=1
            )
        )
    for section, items in groupby(zip(blocks, ys, strict=True), key=lambda b: b[0][1][0].section):
        band = [y for _, y in items]
        lo, hi = min(band), max(band) + BOX_H
        colour = SECTION_COLOURS[section]
        ax.add_patch(
            FancyBboxPatch(
                (0.15, lo),
                0.8,
                hi - lo,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor=colour,
                edgecolor=colour,
                gid=f"section:{section}",
            )
        )
        ax.text(
            0.55,
            (lo + hi) / 2,
            section,
            ha="center",
            va="center",
            color="white",
            fontsize=8,
            fontweight="bold",
        )
    ax.text(
        0.2,
        0.15,
        "Gold outline: a named output (encoding, embedding, logits, probabilities) that later\n"
        "stages reuse with model.get_layer(name)."
        + (
            " Curved arrow: a residual shortcut."
            if any(r.kind == "Add" for r in summary.rows)
            else ""
        ),
        fontsize=8,
        color="#555555",
        va="bottom",
    )
    return fig
