"""Stage 1 figure: the training labels a card's baseline was learned from, and that baseline."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from workbench.identify import ProblemCard
from workbench.plots.style import class_colour


def label_distribution(y: np.ndarray, card: ProblemCard) -> Figure:
    """The labels `y` (pass the training split's, which the baseline learns from). Classes:
    counts with the majority class marked. Labels: positive share per label. Regression: a
    histogram of the targets with their median (the MAE baseline's prediction)."""
    y = np.asarray(y)
    fig = Figure(figsize=(7, 3.2))
    ax = fig.subplots()
    names = list(card.class_names)
    if card.task in ("binary", "multiclass"):
        counts = np.bincount(y.astype(int), minlength=len(names))  # (classes,)
        bars = ax.bar(names, counts, color=[class_colour(i) for i in range(len(names))])
        top = int(np.argmax(counts))
        bars[top].set_edgecolor("black")
        bars[top].set_linewidth(2)
        ax.set_xlabel("class (outlined: the majority class, the baseline's constant answer)")
        ax.set_ylabel("examples")
    elif card.task == "multilabel":
        share = y.reshape(len(y), -1).mean(axis=0)  # (labels,) positive rate per label
        ax.bar(names, share, color=[class_colour(i) for i in range(len(names))])
        ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("label (each is an independent yes/no)")
        ax.set_ylabel("share of examples with label = 1")
    else:
        values = y.reshape(-1)
        ax.hist(values, bins=30, color=class_colour(0), alpha=0.8)
        ax.axvline(np.median(values), color="black", linewidth=2, label="median (baseline)")
        ax.legend(loc="upper right")
        ax.set_xlabel("target value")
        ax.set_ylabel("examples")
    base = card.baseline.get("description", "")
    ax.set_title(f"{card.dataset}: {card.task} labels" + (f"\nbaseline: {base}" if base else ""))
    fig.tight_layout()
    return fig
