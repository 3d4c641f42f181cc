"""Figures of the CI/CD production process (figure 2): the QA gate's decision, the continuous-
learning loop over time (accuracy and drift), and the lineage of the versions it made.

Each function returns a matplotlib `Figure` (not pyplot), so a notebook shows it exactly once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from workbench.plots.style import class_colour

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from workbench.deploy.loop import LoopStep
    from workbench.deploy.qa import Decision

PASS, FAIL, CHAMPION, TARGET = "#2ca02c", "#d62728", "#7f7f7f", "black"


def plot_gate(decision: Decision) -> Figure:
    """The gate at a glance: one panel per check (challenger and champion against the target,
    the allowed side shaded, the challenger green when it passes, red when it fails), and the
    recall of every class for both models with the floor line below."""
    checks = decision.checks
    fig = Figure(figsize=(max(9.0, 2.4 * len(checks)), 6.4), layout="constrained")
    grid = fig.add_gridspec(2, len(checks), height_ratios=(1.0, 1.5))
    for i, row in enumerate(checks):
        _check_panel(fig.add_subplot(grid[0, i]), row, labels=i == 0)
    _recall_panel(fig.add_subplot(grid[1, :]), decision)
    fig.suptitle(f"QA gate: {decision.headline}", color=PASS if decision.promote else FAIL)
    return fig


def _check_panel(ax: Axes, row: dict, *, labels: bool) -> None:
    """Challenger (top) and champion (bottom) as dots on the check's own scale; the target as
    a dashed line with the allowed side shaded."""
    colour = PASS if row["passed"] else FAIL
    values = [v for v in (row["challenger"], row["champion"], row["target"]) if v is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(hi - lo, abs(hi) * 0.02, 1e-9) * 0.35
    lo, hi = lo - pad, hi + pad
    if row["target"] is not None:
        ax.axvline(row["target"], color=TARGET, ls="--", lw=1)
        side = (row["target"], hi) if row["rule"] == ">=" else (lo, row["target"])
        ax.axvspan(*side, color=PASS, alpha=0.08, lw=0)
    for y, value, dot in ((1, row["challenger"], colour), (0, row["champion"], CHAMPION)):
        if value is None:
            ax.text(0.5, y, "not compared", transform=ax.get_yaxis_transform(), ha="center",
                    va="center", fontsize=8, color=CHAMPION)  # fmt: skip
            continue
        ax.plot([value], [y], "o", color=dot, ms=9)
        ax.annotate(_number(value), (value, y), xytext=(0, 8), textcoords="offset points",
                    ha="center", fontsize=8)  # fmt: skip
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.7, 1.7)
    ax.set_yticks([1, 0], ["challenger", "champion"] if labels else ["", ""])
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _number(v, ticks=True)))
    ax.tick_params(axis="x", labelsize=8)
    mark = "pass" if row["passed"] else "FAIL"
    ax.set_title(f"{row['check']}\n{row['rule']} target: {mark}", fontsize=9, color=colour)
    ax.grid(axis="x", alpha=0.3)


def _recall_panel(ax: Axes, decision: Decision) -> None:
    """Grouped bars per class in the class's colour: champion light, challenger solid (a red
    edge below the floor)."""
    mine = decision.challenger.recall
    names = list(mine)
    k, width = len(names), 0.38
    x = np.arange(k)
    colours = [class_colour(i) for i in range(k)]
    floor = decision.spec.per_class_floor
    if decision.champion is not None:
        theirs = [decision.champion.recall.get(c, np.nan) for c in names]
        ax.bar(x - width / 2, theirs, width, color=colours, alpha=0.35, edgecolor="black",
               linewidth=0.4)  # fmt: skip
    values = [mine[c] for c in names]
    edges = [FAIL if v < floor else "black" for v in values]
    ax.bar(x + width / 2 if decision.champion else x, values, width, color=colours,
           edgecolor=edges, linewidth=[2.0 if e == FAIL else 0.4 for e in edges])  # fmt: skip
    for i, v in enumerate(values):
        if v < floor:  # a bar may be too short to see: its value says it
            ax.text(x[i] + (width / 2 if decision.champion else 0), v + 0.02, f"{v:.2f}",
                    ha="center", va="bottom", fontsize=8, color=FAIL)  # fmt: skip
    ax.axhline(floor, color=FAIL, ls="--", lw=1)
    ax.set_xticks(x, names, rotation=45 if k > 10 else 0)
    for i, t in enumerate(ax.get_xticklabels()):
        t.set_color(class_colour(i))
    ax.set_ylim(0, 1.25)  # room for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("class")
    ax.set_ylabel("recall on the gate split")
    n = len(decision.challenger.correct)
    ax.set_title(f"Recall per class on the gate split ({n} examples)")
    handles = [Patch(facecolor="#555555", label=f"challenger {decision.challenger.name}")]
    if decision.champion is not None:
        handles.append(
            Patch(facecolor="#555555", alpha=0.35, label=f"champion {decision.champion.name}")
        )
    handles.append(Patch(facecolor="white", edgecolor=FAIL, label=f"below the floor {floor:.2f}"))
    ax.legend(handles=handles, fontsize=8, loc="upper center", ncol=3)


def _number(v: float, *, ticks: bool = False) -> str:
    """0.943, 1.52, 3.05 M: short labels on each check's own scale (ticks, which are round
    numbers, keep all their digits: 0.945, 0.95, 0.955)."""
    from workbench.design import human

    return human(v) if abs(v) >= 1000 else f"{v:g}" if ticks else f"{v:.3g}"


def plot_loop(history: list[LoopStep]) -> Figure:
    """The loop over time: on top the champion's accuracy on each batch as it arrived (before
    any retraining on it) and each challenger's gate accuracy, marked promote or reject; below
    the strongest drift evidence per batch (-log10 of the smallest Holm-adjusted p-value)
    against the alarm line; shifted batches shaded."""
    fig = Figure(figsize=(9.5, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.3, 1.0))
    x = np.arange(len(history))
    for i, step in enumerate(history):
        if step.drift is not None and "unshifted" not in step.event:
            for ax in (top, bottom):
                ax.axvspan(i - 0.5, i + 0.5, color="#f2e6c9", zorder=0)
    seen = [(i, s.batch_accuracy) for i, s in enumerate(history) if s.batch_accuracy is not None]
    if seen:
        top.plot(*zip(*seen, strict=True), "o-", color=CHAMPION, label="champion, on the batch")
    for i, step in enumerate(history):
        if step.decision is not None:
            colour = PASS if step.decision.promote else FAIL
            top.scatter(i, step.decision.challenger.accuracy, marker="D", s=60, color=colour,
                        zorder=3)  # fmt: skip
    top.scatter([], [], marker="D", color=PASS, label="challenger on the gate: promoted")
    top.scatter([], [], marker="D", color=FAIL, label="challenger on the gate: rejected")
    top.set(ylabel="accuracy", ylim=(0, 1.02), title="Continuous learning: accuracy and drift")
    top.legend(loc="lower left", fontsize=8)
    evidence = [
        (i, -np.log10(max(min(f.adjusted_p for f in s.drift.features), 1e-30)), s.drift.drift)
        for i, s in enumerate(history)
        if s.drift is not None
    ]
    if evidence:
        alpha = next(s.drift.alpha for s in history if s.drift is not None)
        bottom.bar([e[0] for e in evidence], [e[1] for e in evidence],
                   color=[FAIL if e[2] else CHAMPION for e in evidence])  # fmt: skip
        bottom.axhline(-np.log10(alpha), color=TARGET, ls="--", lw=1,
                       label=f"alarm: adjusted p <= {alpha:g}")  # fmt: skip
        bottom.legend(loc="upper left", fontsize=8)
    bottom.set(ylabel="-log10 smallest\nadjusted p", xticks=x)
    bottom.set_xticklabels([_short(s.event) for s in history], rotation=30, ha="right")
    return fig


def plot_lineage(history: list[LoopStep]) -> Figure:
    """Where every version came from: data version -> training run -> registered version (green
    promoted, red rejected), and the warm start from the champion of the time (dashed)."""
    fig = Figure(figsize=(max(7.0, 2.0 * len(history)), 4.2), layout="constrained")
    ax = fig.add_subplot()
    made = [(i, s) for i, s in enumerate(history) if s.version]
    rows = {"data version": 2.0, "training run": 1.0, "model version": 0.0}
    champion_at: dict[str, float] = {}  # version -> x of its box
    for j, (_, step) in enumerate(made):
        colour = PASS if step.decision and step.decision.promote else FAIL
        texts = (step.data_version or "", _run_label(step.train_run or ""), f"v{step.version}")
        for (row, y), text in zip(rows.items(), texts, strict=True):
            ax.text(j, y, text, ha="center", va="center", fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white",
                          "ec": colour if row == "model version" else CHAMPION})  # fmt: skip
        for y0, y1 in ((2.0, 1.0), (1.0, 0.0)):
            ax.annotate("", (j, y1 + 0.18), (j, y0 - 0.18), arrowprops={"arrowstyle": "->"})
        previous = history[history.index(step) - 1].champion if history.index(step) else ""
        if previous in champion_at and "warm" in (step.train_run or ""):
            ax.annotate("", (j - 0.1, 1.0), (champion_at[previous] + 0.15, 0.1),
                        arrowprops={"arrowstyle": "->", "ls": "--", "color": CHAMPION})  # fmt: skip
        champion_at[step.version] = j
        ax.text(j, -0.45, _short(step.event), ha="center", fontsize=8, color=colour)
    title = "Lineage: data -> run -> version (dashed: warm start from the champion)"
    ax.set(xlim=(-0.7, max(len(made), 1) - 0.3), ylim=(-0.7, 2.5), title=title)
    ax.set_yticks(list(rows.values()))
    ax.set_yticklabels(list(rows))
    ax.set_xticks([])
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return fig


def _short(event: str) -> str:
    return event.replace(" (unshifted)", "").replace("rollback to version ", "rollback to v")


def _run_label(run_id: str) -> str:
    """compact-warm-1a2b3c4d5e6f -> compact warm 1a2b3c (the kind and a short hash)."""
    parts = run_id.split("-")
    return " ".join([*parts[:-1], parts[-1][:6]]) if len(parts) > 1 else run_id
