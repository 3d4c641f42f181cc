"""Figures of stage 4: learning curves, confusion matrix, worst errors, per-class scores,
reliability diagram, residuals and a comparison of tracked runs.

Each function returns a matplotlib `Figure` (not pyplot), so a notebook shows it exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from workbench.plots.style import class_colour
from workbench.train import SELECTION_METRICS

if TYPE_CHECKING:
    from workbench.data import DatasetVersion
    from workbench.evaluate import Evaluation

TRAIN, VAL, BEST = "#4C72B0", "#DD8452", "#2ca02c"  # train curve, validation curve, best epoch
MAX_EPOCH_TICKS = 15  # up to this many epochs, a tick for each; beyond, whole numbers only


def _metric_name(history: dict[str, Sequence[float]]) -> str | None:
    names = [k for k in history if k not in ("loss", "learning_rate") and not k.startswith("val_")]
    return names[0] if names else None


def plot_history(
    history: dict[str, Sequence[float]],
    *,
    epochs: Sequence[int] | None = None,
    best_epoch: int | None = None,
    title: str = "Learning curves",
) -> Figure:
    """Loss and the first metric per epoch, train vs validation, the best epoch marked.

    `history` is Keras' layout ({"loss": [...], "val_loss": [...], ...}); `epochs` are the
    0-based epoch indices of the values (default 0, 1, ...); `best_epoch` defaults to the
    lowest val_loss.
    """
    metric = _metric_name(history)
    panels = ["loss", *([metric] if metric else [])]
    fig = Figure(figsize=(5.2 * len(panels), 3.6), layout="constrained")
    n = len(history.get("loss", []))
    x = np.asarray(epochs if epochs is not None else range(n)) + 1  # 1-based, as Keras prints
    if best_epoch is None and history.get("val_loss"):
        best_epoch = int(np.nanargmin(history["val_loss"]))
    for i, name in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        ax.plot(x, history[name], "o-", color=TRAIN, label="train", ms=3)
        if f"val_{name}" in history:
            ax.plot(x, history[f"val_{name}"], "o-", color=VAL, label="validation", ms=3)
        if best_epoch is not None and n:
            at = x[min(best_epoch, n - 1)] if epochs is None else best_epoch + 1
            ax.axvline(at, color=BEST, ls="--", lw=1, label=f"best epoch ({at})")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if len(x) <= MAX_EPOCH_TICKS:
            ax.set_xticks(x)  # one tick per epoch: 1, 2, 3 ...
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def plot_confusion(ev: Evaluation, *, normalize: bool = False) -> Figure:
    """The confusion matrix (rows true, columns predicted); one 2x2 panel per label for
    multilabel. `normalize` shows each row as fractions of the true class."""
    if ev.confusion is None:
        raise ValueError(f"plot_confusion: a {ev.task} evaluation has no confusion matrix.")
    if ev.confusion.ndim == 3:
        return _confusion_per_label(ev)
    m = ev.confusion.astype(float)
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    k = len(m)
    names = ev.class_names or [str(i) for i in range(k)]
    fig = Figure(figsize=(1.0 + 0.55 * k, 0.6 + 0.55 * k), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        text = f"{v:.2f}" if normalize else f"{int(v)}"
        ax.text(j, i, text, ha="center", va="center", fontsize=8,
                color="white" if v > m.max() / 2 else "black")  # fmt: skip
    ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), names)
    for i, (xt, yt) in enumerate(zip(ax.get_xticklabels(), ax.get_yticklabels(), strict=True)):
        xt.set_color(class_colour(i))
        yt.set_color(class_colour(i))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = ev.metrics.get("accuracy", float("nan"))
    ax.set_title(f"Confusion matrix ({ev.split}, accuracy {acc:.3f})")
    return fig


def _confusion_per_label(ev: Evaluation) -> Figure:
    n = len(ev.confusion)
    fig = Figure(figsize=(2.6 * n, 2.9), layout="constrained")
    for j, m in enumerate(ev.confusion):
        ax = fig.add_subplot(1, n, j + 1)
        ax.imshow(m, cmap="Blues")
        for (r, c), v in np.ndenumerate(m):
            ax.text(c, r, str(int(v)), ha="center", va="center",
                    color="white" if v > m.max() / 2 else "black")  # fmt: skip
        ax.set_xticks([0, 1], ["no", "yes"])
        ax.set_yticks([0, 1], ["no", "yes"])
        name = ev.class_names[j] if j < len(ev.class_names) else f"label {j}"
        ax.set_title(name, color=class_colour(j))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.suptitle(f"Confusion per label ({ev.split})")
    return fig


def _describe(ev: Evaluation, i: int) -> tuple[str, str]:
    """(true, predicted) of example i, as text."""
    names = ev.class_names
    t, p = ev.y_true[i], ev.predicted[i]
    if ev.task == "regression":
        return f"{np.ravel(t)[0]:.1f}", f"{np.ravel(p)[0]:.1f}"
    if ev.task == "multilabel":

        def on(v):
            return "+".join(names[j] for j in np.flatnonzero(v)) or "none"

        return on(t), on(p)
    return names[int(t)] if names else str(int(t)), names[int(p)] if names else str(int(p))


def plot_worst_errors(ev: Evaluation, version: DatasetVersion, *, n: int = 12) -> Figure:
    """The `n` examples with the highest loss: images with true / predicted labels (red when
    wrong); for tables, a bar per row with its loss."""
    idx = ev.worst[:n]
    x, _ = version.split(ev.split)
    if x.ndim == 4:  # images (N, H, W, C)
        cols = min(6, len(idx)) or 1
        rows = int(np.ceil(len(idx) / cols)) or 1
        fig = Figure(figsize=(1.7 * cols, 2.0 * rows + 0.4), layout="constrained")
        for k, i in enumerate(idx):
            ax = fig.add_subplot(rows, cols, k + 1)
            img = x[i][..., 0] if x.shape[-1] == 1 else x[i]
            ax.imshow(img, cmap="gray_r" if x.shape[-1] == 1 else None)
            true, pred = _describe(ev, i)
            ax.set_title(f"true {true}\npred {pred}", fontsize=8,
                         color="black" if true == pred else "#C44E52")  # fmt: skip
            ax.set_xlabel(f"#{i}, loss {ev.losses[i]:.2f}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        fig = Figure(figsize=(7, 0.35 * len(idx) + 1.2), layout="constrained")
        ax = fig.add_subplot()
        labels = [f"row {i}: true {t}, pred {p}" for i in idx for t, p in [_describe(ev, i)]]
        colours = [class_colour(int(np.ravel(ev.y_true[i])[0])) for i in idx]
        if ev.task in ("regression", "multilabel"):
            colours = [TRAIN] * len(idx)
        ax.barh(range(len(idx)), ev.losses[idx], color=colours)
        ax.set_yticks(range(len(idx)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("loss of the example")
        ax.set_ylabel("example")
    fig.suptitle(f"Worst {len(idx)} examples of the {ev.split} split (highest loss)")
    return fig


def plot_per_class(ev: Evaluation) -> Figure:
    """Precision, recall and F1 per class (per label for multilabel), in the class's colour:
    solid = precision, lighter = recall, lightest = F1."""
    if ev.per_class is None:
        raise ValueError(f"plot_per_class: a {ev.task} evaluation has no classes.")
    pc = ev.per_class
    k = len(pc["f1"])
    names = ev.class_names or [str(i) for i in range(k)]
    fig = Figure(figsize=(max(5.0, 0.75 * k + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    width = 0.27
    for s, (key, alpha) in enumerate((("precision", 1.0), ("recall", 0.6), ("f1", 0.3))):
        colours = [class_colour(i) for i in range(k)]
        ax.bar(np.arange(k) + (s - 1) * width, pc[key], width, color=colours, alpha=alpha,
               edgecolor="black", linewidth=0.4, label=key)  # fmt: skip
    ax.set_xticks(range(k), names, rotation=45 if k > 6 else 0)
    for i, t in enumerate(ax.get_xticklabels()):
        t.set_color(class_colour(i))
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("label" if ev.task == "multilabel" else "class")
    ax.set_ylabel("score")
    ax.set_title(f"Precision, recall and F1 per {'label' if ev.task == 'multilabel' else 'class'}")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_reliability(ev: Evaluation) -> Figure:
    """Reliability diagram: predictions binned by confidence; per bin a bar (its accuracy) and
    a point (x = the bin's mean confidence, y = its accuracy; on the diagonal = calibrated),
    with how many predictions fall in each bin below. ECE is the count-weighted mean of the
    points' vertical distances to the diagonal."""
    c = ev.calibration
    if c is None:
        raise ValueError(f"plot_reliability: a {ev.task} evaluation has no calibration.")
    edges = c["edges"]
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    fig = Figure(figsize=(5, 5.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.bar(centres, np.nan_to_num(c["accuracy"]), width, color=TRAIN, edgecolor="black",
            linewidth=0.4, label="accuracy of the bin's predictions")  # fmt: skip
    top.plot(
        [0, 1], [0, 1], "--", color="gray", label="perfectly calibrated (accuracy = confidence)"
    )
    top.plot(c["confidence"], c["accuracy"], "o", color=VAL, ms=4,
             label="one bin: x = its mean confidence, y = its accuracy")  # fmt: skip
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.set_title(f"Reliability ({ev.split}): ECE {c['ece']:.3f}")
    top.legend(fontsize=8, loc="upper left")
    bottom.bar(centres, c["count"], width, color="gray", edgecolor="black", linewidth=0.4)
    bottom.set_xlabel("confidence of the predicted answer")
    bottom.set_ylabel("predictions")
    bottom.set_xlim(0, 1)
    return fig


def plot_residuals(ev: Evaluation) -> Figure:
    """Regression: predicted vs true (on the diagonal = exact), and the residuals' spread."""
    if ev.residuals is None:
        raise ValueError(f"plot_residuals: a {ev.task} evaluation has no residuals.")
    truth, pred = np.ravel(ev.y_true), np.ravel(ev.predicted)
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.scatter(truth, pred, s=10, color=TRAIN, alpha=0.7)
    lo, hi = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
    left.plot([lo, hi], [lo, hi], "--", color="gray", label="exact")
    left.set_xlabel("true value")
    left.set_ylabel("predicted value")
    left.set_title(f"Predicted vs true (MAE {ev.metrics['mae']:.2f})")
    left.legend(fontsize=8)
    right.hist(np.ravel(ev.residuals), bins=20, color=VAL, edgecolor="black", linewidth=0.4)
    right.set_xlabel("residual (true - predicted)")
    right.set_ylabel("examples")
    right.set_title(f"Residuals (RMSE {ev.metrics['rmse']:.2f})")
    return fig


COMPARE_METRICS = tuple(f"selected_{m}" for m in SELECTION_METRICS)  # as tracking logs them


def compare_runs(
    runs: Sequence[dict[str, Any]],
    *,
    metric: str | None = None,
    columns: Sequence[str] = ("name", "status", "config.epochs", "config.learning_rate"),
) -> Figure:
    """Tracked runs side by side (rows of `tracking.list_runs`): a table of their settings
    and a bar of `metric` per run. Runs are compared on validation numbers (default: the first
    of COMPARE_METRICS the runs have); test numbers are the final estimate, not for choosing."""
    runs = list(runs)
    if not runs:
        raise ValueError("compare_runs: got no runs; expected rows of tracking.list_runs().")
    if metric is None:
        found = [m for m in COMPARE_METRICS if any(m in r for r in runs)]
        metric = found[0] if found else COMPARE_METRICS[0]
    labels = [str(r.get("name", i))[-24:] for i, r in enumerate(runs)]
    values = [float(r.get(metric, np.nan)) for r in runs]
    fig = Figure(figsize=(9, 2.6 + 0.32 * len(runs)), layout="constrained")
    table_ax, bar_ax = fig.subplots(1, 2, width_ratios=[1.4, 1])
    table_ax.set_axis_off()
    cells = [
        [str(r.get(c, ""))[-24:] for c in columns] + [f"{v:.4f}"]
        for r, v in zip(runs, values, strict=True)
    ]
    table = table_ax.table(cellText=cells, colLabels=[*columns, metric], loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table_ax.set_title("Runs")
    bar_ax.barh(range(len(runs)), values, color=[class_colour(i) for i in range(len(runs))])
    bar_ax.set_yticks(range(len(runs)), labels, fontsize=7)
    bar_ax.invert_yaxis()
    bar_ax.set_xlabel(metric)
    bar_ax.set_ylabel("run")
    bar_ax.set_title(f"{metric} per run")
    fig.suptitle(f"Comparison of {len(runs)} tracked runs")
    return fig


def evaluation_figures(ev: Evaluation, version: DatasetVersion) -> dict[str, Figure]:
    """The evaluation figures that suit the task, by name: residuals for regression; confusion,
    per-class scores, reliability and (for images) the worst errors for classification."""
    if ev.task == "regression":
        return {"residuals": plot_residuals(ev)}
    figures = {
        "confusion": plot_confusion(ev),
        "per_class": plot_per_class(ev),
        "reliability": plot_reliability(ev),
    }
    if version.transform.kind == "image":
        figures["worst_errors"] = plot_worst_errors(ev, version)
    return figures


def plot_threshold_curve(curve: dict[str, Sequence[float]], *, title: str | None = None) -> Figure:
    """Precision, recall and F1 of a sigmoid head against its decision threshold."""
    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    for i, name in enumerate(("precision", "recall", "f1")):
        ax.plot(curve["threshold"], curve[name], marker=".", color=class_colour(i), label=name)
    ax.set_xlabel("threshold (predict 1 when the sigmoid output is above it)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left")
    ax.set_title(title or "One attribute head: precision, recall and F1 by threshold")
    fig.tight_layout()
    return fig
