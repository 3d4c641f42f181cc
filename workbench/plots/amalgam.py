"""Figures of figure 3's downstream tasks: neighbours, the 2-D latent map with out-of-distribution
points, reliability before and after temperature scaling, attribute scores, and pairs.

Each function takes plain arrays (images are raw (N, H, W, 1)) and returns a matplotlib Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from workbench.evaluate import calibration
from workbench.plots.style import class_colour
from workbench.plots.train import TRAIN, VAL

RIGHT, WRONG = "#2ca02c", "#C44E52"  # frames and titles of correct / wrong answers
OOD_COLOUR = "black"


def _image(ax, img: np.ndarray, frame: str | None = None) -> None:
    """One raw image (H, W, 1) or (H, W), ink bright on dark, no ticks; an optional frame."""
    img = np.asarray(img)
    ax.imshow(img[..., 0] if img.ndim == 3 else img, cmap="gray", interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_color(frame)
            spine.set_linewidth(3)


def plot_neighbours(
    query_images: np.ndarray,
    query_labels: np.ndarray,
    index_images: np.ndarray,
    index_labels: np.ndarray,
    neighbours: np.ndarray,
    distances: np.ndarray | None = None,
    *,
    n_queries: int = 6,
    title: str = "Similarity search: each query and its nearest training images",
) -> Figure:
    """One row per query: the query image, then its k neighbours (indices into the index's
    images, nearest first), framed green when they share the query's class, red when not."""
    n = min(n_queries, len(neighbours))
    k = neighbours.shape[1]
    fig = Figure(figsize=(1.2 * (k + 1), 1.35 * n + 0.6), layout="constrained")
    axes = fig.subplots(n, k + 1, squeeze=False)
    for r in range(n):
        q = int(query_labels[r])
        _image(axes[r, 0], query_images[r])
        axes[r, 0].set_title(f"query: {q}", fontsize=8, color=class_colour(q))
        for c in range(k):
            i = int(neighbours[r, c])
            label = int(index_labels[i])
            ax = axes[r, c + 1]
            _image(ax, index_images[i], RIGHT if label == q else WRONG)
            dist = "" if distances is None else f" d={distances[r, c]:.3f}"
            ax.set_title(f"{label}{dist}", fontsize=7, color=class_colour(label))
    axes[-1, 0].set_xlabel("test image", fontsize=8)
    for c in range(k):
        axes[-1, c + 1].set_xlabel(f"neighbour {c + 1}", fontsize=8)
    fig.suptitle(f"{title}\n(green frame: same class, red: another; d = cosine distance)")
    return fig


def plot_latent_map(
    points: np.ndarray,
    labels: np.ndarray,
    *,
    ood_points: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    axis_labels: tuple[str, str] = ("axis 1", "axis 2"),
    title: str = "The low-dimensional latent in 2-D",
) -> Figure:
    """2-D points (N, 2) coloured by class (the same colour per class as everywhere), with
    out-of-distribution points (M, 2) as black crosses when given."""
    fig = Figure(figsize=(6.2, 5.0), layout="constrained")
    ax = fig.add_subplot()
    labels = np.asarray(labels).astype(int)
    for c in np.unique(labels):
        at = labels == c
        name = class_names[c] if class_names else str(c)
        ax.scatter(*points[at].T, s=9, color=class_colour(c), alpha=0.75, label=name)
    if ood_points is not None:
        ax.scatter(*np.asarray(ood_points).T, s=14, marker="x", color=OOD_COLOUR,
                   linewidths=0.8, label="out of distribution")  # fmt: skip
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title)
    return fig


def plot_reliability_before_after(
    probs_before: np.ndarray,
    probs_after: np.ndarray,
    y: np.ndarray,
    *,
    temperature: float | None = None,
    bins: int = 15,
) -> Figure:
    """Reliability diagrams side by side: per confidence bin its accuracy (bar) and its mean
    confidence vs accuracy (point; on the diagonal = calibrated), before and after dividing
    the logits by the temperature; ECE in each title."""
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    after = "after" if temperature is None else f"after (T = {temperature:.2f})"
    for ax, probs, name in zip(axes, (probs_before, probs_after), ("before", after), strict=True):
        probs = np.asarray(probs)
        c = calibration(probs.max(axis=1), probs.argmax(axis=1) == np.asarray(y), bins=bins)
        centres, width = (c["edges"][:-1] + c["edges"][1:]) / 2, np.diff(c["edges"])
        ax.bar(centres, np.nan_to_num(c["accuracy"]), width, color=TRAIN, edgecolor="black",
               linewidth=0.4, label="accuracy of the bin")  # fmt: skip
        ax.plot([0, 1], [0, 1], "--", color="gray", label="calibrated")
        ax.plot(c["confidence"], c["accuracy"], "o", color=VAL, ms=4,
                label="bin: mean confidence, accuracy")  # fmt: skip
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence of the predicted class")
        ax.set_title(f"{name}: ECE {c['ece']:.3f}")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Reliability before and after temperature scaling (test split)")
    return fig


