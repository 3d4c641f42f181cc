"""Analysis, its figures and its widgets: counts, statistics, duplicates and leakage."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from workbench.data import analyze, load_source
from workbench.plots import data as plots
from workbench.widgets.data import AugmentationPreview, DataReportView, SampleGrid


@pytest.fixture(scope="module")
def digits():
    return load_source("digits")


def test_planted_duplicate_shows_as_duplicate_and_leakage():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(10, 4, 4), dtype=np.uint8)
    y = np.array([0, 1] * 5)
    x[9] = x[2]  # sample 9 (test) is a copy of sample 2 (train)
    report = analyze(x, y, {"train": np.arange(8), "test": np.array([8, 9])}, ["a", "b"])
    assert report.n_duplicates == 1 and report.duplicate_groups == [[2, 9]]
    assert report.leakage == {"train/test": 1}
    assert "leakage train/test: 1 samples" in "\n".join(report.warnings)
    assert report.split_counts == {"train": {"a": 4, "b": 4}, "test": {"a": 1, "b": 1}}


def test_clean_digits_report(digits):
    report = analyze(digits.x, digits.y, class_names=digits.class_names)
    assert report.n_samples == 1797 and report.sample_shape == (8, 8)
    assert report.stats["min"] == 0 and report.stats["max"] == 16
    assert report.n_nan == 0 and report.n_duplicates == 0
    assert 1.0 < report.imbalance_ratio < 1.1
    assert 0 in report.constant_features  # the top-left pixel is always 0
    assert report.label_range == (0.0, 9.0)
    rows = {r["check"]: r["value"] for r in report.table()}
    assert rows["samples"] == 1797 and rows["classes"] == 10
    assert report.class_table()[0] == {"class": "0", "all": 178, "total": 178}
    assert "DataReport: 1797 samples of shape (8, 8)" in repr(report)


def test_nan_inf_constant_and_imbalance():
    x = np.array([[1.0, 5.0], [np.nan, 5.0], [np.inf, 5.0], [2.0, 5.0]])
    report = analyze(x, np.array([0, 0, 0, 1]))
    assert (report.n_nan, report.n_inf) == (1, 1)
    assert report.constant_features == [1]
    assert report.imbalance_ratio == 3.0
    assert report.feature_stats[0]["max"] == 2.0  # NaN and inf left out of the statistics
    text = " | ".join(report.warnings)
    assert (
        "imbalanced: largest/smallest = 3.00" in text and "1 missing (NaN) and 1 infinite" in text
    )


def test_multilabel_and_regression_targets():
    multi = analyze(
        np.zeros((3, 2)), np.array([[1, 0], [1, 1], [0, 0]], np.float32), None, ["p", "q"]
    )
    assert multi.target_kind == "multilabel" and multi.class_counts == {"p": 2, "q": 1}
    reg = analyze(np.arange(6.0).reshape(3, 2), np.array([0.5, 2.0, 1.5], np.float32))
    assert reg.target_kind == "values" and reg.class_counts == {} and reg.label_range == (0.5, 2.0)


# ---- figures ---------------------------------------------------------------------------------


def test_figures_are_returned_with_titles(digits):
    report = analyze(digits.x, digits.y, class_names=digits.class_names)
    figures = [
        plots.sample_grid(digits.x, digits.y, class_names=digits.class_names, classes=["3"], n=8),
        plots.value_histogram(digits.x),
        plots.value_histogram(np.random.default_rng(0).normal(size=(50, 3)), np.arange(50) % 2),
        plots.augmentation_grid(digits.x[0], np.zeros((3, 8, 8, 1), np.float32)),
        plots.report_figure(report),
    ]
    for fig in figures:
        assert isinstance(fig, Figure) and (fig.get_suptitle() or fig.axes[0].get_title())
    grid = figures[0]
    assert all(ax.get_title() == "3" for ax in grid.axes if ax.get_images())


def test_sample_grid_draws_tabular_rows_as_a_heatmap_grouped_by_class():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    fig = plots.sample_grid(x, y, class_names=["a", "b"], feature_names=["u", "v", "w"], n=6)
    ax = fig.axes[0]
    assert ax.get_images()[0].get_array().shape == (6, 3)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["u", "v", "w"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "a", "a", "b", "b", "b"]
    assert ax.get_title() == "Samples: 6 of 40 rows"


# ---- widgets (headless) ----------------------------------------------------------------------


def test_sample_grid_widget_refreshes_on_class_change(digits):
    view = SampleGrid(digits.x, digits.y, digits.class_names, n=8)
    first = view.png
    assert first.startswith(b"\x89PNG")
    view.set(classes=7)  # as if picked in the dropdown
    assert view.png.startswith(b"\x89PNG") and view.png != first
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()
    view.close()


def test_report_view_and_augmentation_preview(digits):
    report = analyze(digits.x, digits.y, class_names=digits.class_names)
    view = DataReportView(report)
    assert "constant features" in view.html and view.png.startswith(b"\x89PNG")
    view.close()
    preview = AugmentationPreview(digits.x[0], n=4)
    first = preview.png
    preview.set(strength=2.0)
    assert preview.png.startswith(b"\x89PNG") and preview.png != first
    assert preview.widget.children[0] is preview.controls["strength"]
    preview.close()


def test_near_duplicates_across_splits_are_counted_beside_exact_ones():
    x = np.array([[0.0, 0.5, 1.0], [0.2, 0.9, 0.3], [0.01, 0.51, 0.99], [0.2, 0.9, 0.3]])
    splits = {"train": [0, 1], "test": [2, 3]}
    assert analyze(x, np.array([0, 1, 0, 1]), splits).near_leakage == {}  # tables: exact only
    x = x.reshape(4, 1, 3)  # as images: near-duplicates count
    report = analyze(x, np.array([0, 1, 0, 1]), splits)
    assert report.leakage == {"train/test": 1}  # row 3 is an exact copy of row 1
    assert report.near_leakage == {"train/test": 2}  # row 2 is row 0, slightly changed
    assert "near-duplicate leakage train/test: 1 more samples of the second split" in " ".join(
        report.warnings
    )
    assert {"check": "near leakage train/test", "value": 2} in report.table()
