"""The model amalgamation of figure 3: one shared convolutional bottom, four representations.

    seed_everything(0)
    model = build_amalgam(preset("compact", card), card)
    history = fit_amalgam(model, version, card, epochs=3)   # one loss, one weight per head
    reps = representations(model)          # the four outputs, no training-only head
    served = serving_model(model, version) # raw pixels in, the same four outputs out
    parity = add_head(model, "parity", "low_latent", 2, activation="softmax",
                      loss="sparse_categorical_crossentropy")   # on the frozen amalgam

The bottom is the spec's network up to its pooled feature vector ("encoding"); the heads are
parallel on it:

    input -> bottom -> high_latent (the pooled features)
                         |-> Dense(C)            -> logits      (unnormalised class scores)
                         |-> Dense(A, sigmoid)   -> attributes  (one P(attribute | x) each)
                         '-> Dense(L) linear     -> low_latent  -> Dense(C, softmax)
                                                                   -> low_latent_classes

`low_latent_classes` exists only to train the bottleneck (it gets a loss, the bottleneck does
not). The bottleneck is linear: a learned projection of the pooled features, with nothing to
saturate, which the small softmax classifier then separates by class; distances and
directions in it stay meaningful for downstream tasks and for a 2-D plot of it.
Outputs are a dict, because dict keys are the output names that survive `.keras`,
SavedModel and ONNX export.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params
from workbench.config import load_keras, seed_everything
from workbench.data.transform import ATTRIBUTE_NAMES, digit_attributes
from workbench.design.build import build
from workbench.design.plan import summarize
from workbench.errors import DataError, ParameterError, SpecError

if TYPE_CHECKING:
    import keras

    from workbench.data.versioning import DatasetVersion
    from workbench.design.spec import ModelSpec
    from workbench.identify import ProblemCard

REPRESENTATIONS = ("high_latent", "low_latent", "logits", "attributes")
AUXILIARY = "low_latent_classes"  # training-only classifier on the bottleneck
DESCRIPTIONS = {  # what each output of build_amalgam is
    "high_latent": "the bottom's pooled features (representation 1)",
    "low_latent": "a linear bottleneck on them (representation 2)",
    "logits": "unnormalised class scores; softmax gives P(class | x) (representation 3)",
    "attributes": "one sigmoid per attribute, each P(attribute | x) (representation 4)",
    AUXILIARY: "softmax on the bottleneck: trains it, not served",
}
LOSS_HEADS = ("logits", "attributes", AUXILIARY)  # the outputs that carry a loss
DIGITS = tuple(str(d) for d in range(10))
CLASSIFICATION = ("multiclass", "binary")


# ---- the attributes ------------------------------------------------------------------------


def attribute_names(card: ProblemCard) -> tuple[str, ...]:
    """The independent attributes: digits' four (even, > 4, closed loop, prime), otherwise one
    "is <class>" per class, so the representation exists for any image classification card."""
    check_card(card)
    if card.class_names == DIGITS:
        return ATTRIBUTE_NAMES
    return tuple(f"is {name}" for name in _class_names(card))


def attribute_targets(card: ProblemCard, y: np.ndarray) -> np.ndarray:
    """0/1 float32 targets (N, attributes) of the class labels `y`, columns as `attribute_names`."""
    y = _labels(card, y)
    if card.class_names == DIGITS:
        return digit_attributes(y)  # the class index is the digit
    return np.eye(len(_class_names(card)), dtype=np.float32)[y]


def amalgam_targets(card: ProblemCard, y: np.ndarray) -> dict[str, Any]:
    """The targets of every output: labels for the two classifiers, 0/1 attributes, and None
    for the two latents (no loss; Keras wants an entry per output when metrics are a dict)."""
    y = _labels(card, y)
    targets = {"logits": y, "attributes": attribute_targets(card, y), AUXILIARY: y}
    return {**targets, "high_latent": None, "low_latent": None}


def _class_names(card: ProblemCard) -> tuple[str, ...]:
    return card.class_names or tuple(str(c) for c in range(card.num_outputs))


def _labels(card: ProblemCard, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    n = len(_class_names(card))
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= n or np.any(y != np.round(y)))):
        raise DataError(
            f"Expected class labels as a 1D array of integers 0..{n - 1}, got shape {y.shape} "
            f"with values {np.unique(y)[:12].tolist()}."
        )
    return y.astype(np.int64)


def check_card(card: ProblemCard) -> None:
    """ParameterError unless `card` is an image classification problem (what an amalgam needs)."""
    if card.modality != "image" or card.task not in CLASSIFICATION:
        raise ParameterError(
            f"The amalgamation needs an image classification card (modality 'image', task "
            f"one of {list(CLASSIFICATION)}), got a {card.task} card of {card.modality} data "
            f"(input shape {card.input_shape}): no convolutional bottom or classes to share."
        )


# ---- the model -----------------------------------------------------------------------------


def build_amalgam(
    spec: ModelSpec, card: ProblemCard, *, low_latent_units: int = 8, seed: int = 0
) -> keras.Model:
    """The amalgam of `spec` on `card`, seeded with `seed` (the same seed, the same weights).

    The nested model "bottom" is `build(spec, card)` up to its layer "encoding"; the outputs
    are the four REPRESENTATIONS and the training-only AUXILIARY classifier.
    """
    check_card(card)
    units = params.check_int("low_latent_units", low_latent_units, minimum=2, maximum=16)
    seed_everything(seed)
    keras = load_keras()
    plain = build(spec, card)
    bottom = keras.Model(plain.input, plain.get_layer("encoding").output, name="bottom")
    inputs = keras.Input(shape=card.input_shape, name="inputs")
    features = bottom(inputs)
    dense = keras.layers.Dense
    n_classes, n_attributes = len(_class_names(card)), len(attribute_names(card))
    out = {
        "high_latent": keras.layers.Identity(name="high_latent")(features),
        "low_latent": dense(units, name="low_latent")(features),
        "logits": dense(n_classes, name="logits")(features),
        "attributes": dense(n_attributes, activation="sigmoid", name="attributes")(features),
    }
    out[AUXILIARY] = dense(n_classes, activation="softmax", name=AUXILIARY)(out["low_latent"])
    return keras.Model(inputs, out, name=f"{spec.name}_amalgam")


def representations(model: keras.Model) -> keras.Model:
    """The serving view of an amalgam: the same layers and weights, the four outputs only.
    (Keras exports only a model that has run: `predict_on_batch` once before `export`.)"""
    keras = load_keras()
    outputs = model.output if isinstance(model.output, dict) else {}
    missing = [name for name in REPRESENTATIONS if name not in outputs]
    if missing:
        raise ParameterError(
            f"representations: model {model.name!r} has no outputs {missing} (it has "
            f"{sorted(outputs)}); expected an amalgam from build_amalgam."
        )
    reps = {name: outputs[name] for name in REPRESENTATIONS}
    return keras.Model(model.input, reps, name=f"{model.name}_representations")


def serving_model(model: keras.Model, version: DatasetVersion) -> keras.Model:
    """The representations behind `version`'s transform as Keras layers: raw inputs in (as
    the data source gives them, input "images"), the four named outputs out."""
    from workbench.deploy.inference import inference_model

    reps = representations(model)
    return inference_model(reps, version.transform, task=version.task)


# ---- training ------------------------------------------------------------------------------


def compile_amalgam(
    model: keras.Model,
    *,
    loss_weights: dict[str, float] | None = None,
    learning_rate: float = 2e-3,
) -> keras.Model:
    """Compile `model` with one loss per head, weighted by `loss_weights` (default 1 each; keys
    from LOSS_HEADS), Adam at `learning_rate`, and each head's accuracy. Returns `model`."""
    keras = load_keras()
    weights = {name: 1.0 for name in LOSS_HEADS}
    for name, w in (loss_weights or {}).items():
        params.check_choice("loss_weights key", name, LOSS_HEADS)
        weights[name] = params.check_number(f"loss_weights[{name!r}]", w, minimum=0.0)
    losses = {
        "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "attributes": keras.losses.BinaryCrossentropy(),
        AUXILIARY: keras.losses.SparseCategoricalCrossentropy(),
    }
    metrics = {"logits": ["accuracy"], "attributes": ["binary_accuracy"], AUXILIARY: ["accuracy"]}
    no_loss = {"high_latent": None, "low_latent": None}  # Keras 3.15 wants every output named
    lr = params.check_number("learning_rate", learning_rate, minimum=0.0, exclusive_minimum=True)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss={**losses, **no_loss},
        loss_weights={**weights, **no_loss},
        metrics={**metrics, **no_loss},
    )
    return model


