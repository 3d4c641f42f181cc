"""Figures of stage 3: samples, class balance, value histograms, augmentation, the report.

Each function takes plain data (arrays, counts, a DataReport) and returns a matplotlib Figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from workbench.data.analysis import DataReport
from workbench.plots.style import class_colour

SPLIT_HATCHES = {"train": "", "val": "//", "test": "..", "all": ""}  # same class colour, per split


def _image(ax, img: np.ndarray) -> None:
    """Draw one image (H, W), (H, W, 1) or (H, W, 3) without ticks."""
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]  # (H, W, 1) -> (H, W)
    if img.ndim == 3 and img.dtype.kind == "f":
        img = np.clip(img / max(float(img.max()), 1e-8), 0, 1)  # colour floats -> [0, 1]
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def sample_grid(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    class_names: Sequence[str] | None = None,
    classes: Sequence[int | str] | None = None,
    n: int = 16,
    cols: int = 8,
    seed: int = 0,
    title: str = "Samples",
    feature_names: Sequence[str] | None = None,
) -> Figure:
    """A grid of `n` random images, optionally only of `classes` (indices or names); tabular
    rows (N, F) are drawn as a heatmap of their standardized feature values instead."""
    y = None if y is None else np.asarray(y)
    idx = np.arange(len(x))
    if classes is not None and y is not None:
        names = list(class_names or [])
        wanted = [names.index(c) if isinstance(c, str) else int(c) for c in classes]
        # classes: label among `wanted`; multilabel (N, L): any wanted label positive
        keep = np.isin(y, wanted) if y.ndim == 1 else (y[:, wanted] > 0).any(axis=1)
        idx = idx[keep]
    idx = np.sort(np.random.default_rng(seed).permutation(idx)[:n])
    shown = "" if classes is None else f" (classes: {', '.join(map(str, classes))})"
    if np.asarray(x).ndim == 2:
        return _row_heatmap(x, y, idx, class_names, feature_names, f"{title}{shown}")
    rows = max(1, int(np.ceil(len(idx) / cols)))
    fig = Figure(figsize=(1.3 * cols, 1.5 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, idx, strict=False):
        ax.axis("on")
        _image(ax, x[i])
        if y is not None and y.ndim == 1 and y.dtype.kind in "iu":
            label = class_names[y[i]] if class_names else str(y[i])
            ax.set_title(label, fontsize=9, color=class_colour(y[i]))
            for spine in ax.spines.values():
                spine.set_edgecolor(class_colour(y[i]))
                spine.set_linewidth(2)
    fig.suptitle(f"{title}{shown}: {len(idx)} of {len(x)}")
    fig.supxlabel("each image titled and framed in its class colour", fontsize=9)
    return fig


def _row_heatmap(x, y, idx, class_names, feature_names, title: str) -> Figure:
    """Tabular samples as rows of z-scores (per feature, over all of `x`), labelled by class."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    classified = y is not None and y.ndim == 1 and y.dtype.kind in "iu"
    if classified:
        idx = idx[np.argsort(y[idx], kind="stable")]  # rows grouped by class
    names = list(feature_names or [f"f{j}" for j in range(x.shape[1])])
    fig = Figure(figsize=(max(6.0, 0.35 * len(names) + 2), 0.3 * len(idx) + 2.2))
    ax = fig.subplots()
    image = ax.imshow(z[idx], cmap="coolwarm", vmin=-3, vmax=3, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    labels = [
        (class_names[y[i]] if class_names else str(y[i])) if classified else str(i) for i in idx
    ]
    ax.set_yticks(range(len(idx)), labels, fontsize=7)
    if classified:
        for tick, i in zip(ax.get_yticklabels(), idx, strict=True):
            tick.set_color(class_colour(y[i]))
    ax.set_xlabel("feature")
    ax.set_ylabel("sample (its class)" if classified else "sample")
    fig.colorbar(image, ax=ax, label="standard deviations from the feature's mean")
    ax.set_title(f"{title}: {len(idx)} of {len(x)} rows")
    fig.tight_layout()
    return fig


def _balance_bars(ax, split_counts: Mapping[str, Mapping[str, int]], names: list[str]) -> None:
    """Grouped bars on `ax`: class colour per group, hatch per split."""
    splits = list(split_counts)
    width = 0.8 / max(1, len(splits))
    for s_i, split in enumerate(splits):
        xs = np.arange(len(names)) + (s_i - (len(splits) - 1) / 2) * width
        ax.bar(
            xs,
            [split_counts[split].get(c, 0) for c in names],
            width,
            color=[class_colour(i) for i in range(len(names))],
            hatch=SPLIT_HATCHES.get(split, "xx"),
            edgecolor="black",
            linewidth=0.5,
        )
    ax.set_xticks(np.arange(len(names)), names, rotation=45 if len(names) > 6 else 0)
    handles = [
        Patch(facecolor="white", edgecolor="black", hatch=SPLIT_HATCHES.get(s, "xx"), label=s)
        for s in splits
    ]
    if names:
        ax.legend(
            handles=handles, title="split", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0)
        )


