"""Evaluation on all four task types, its metric helpers, and the stage's figures."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import card_for_version
from matplotlib.figure import Figure

from workbench.data import prepare
from workbench.design import Group, ModelSpec, Stem, Task, build, preset
from workbench.errors import ParameterError, SpecError
from workbench.evaluate import calibration, confusion_matrix, evaluate, scores
from workbench.plots.train import (
    compare_runs,
    plot_confusion,
    plot_history,
    plot_per_class,
    plot_reliability,
    plot_residuals,
    plot_worst_errors,
)

TINY = ModelSpec(
    name="tiny",
    stem=Stem(filters=(4,)),
    groups=(Group(4, 1, "conv", "pool"),),
    task=Task(pooling="avg"),
    batch_norm=False,
)
CASES = {  # task -> data source (an untrained model is enough to check shapes and sums)
    "multiclass": "digits",
    "binary": "sklearn:breast_cancer",
    "multilabel": "digits",
    "regression": "sklearn:diabetes",
}


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("evaluate")
    out = {}
    for task, source in CASES.items():
        version = prepare(source, run_dir=run_dir, task=task)
        card = card_for_version(version)
        spec = TINY if card.modality == "image" else preset("tabular", card)
        model = build(spec, card)
        out[task] = (evaluate(model, version, card, top=8), version, card, model)
    return out


def titled(fig: Figure) -> bool:
    titles = [ax.get_title() for ax in fig.axes] + [
        fig._suptitle.get_text() if fig._suptitle else ""
    ]
    return any(titles)


def test_multiclass(evaluations):
    ev, version, card, _ = evaluations["multiclass"]
    n = len(version.split("test")[1])
    assert ev.confusion.shape == (10, 10) and ev.confusion.sum() == n
    assert ev.y_pred.shape == (n, 10) and ev.losses.shape == (n,)
    assert set(ev.metrics) == {"accuracy", "macro_f1", "loss"}
    assert ev.metrics["accuracy"] == pytest.approx(np.trace(ev.confusion) / n)
    assert ev.per_class["f1"].shape == (10,) and ev.per_class["support"].sum() == n
    assert len(ev.worst) == 8 and ev.losses[ev.worst[0]] == ev.losses.max()
    assert np.all(np.diff(ev.losses[ev.worst]) <= 0)  # highest loss first
    cal = ev.calibration
    assert len(cal["count"]) == 10 and cal["count"].sum() == n and 0 <= cal["ece"] <= 1
    assert repr(ev).startswith(f"Evaluation(test split, multiclass, {n} examples)")


def test_binary(evaluations):
    ev, version, _, _ = evaluations["binary"]
    n = len(version.split("test")[1])
    assert ev.confusion.shape == (2, 2) and ev.confusion.sum() == n
    assert ev.predicted.shape == (n,) and set(np.unique(ev.predicted)) <= {0, 1}
    assert ev.calibration["count"].sum() == n


def test_multilabel_has_per_label_metrics(evaluations):
    ev, version, card, _ = evaluations["multilabel"]
    n = len(version.split("test")[1])
    assert ev.confusion.shape == (4, 2, 2) and (ev.confusion.sum(axis=(1, 2)) == n).all()
    assert ev.per_class["precision"].shape == (4,)
    assert {"binary_accuracy", "exact_match", "macro_f1", "loss"} == set(ev.metrics)
    assert ev.calibration["count"].sum() == n * 4  # one confidence per label
    assert ev.class_names == list(card.class_names)


def test_regression_has_mae_rmse_and_residuals(evaluations):
    ev, version, _, model = evaluations["regression"]
    x, y = version.split("test")
    assert ev.residuals.shape == (len(y),) and ev.confusion is None and ev.calibration is None
    pred = model.predict_on_batch(version.transform.apply(x))[:, 0]
    assert ev.metrics["mae"] == pytest.approx(np.abs(y - pred).mean(), rel=1e-4)
    assert ev.metrics["rmse"] == pytest.approx(np.sqrt(((y - pred) ** 2).mean()), rel=1e-4)


def test_metric_helpers_on_known_values():
    m = confusion_matrix(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    s = scores(m)
    np.testing.assert_allclose(s["precision"], [0.5, 2 / 3, 0.0])
    np.testing.assert_allclose(s["recall"], [0.5, 1.0, 0.0])
    cal = calibration(np.array([0.95, 0.95, 0.55, 0.55]), np.array([1, 1, 1, 0]), bins=2)
    np.testing.assert_array_equal(cal["count"], [0, 4])  # all in the upper half
    assert cal["ece"] == pytest.approx(abs(0.75 - 0.75))
    cal = calibration(np.array([0.9, 0.9]), np.array([0, 0]), bins=10)
    assert cal["ece"] == pytest.approx(0.9)  # confident and always wrong


def test_bad_inputs(evaluations):
    ev, version, card, model = evaluations["multiclass"]
    with pytest.raises(ParameterError, match="Parameter 'bins': expected an integer >= 1"):
        evaluate(model, version, card, bins=0)
    _, tab_version, tab_card, _ = evaluations["binary"]
    with pytest.raises(SpecError, match="task 'multiclass' but data version"):
        evaluate(model, tab_version, card)
    with pytest.raises(SpecError, match=r"takes inputs of shape \(8, 8, 1\)"):
        evaluate(model, tab_version, tab_card)


def test_figures(evaluations):
    history = {"loss": [1.0, 0.6, 0.5], "accuracy": [0.5, 0.7, 0.8],
               "val_loss": [1.1, 0.7, 0.8], "val_accuracy": [0.4, 0.7, 0.7]}  # fmt: skip
    fig = plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert any("best epoch (2)" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert [list(ax.get_xticks()) for ax in fig.axes] == [[1, 2, 3]] * 2  # one tick per epoch
    figures = [fig]
    for task, (ev, version, _, _) in evaluations.items():
        figures.append(plot_worst_errors(ev, version, n=6))
        if task == "regression":
            figures.append(plot_residuals(ev))
        else:
            figures += [plot_confusion(ev), plot_per_class(ev), plot_reliability(ev)]
    runs = [{"name": "a", "status": "FINISHED", "test_accuracy": 0.9},
            {"name": "b", "status": "FINISHED", "test_accuracy": 0.95}]  # fmt: skip
    figures.append(compare_runs(runs))
    for fig in figures:
        assert isinstance(fig, Figure) and titled(fig)
        labelled = [ax for ax in fig.axes if ax.get_xlabel() or ax.get_ylabel()]
        assert labelled or not any(ax.axison for ax in fig.axes)
    ev = evaluations["regression"][0]
    with pytest.raises(ValueError, match="regression evaluation has no confusion matrix"):
        plot_confusion(ev)


def test_compare_runs_compares_validation_numbers_by_default():
    runs = [{"name": "a", "selected_val_accuracy": 0.91, "test_accuracy": 0.97},
            {"name": "b", "selected_val_accuracy": 0.95, "test_accuracy": 0.93}]  # fmt: skip
    bars = compare_runs(runs).axes[1]
    assert bars.get_xlabel() == "selected_val_accuracy"
    assert [p.get_width() for p in bars.patches] == [0.91, 0.95]
    regression = compare_runs([{"name": "r", "selected_val_mae": 40.0, "test_mae": 38.0}])
    assert regression.axes[1].get_xlabel() == "selected_val_mae"
    assert compare_runs(runs, metric="test_accuracy").axes[1].get_xlabel() == "test_accuracy"


@pytest.mark.parametrize("n", [1, 8, 28])
def test_learning_curves_have_whole_epoch_ticks(n):
    history = {"loss": list(np.linspace(2, 0.1, n)), "val_loss": list(np.linspace(2, 0.2, n))}
    ticks = plot_history(history).axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)
    if n <= 15:
        assert list(ticks) == list(range(1, n + 1))


def test_reliability_legend_names_what_bars_and_points_are(evaluations):
    fig = plot_reliability(evaluations["multiclass"][0])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "one bin: x = its mean confidence, y = its accuracy" in labels
    assert "accuracy of the bin's predictions" in labels
    assert "perfectly calibrated (accuracy = confidence)" in labels