def fit_amalgam(
    model: keras.Model,
    version: DatasetVersion,
    card: ProblemCard,
    *,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
    verbose: int = 0,
    loss_weights: dict[str, float] | None = None,
) -> dict[str, list[float]]:
    """Train all heads jointly on `version`'s train split (validated on its val split, if any)
    and return the history: per head its loss and accuracy, "val_" prefixed for validation."""
    epochs = params.check_int("epochs", epochs, minimum=1)
    batch_size = params.check_int("batch_size", batch_size, minimum=1)
    params.check_choice("verbose", verbose, (0, 1, 2))
    got = (version.task, tuple(version.class_names), tuple(version.transform.output_shape))
    want = (card.task, _class_names(card), tuple(model.input_shape[1:]))
    if got != want:
        raise SpecError(
            f"Data version {version.id!r} has (task, classes, input shape) {got}, but the card "
            f"and the model expect {want}; train on the data version of the card."
        )
    compile_amalgam(model, loss_weights=loss_weights)
    seed_everything(seed)  # the shuffling order

    def split(name: str) -> tuple[np.ndarray, dict[str, Any]]:
        x, y = version.split(name)
        return version.transform.apply(x), amalgam_targets(card, y)

    x_val, y_val = split("val")
    history = model.fit(
        *split("train"),
        batch_size=batch_size,
        epochs=epochs,
        validation_data=(x_val, y_val) if len(x_val) else None,
        shuffle=True,
        verbose=verbose,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}


