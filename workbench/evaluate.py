"""How good is the trained model, and where does it fail? Metrics beyond one number.

    ev = evaluate(model, version, card)          # the test split, batched predictions
    ev.metrics, ev.confusion, ev.per_class, ev.worst, ev.calibration

Classification: accuracy, a confusion matrix (per label 2x2 for multilabel), precision /
recall / F1 per class, the examples with the highest loss (a gallery of the worst errors) and a
reliability curve (is a 90 %-confident prediction right 90 % of the time? ECE says how far off).
Regression: MAE, RMSE, R^2 and residuals. All from plain NumPy over the model's predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params
from workbench.data import DatasetVersion
from workbench.design import check_model

if TYPE_CHECKING:
    import keras

    from workbench.identify import ProblemCard

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] before a log, as Keras does


@dataclass
class Evaluation:
    """A model's predictions on one split, and what they say."""

    task: str  # binary, multiclass, multilabel or regression
    split: str  # the data split evaluated
    class_names: list[str]  # classes (labels for multilabel), empty for regression
    metrics: dict[str, float]  # accuracy / binary_accuracy / mae, rmse ... and loss
    y_true: np.ndarray  # (n,) labels, (n, L) 0/1 for multilabel, (n,) or (n, T) targets
    y_pred: np.ndarray  # (n, units) model outputs: probabilities, or values for regression
    losses: np.ndarray  # (n,) each example's loss
    worst: np.ndarray  # indices into the split, highest loss first
    confusion: np.ndarray | None = None  # (k, k) true x predicted; (L, 2, 2) for multilabel
    per_class: dict[str, np.ndarray] | None = None  # precision, recall, f1, support per class
    calibration: dict[str, Any] | None = None  # per bin: confidence, accuracy, count; and ece
    residuals: np.ndarray | None = None  # regression: y_true - y_pred, (n,) or (n, T)

    @property
    def predicted(self) -> np.ndarray:
        """Predicted labels (classification) or values (regression)."""
        return _labels(self.task, self.y_pred)

    def __repr__(self) -> str:
        n = len(self.y_true)
        lines = [f"Evaluation({self.split} split, {self.task}, {n} examples)"]
        lines.append("  metrics:  " + ", ".join(f"{k} {v:.4f}" for k, v in self.metrics.items()))
        if self.per_class is not None and self.class_names:
            f1 = self.per_class["f1"]
            i = int(np.argmin(f1))
            lines.append(f"  weakest:  {self.class_names[i]!r} (F1 {f1[i]:.3f})")
        if self.calibration is not None:
            c = self.calibration
            lines.append(f"  calibration: ECE {c['ece']:.4f} over {len(c['count'])} bins")
        lines.append(f"  worst:    examples {self.worst[:8].tolist()} (highest loss first)")
        return "\n".join(lines)


def predict(model: keras.Model, version: DatasetVersion, split: str = "test", *, batch_size=256):
    """(y_true, outputs) over a split, batch by batch with `predict_on_batch` (no per-call
    overhead of `predict`, no per-sample calls)."""
    from workbench.data.serving import feed

    params.check_int("batch_size", batch_size, minimum=1)
    batches = feed(version, split, batch_size=batch_size, shuffle=False)
    outs = [np.asarray(model.predict_on_batch(batches[i][0])) for i in range(len(batches))]
    y_pred = np.concatenate(outs) if outs else np.zeros((0, model.output_shape[-1]), "float32")
    return batches.y, y_pred.reshape(len(batches.y), -1)  # (n, units)