def plot_attributes(
    scores: dict[str, np.ndarray],
    names: Sequence[str],
    *,
    image: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    thresholds: np.ndarray | None = None,
    image_label: str | None = None,
) -> Figure:
    """Per attribute precision, recall and F1 (tasks.attribute_scores) as bars in the
    attribute's colour; with `image` and its `probabilities` (L,), also one example: each
    attribute's probability and the threshold it must reach (`image_label`: its true class)."""
    one = image is not None and probabilities is not None
    fig = Figure(figsize=(10 if one else 6.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 3 if one else 1, width_ratios=[3, 1, 2] if one else None, squeeze=False)
    ax, n = axes[0, 0], len(names)
    colours = [class_colour(j) for j in range(n)]
    for s, (key, alpha) in enumerate((("precision", 1.0), ("recall", 0.6), ("f1", 0.3))):
        ax.bar(np.arange(n) + (s - 1) * 0.27, scores[key], 0.27, color=colours, alpha=alpha,
               edgecolor="black", linewidth=0.4, label=key)  # fmt: skip
    ax.set_xticks(range(n), names, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("attribute")
    ax.set_ylabel("score (test split)")
    em = scores.get("exact_match")
    ax.set_title("Per attribute" + ("" if em is None else f" (exact match {float(em):.3f})"))
    ax.legend(fontsize=7, loc="lower right")
    if one:
        _image(axes[0, 1], image)
        shown = "one test image" + ("" if image_label is None else f"\n(true: {image_label})")
        axes[0, 1].set_title(shown, fontsize=9)
        bar = axes[0, 2]
        bar.barh(range(n), probabilities, color=colours)
        if thresholds is not None:
            bar.scatter(thresholds, range(n), marker="|", s=300, color="black", label="threshold")
            bar.legend(fontsize=7, loc="lower right")
        bar.set_yticks(range(n), names)
        bar.invert_yaxis()
        bar.set_xlim(0, 1)
        bar.set_xlabel("P(attribute)")
        bar.set_title("its attribute probabilities", fontsize=9)
    fig.suptitle("Attribute tagging with thresholds chosen on validation")
    return fig


def plot_pairs(
    images: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    target: np.ndarray,
    predicted: np.ndarray,
    *,
    task: str,
    n: int = 6,
) -> Figure:
    """`n` pairs of one split's images (pairs = index arrays (i, j)) with the classifier's
    answer: "same digit?" yes/no or the digits' sum; green when right, red when wrong."""
    i, j = pairs
    n = min(n, len(i))
    fig = Figure(figsize=(2.3 * n, 1.9), layout="constrained")
    subfigs = fig.subfigures(1, n, squeeze=False)[0]

    def say(v) -> str:
        return ("yes" if v else "no") if task == "same" else str(int(v))

    for p, sub in enumerate(subfigs):
        left, right = sub.subplots(1, 2)
        ok = predicted[p] == target[p]
        _image(left, images[i[p]], RIGHT if ok else WRONG)
        _image(right, images[j[p]], RIGHT if ok else WRONG)
        sub.suptitle(f"says {say(predicted[p])}\n(truth {say(target[p])})", fontsize=9,
                     color=RIGHT if ok else WRONG)  # fmt: skip
    question = "Same digit?" if task == "same" else "Sum of the two digits?"
    fig.suptitle(f"{question} A classifier on the pair's combined embeddings (test pairs)")
    return fig


def plot_task_outputs(
    image: np.ndarray,
    outputs: dict[str, np.ndarray],
    class_names: Sequence[str],
    attribute_names: Sequence[str],
    *,
    other: np.ndarray | None = None,
    same: float | None = None,
    label: str | None = None,
) -> Figure:
    """One image's answers from every task of the pipeline (`outputs` of one row): the image
    with its OOD verdict, the calibrated class probabilities, the attribute tags (a tag's bar
    is solid when it is on), and with `other` and `same` the pair task's P(same digit)."""
    pair = other is not None and same is not None
    fig = Figure(figsize=(11.5 if pair else 9.5, 2.8), layout="constrained")
    ratios = [1, 2.6, 1.8] + ([1] if pair else [])
    axes = fig.subplots(1, len(ratios), width_ratios=ratios)
    flagged = bool(outputs["ood"])
    _image(axes[0], image, WRONG if flagged else RIGHT)
    verdict = "out of distribution" if flagged else "a digit"
    truth = "" if label is None else f"\n(true: {label})"
    axes[0].set_title(f"{verdict}{truth}\nOOD score {float(outputs['ood_score']):.1f}", fontsize=8)
    p, top = np.asarray(outputs["probabilities"]), int(outputs["predicted_class"])
    axes[1].bar(range(len(p)), p, color=[class_colour(c) for c in range(len(p))])
    axes[1].set_xticks(range(len(p)), class_names)
    axes[1].set_ylim(0, 1)
    axes[1].set_title(f"classes (calibrated): {class_names[top]}, p = {p[top]:.2f}", fontsize=9)
    neighbours = " ".join(class_names[int(c)] for c in outputs["neighbor_labels"])
    axes[1].set_xlabel(f"nearest training images: {neighbours}", fontsize=8)
    tags = np.asarray(outputs["tags"]).astype(bool)
    n = len(attribute_names)
    axes[2].barh(range(n), np.ones(n), color=[class_colour(j) for j in range(n)],
                 alpha=0.15)  # fmt: skip
    axes[2].barh(np.flatnonzero(tags), np.ones(tags.sum()),
                 color=[class_colour(j) for j in np.flatnonzero(tags)])  # fmt: skip
    axes[2].set_yticks(range(n), attribute_names)
    axes[2].invert_yaxis()
    axes[2].set_xticks([])
    axes[2].set_title("tags (solid: on)", fontsize=9)
    if pair:
        _image(axes[3], other)
        axes[3].set_title(f"pair: P(same digit)\n= {same:.2f}", fontsize=9)
    return fig