def value_histogram(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    class_names: Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    bins: int = 32,
    max_features: int = 12,
    title: str | None = None,
) -> Figure:
    """Images: one histogram of all pixel values. Tabular (N, F): one per feature, stacked by
    class when class labels `y` are given."""
    x = np.asarray(x)
    if x.ndim != 2:  # images: pixel values
        fig = Figure(figsize=(5, 3.2))
        ax = fig.subplots()
        ax.hist(x.ravel(), bins=bins, color="0.4", log=True)
        ax.set_xlabel("pixel value")
        ax.set_ylabel("pixels (log scale)")
        ax.set_title(title or f"Pixel values of {len(x)} images")
        return fig
    f = min(x.shape[1], max_features)
    cols = min(4, f)
    rows = int(np.ceil(f / cols))
    fig = Figure(figsize=(3 * cols, 2.3 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False)
    by_class = y is not None and np.asarray(y).ndim == 1 and np.asarray(y).dtype.kind in "iu"
    for j, ax in enumerate(axes.flat):
        if j >= f:
            ax.axis("off")
            continue
        col = x[:, j][np.isfinite(x[:, j])]
        if by_class:
            yy = np.asarray(y)[np.isfinite(x[:, j])]
            ks = np.unique(yy)
            ax.hist(
                [col[yy == k] for k in ks],
                bins=bins,
                stacked=True,
                color=[class_colour(k) for k in ks],
                label=[class_names[k] if class_names else str(k) for k in ks],
            )
        else:
            ax.hist(col, bins=bins, color="0.4")
        ax.set_xlabel(feature_names[j] if feature_names else f"feature {j}", fontsize=8)
        ax.set_ylabel("samples", fontsize=8)
        ax.tick_params(labelsize=7)
    if by_class:
        axes.flat[0].legend(fontsize=7, title="class", title_fontsize=7)
    fig.suptitle(title or f"Feature values ({f} of {x.shape[1]} features)")
    return fig


def augmentation_grid(
    original: np.ndarray, augmented: np.ndarray, *, title: str = "Augmentation preview"
) -> Figure:
    """The original image first, then its augmented copies (n, H, W, C)."""
    n = len(augmented) + 1
    cols = min(n, 9)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(1.4 * cols, 1.6 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, img) in enumerate(zip(axes.flat, [original, *augmented], strict=False)):
        ax.axis("on")
        _image(ax, img)
        ax.set_title("original" if k == 0 else f"#{k}", fontsize=8)
    fig.suptitle(title)
    fig.supxlabel("each copy is a new random rotation / translation / zoom", fontsize=9)
    return fig


def report_figure(report: DataReport, *, title: str = "Data report") -> Figure:
    """Class counts per split beside the table of checks and any warnings."""
    fig = Figure(figsize=(11, 4.2))
    ax_bar, ax_tab = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    names = list(report.class_counts)
    _balance_bars(ax_bar, report.split_counts, names)
    ax_bar.set_xlabel("class" if report.target_kind == "classes" else "label (positives)")
    ax_bar.set_ylabel("samples")
    ax_bar.set_title("counts per split" if names else "no classes (numeric target)")
    ax_tab.axis("off")
    rows = [[r["check"], str(r["value"])] for r in report.table()]
    table = ax_tab.table(cellText=rows, colLabels=["check", "value"], loc="upper center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    ax_tab.set_title("checks")
    warnings = "; ".join(report.warnings) or "no warnings"
    fig.suptitle(f"{title}: {report.n_samples} samples")
    fig.supxlabel(f"warnings: {warnings}", fontsize=9, wrap=True)
    return fig