def head_accuracies(history: dict[str, list[float]]) -> list[dict[str, Any]]:
    """The last epoch's accuracy of each head with a loss, on train and on validation, from
    `fit_amalgam`'s history (one row per head; validation None without a val split)."""
    rows = []
    for key in (k for k in history if k.endswith("accuracy") and not k.startswith("val_")):
        validation = history.get(f"val_{key}")
        rows.append({
            "head": key.rsplit("_", 1)[0].removesuffix("_binary"), "train": history[key][-1],
            "validation": validation[-1] if validation else None,
        })  # fmt: skip
    return rows


# ---- downstream heads ----------------------------------------------------------------------


def add_head(
    model: keras.Model,
    name: str,
    on: str,
    layer_or_units: Any,
    *,
    activation: str | None = None,
    loss: Any,
    metrics: Sequence[Any] = (),
    learning_rate: float = 1e-3,
) -> keras.Model:
    """A compiled model: input -> the frozen amalgam -> representation `on` -> a new head.

    `layer_or_units` is a Keras layer or a number of Dense units (with `activation`). The
    output is {name: head}, so `head_model.fit(x, y)` trains the new head only. The amalgam is
    called with training=False (BatchNorm keeps its moving statistics) and its layers, shared
    with `model`, are set `trainable=False` before compiling (Keras fixes the trainable weights
    when it compiles): `model` stays frozen too until `model.trainable = True` and a recompile.
    """
    keras = load_keras()
    params.check_choice("on", on, REPRESENTATIONS)
    params.check_str("name", name)
    if name in (*REPRESENTATIONS, AUXILIARY):
        raise ParameterError(
            f"Parameter 'name': expected a new head's name, got {name!r}, which the amalgam "
            f"already uses for {'a representation' if name in REPRESENTATIONS else 'training'}."
        )
    if isinstance(layer_or_units, keras.layers.Layer):
        head = layer_or_units
    else:
        units = params.check_int("layer_or_units", layer_or_units, minimum=1)
        head = keras.layers.Dense(units, activation=activation, name=name)
    frozen = representations(model)
    frozen.trainable = False
    inputs = keras.Input(shape=model.input_shape[1:], name="inputs")
    reps = frozen(inputs, training=False)
    head_model = keras.Model(inputs, {name: head(reps[on])}, name=f"{model.name}_{name}")
    lr = params.check_number("learning_rate", learning_rate, minimum=0.0, exclusive_minimum=True)
    head_model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss={name: loss},
        metrics={name: list(metrics)},
    )
    return head_model


# ---- cost ----------------------------------------------------------------------------------


def amalgam_cost(
    spec: ModelSpec, card: ProblemCard, *, low_latent_units: int = 8
) -> dict[str, dict[str, int]]:
    """Parameters and multiply-adds per example of the plain classifier (`build(spec, card)`),
    the shared bottom, each head (Dense: (in + 1) * out parameters, in * out MACs) and the
    whole amalgam, from the spec's summary: pure Python, no Keras."""
    check_card(card)
    rows = summarize(spec, card).rows
    end = [r.name for r in rows].index("encoding") + 1
    bottom = {"params": sum(r.params for r in rows[:end]), "macs": sum(r.macs for r in rows[:end])}
    width, classes = rows[end - 1].output_shape[-1], len(_class_names(card))
    shapes = {
        "low_latent": (width, low_latent_units),
        "logits": (width, classes),
        "attributes": (width, len(attribute_names(card))),
        AUXILIARY: (low_latent_units, classes),
    }
    heads = {k: {"params": (i + 1) * o, "macs": i * o} for k, (i, o) in shapes.items()}
    parts = [bottom, *heads.values()]
    total = {k: sum(p[k] for p in parts) for k in ("params", "macs")}
    plain = {"params": sum(r.params for r in rows), "macs": sum(r.macs for r in rows)}
    return {"plain": plain, "bottom": bottom, **heads, "amalgam": total}
