"""From a trained amalgam to figure 3's served pipeline: its outputs per split, every task's
head fitted on them, and the components saved and wired by a config.

    data = task_data(version, card, seed=0)         # raw and transformed splits, OOD patches
    reps = encode_splits(model, data)               # {split: {representation: (N, width)}}
    heads = fit_heads(reps, data.y, card, seed=0)   # each task's numbers; a Keras pair head
    config = assemble(run.dir / "amalgam", model, version, heads)  # components, pipeline.json
    pipeline = load_pipeline(config)                # raw images -> every task's outputs

Each head is fitted where the task's rule says: the search index and the OOD class means on
the training split, the temperature, the tag thresholds and the OOD threshold on validation.
The test split fits nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params
from workbench.amalgam import ood
from workbench.amalgam.model import attribute_targets, check_card
from workbench.amalgam.pipeline import save_component, save_representations, write_config
from workbench.amalgam.tasks import (
    PAIR_TASKS,
    fit_pair_classifier,
    fit_temperature,
    fit_thresholds,
)
from workbench.config import load_keras, quiet_logger
from workbench.errors import DataError

if TYPE_CHECKING:
    import keras

    from workbench.data.versioning import DatasetVersion
    from workbench.identify import ProblemCard

SPLITS = ("train", "val", "test")
# the served tasks: name -> (component kind, the representation it is fed)
TASKS = {
    "search": ("search", "high_latent"),
    "ood": ("ood", "low_latent"),
    "classes": ("calibrate", "logits"),
    "tags": ("tags", "attributes"),
    "pair": ("pair", "low_latent"),
}


@dataclass(frozen=True)
class TaskData:
    """The inputs of every task: raw images per split (as clients send them) and "ood" (photo
    patches as bright as the test digits), the same transformed for the model, labels per split."""

    raw: dict[str, np.ndarray]
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]


def task_data(
    version: DatasetVersion, card: ProblemCard, *, seed: int, n_ood: int | None = None
) -> TaskData:
    """`version`'s splits and `n_ood` (default: as many as test images) out-of-distribution
    patches of scikit-learn's sample photographs at the card's image size, each matched to the
    mean intensity of a random test digit, in the data's raw range (ood.patches)."""
    check_card(card)
    raw = {s: version.split(s) for s in SPLITS}
    n = params.check_int("n_ood", n_ood if n_ood is not None else len(raw["test"][1]), minimum=1)
    patches = ood.patches(
        n, card.input_shape[0], seed=seed, match_mean=ood.mean_intensity(raw["test"][0]),
        value_range=(0.0, float(version.transform.scale)),
    )  # fmt: skip
    images = {s: np.asarray(xy[0], np.float32) for s, xy in raw.items()} | {"ood": patches}
    x = {s: version.transform.apply(v) for s, v in images.items()}
    return TaskData(images, x, {s: np.asarray(xy[1]).astype(int) for s, xy in raw.items()})