def evaluate(
    model: keras.Model,
    version: DatasetVersion,
    card: ProblemCard,
    *,
    split: str = "test",
    bins: int = 10,
    top: int = 16,
) -> Evaluation:
    """Metrics, confusion, per-class scores, worst errors and calibration of `model` on `split`."""
    params.check_int("bins", bins, minimum=1)
    params.check_int("top", top, minimum=1)
    check_model(model, card, version)
    y_true, y_pred = predict(model, version, split)
    task = card.task
    losses = per_example_loss(task, y_true, y_pred)
    ev = Evaluation(
        task,
        split,
        list(card.class_names),
        {},
        y_true,
        y_pred,
        losses,
        np.argsort(-losses, kind="stable")[:top],
    )
    if task == "regression":
        truth = y_true.reshape(len(y_true), -1)  # (n, T)
        res = truth - y_pred
        ss_tot = float(((truth - truth.mean(axis=0)) ** 2).sum())
        ev.metrics = {
            "mae": float(np.abs(res).mean()),
            "rmse": float(np.sqrt((res**2).mean())),
            "r2": 1.0 - float((res**2).sum()) / ss_tot if ss_tot else float("nan"),
        }
        ev.residuals = res[:, 0] if res.shape[1] == 1 else res
    else:
        pred = _labels(task, y_pred)
        if task == "multilabel":
            truth = y_true.astype(int)  # (n, L)
            ev.confusion = np.stack(
                [confusion_matrix(truth[:, j], pred[:, j], 2) for j in range(truth.shape[1])]
            )  # (L, 2, 2)
            ev.per_class = scores(ev.confusion[:, ::-1, ::-1])  # the positive class first
            ev.metrics = {
                "binary_accuracy": float((pred == truth).mean()),
                "exact_match": float((pred == truth).all(axis=1).mean()),
                "macro_f1": float(ev.per_class["f1"].mean()),
            }
            correct = (pred == truth).ravel()
        else:
            truth = y_true.astype(int)  # (n,)
            ev.confusion = confusion_matrix(truth, pred, max(card.num_outputs, 2))
            ev.per_class = scores(ev.confusion)
            ev.metrics = {
                "accuracy": float((pred == truth).mean()),
                "macro_f1": float(ev.per_class["f1"].mean()),
            }
            correct = pred == truth
        ev.calibration = calibration(confidence(task, y_pred), correct, bins=bins)
    ev.metrics["loss"] = float(losses.mean())
    return ev


def _labels(task: str, y_pred: np.ndarray) -> np.ndarray:
    if task == "multiclass":
        return y_pred.argmax(axis=1)  # (n,)
    if task == "binary":
        return (y_pred[:, 0] >= 0.5).astype(int)  # (n,)
    if task == "multilabel":
        return (y_pred >= 0.5).astype(int)  # (n, L)
    return y_pred[:, 0] if y_pred.shape[1] == 1 else y_pred  # regression values


def confidence(task: str, y_pred: np.ndarray) -> np.ndarray:
    """The probability the model gave its predicted answer (per example; per label for
    multilabel, flattened)."""
    if task == "multiclass":
        return y_pred.max(axis=1)
    p = y_pred.ravel()  # binary (n,), multilabel (n * L,)
    return np.maximum(p, 1.0 - p)


def per_example_loss(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Each example's loss under the task's Keras loss (cross-entropy, or squared error)."""
    if task == "regression":
        return ((y_true.reshape(len(y_true), -1) - y_pred) ** 2).mean(axis=1)
    p = np.clip(y_pred, EPS, 1.0 - EPS)
    if task == "multiclass":
        return -np.log(p[np.arange(len(p)), y_true.astype(int)])
    truth = y_true.reshape(len(y_true), -1)  # binary (n, 1), multilabel (n, L)
    return -(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean(axis=1)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: row = true class, column = predicted class."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return m


def scores(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a (k, k) confusion matrix; from a
    stack of (L, 2, 2) matrices (positive class first), one row per label."""
    if confusion.ndim == 3:
        rows = [scores(m) for m in confusion]
        return {key: np.array([r[key][0] for r in rows]) for key in rows[0]}
    tp = np.diag(confusion).astype(float)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def calibration(conf: np.ndarray, correct: np.ndarray, *, bins: int = 10) -> dict[str, Any]:
    """Reliability curve: in equal-width confidence bins, mean confidence vs accuracy, and the
    expected calibration error ECE = sum over bins of (count / n) * |accuracy - confidence|."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)  # bin of each prediction
    count = np.bincount(which, minlength=bins)
    total_conf = np.bincount(which, weights=conf, minlength=bins)
    total_right = np.bincount(which, weights=np.asarray(correct, float), minlength=bins)
    mean_conf = np.divide(total_conf, count, out=np.full(bins, np.nan), where=count > 0)
    accuracy = np.divide(total_right, count, out=np.full(bins, np.nan), where=count > 0)
    gap = np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_conf))
    ece = float((count * gap).sum() / max(count.sum(), 1))
    return {
        "edges": edges,
        "confidence": mean_conf,
        "accuracy": accuracy,
        "count": count,
        "ece": ece,
    }