def encode(model: keras.Model, x: np.ndarray, *, batch: int = 256) -> dict[str, np.ndarray]:
    """A dict-output model's outputs on `x`, `batch` rows per `predict_on_batch` call."""
    batch = params.check_int("batch", batch, minimum=1)
    if not len(x):
        raise DataError("encode: expected at least one input row, got none.")
    with quiet_logger("tensorflow"):  # a new model or batch size traces a graph: expected
        parts = [model.predict_on_batch(x[i : i + batch]) for i in range(0, len(x), batch)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def encode_splits(model: keras.Model, data: TaskData) -> dict[str, dict[str, np.ndarray]]:
    """The amalgam's four representations (`representations(model)`) on every split of `data`."""
    from workbench.amalgam.model import representations

    reps = representations(model)
    return {split: encode(reps, x) for split, x in data.x.items()}


# ---- the pair head ---------------------------------------------------------------------------


def pair_head(width: int, *, task: str = "same", hidden: int = 64) -> keras.Model:
    """A Keras head on two embeddings "a" and "b" (width each) joined as [a, b, |a - b|, a * b]
    (tasks.combine, inside the graph, so ONNX takes only "a" and "b"), one hidden ReLU layer,
    then "same" (P(the same digit), a sigmoid) or "sum" (19 softmax probabilities of
    a + b = 0..18). Untrained: `fit_pair_head` gives it task 5's weights."""
    keras = load_keras()
    params.check_choice("task", task, PAIR_TASKS)
    width = params.check_int("width", width, minimum=1)
    hidden = params.check_int("hidden", hidden, minimum=1)
    a, b = keras.Input((width,), name="a"), keras.Input((width,), name="b")
    joined = keras.layers.Concatenate(name="combine")([a, b, keras.ops.abs(a - b), a * b])
    z = keras.layers.Dense(hidden, activation="relu", name="hidden")(joined)
    if task == "same":
        out = keras.ops.squeeze(keras.layers.Dense(1, "sigmoid", name="out")(z), axis=-1)
    else:
        out = keras.layers.Dense(19, activation="softmax", name="out")(z)
    return keras.Model({"a": a, "b": b}, {task: out}, name=f"pair_{task}")


def fit_pair_head(
    z_train: np.ndarray, y_train: np.ndarray, *, task: str = "same", n_pairs: int = 4000,
    seed: int = 0,
) -> keras.Model:  # fmt: skip
    """`pair_head` holding tasks.fit_pair_classifier (the MLP on `n_pairs` pairs of the
    training split that task 5 scores): its scaler folded into the hidden layer
    (W / scale, b - (mean / scale) W) and its output layer copied, so the served head answers
    as the scored classifier does, to float32 rounding, without a second training."""
    z = np.asarray(z_train, np.float32)
    if z.ndim != 2 or len(z) != len(y_train):
        raise DataError(f"fit_pair_head: {z.shape} embeddings for {len(y_train)} labels.")
    clf = fit_pair_classifier(z, y_train, task=task, n_pairs=n_pairs, seed=seed)
    scaler, mlp = clf[0], clf[-1]  # the pipeline's StandardScaler and MLPClassifier
    w, b = mlp.coefs_[0] / scaler.scale_[:, None], mlp.intercepts_[0]
    b = b - (scaler.mean_ / scaler.scale_) @ mlp.coefs_[0]
    head = pair_head(z.shape[1], task=task, hidden=w.shape[1])
    head.get_layer("hidden").set_weights([w, b])
    w, b = mlp.coefs_[1], mlp.intercepts_[1]
    if task == "sum":  # a sum absent from the training pairs gets no probability
        out_w, out_b = np.zeros((w.shape[0], 19)), np.full(19, -1e4)
        out_w[:, mlp.classes_], out_b[mlp.classes_] = w, b
        w, b = out_w, out_b
    head.get_layer("out").set_weights([w, b])
    return head


# ---- every task's head -------------------------------------------------------------------------


def fit_heads(
    reps: Mapping[str, Mapping[str, np.ndarray]], y: Mapping[str, np.ndarray], card: ProblemCard,
    *, k: int = 5, ood_quantile: float = 0.95, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Each served task's head from the representations per split (`encode_splits`):

    - "search": the training high latents and labels as the index, `k` neighbours;
    - "ood": class means and shared covariance of the training low latents (Mahalanobis), and
      the threshold that passes the `ood_quantile` share of validation digits;
    - "classes": the temperature of the logits with the lowest validation NLL;
    - "tags": per attribute the threshold with the best validation F1;
    - "pair": a Keras `pair_head` ("same digit?"): task 5's classifier on pairs of training
      low latents (fitted once: the same call in the notebook's task-5 cell returns it).
    """
    k = params.check_int("k", k, minimum=1)
    q = params.check_number("ood_quantile", ood_quantile, minimum=0.5, maximum=1.0)
    tr, va = reps["train"], reps["val"]
    y_tr, y_va = np.asarray(y["train"]).astype(int), np.asarray(y["val"]).astype(int)
    if not len(y_va):
        raise DataError(
            "fit_heads: the data version has no validation split, and the temperature, the "
            "tag thresholds and the OOD threshold are chosen on validation (never on test). "
            "Prepare the data with a validation share above 0."
        )
    maha = ood.fit_mahalanobis(tr["low_latent"], y_tr)
    threshold = float(np.quantile(maha.score(va["low_latent"]), q))
    return {
        "search": {"index": tr["high_latent"], "labels": y_tr, "k": k},
        "ood": {"means": maha.means, "precision": maha.precision, "threshold": threshold},
        "classes": {"temperature": fit_temperature(va["logits"], y_va)},
        "tags": {"thresholds": fit_thresholds(va["attributes"], attribute_targets(card, y_va))},
        "pair": fit_pair_head(tr["low_latent"], y_tr, seed=seed),
    }


def save_heads(
    store: str | Path, heads: Mapping[str, Any], widths: Mapping[str, int], *, fmt: str = "onnx"
) -> dict[str, tuple[Path, str]]:
    """Save each of `heads` (fit_heads) as a component of `store`: {task: (its folder, the
    representation it is fed)}. `widths`: each representation's width (the logits' is needed:
    a temperature alone does not say how many classes it scales); `fmt`: a Keras head's
    artifact, "onnx" (a service that loads only ONNX never imports Keras) or "keras"."""
    unknown = sorted(set(heads) - set(TASKS))
    if unknown:
        raise DataError(f"save_heads: unknown tasks {unknown}; expected some of {list(TASKS)}.")
    saved = {}
    for task, head in heads.items():
        kind, rep = TASKS[task]
        if kind == "pair":
            folder = save_component(store, task, kind, model=head, fmt=fmt)
        else:
            inputs = {rep: [int(widths[rep])]} if kind == "calibrate" else None
            folder = save_component(store, task, kind, numbers=head, inputs=inputs)
        saved[task] = (folder, rep)
    return saved


def assemble(
    folder: str | Path, model: keras.Model, version: DatasetVersion, heads: Mapping[str, Any],
    *, fmt: str = "onnx",
) -> Path:  # fmt: skip
    """Save the amalgam's serving view (raw inputs -> four representations, as `fmt`: "onnx"
    or "keras") and every head as components of `<folder>/components`, and write
    `<folder>/pipeline.json` wiring them; returns the config's path."""
    folder = Path(folder)
    store = folder / "components"
    reps = save_representations(store, model, version, fmt=fmt)
    widths = {name: int(t.shape[-1]) for name, t in model.output.items()}
    return write_config(folder / "pipeline.json", reps, save_heads(store, heads, widths, fmt=fmt))
