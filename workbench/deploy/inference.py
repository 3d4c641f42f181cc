"""The inference model: the data version's fitted transform as Keras layers before the network.

A client of the exported model sends raw inputs, as the data source gives them: pixels 0..16
(scikit-learn digits) or 0..255 (MNIST) as float32 under the name "images", or one named input
per table column (numbers as float32 with NaN where missing, text as strings with "" where
missing). The model reproduces `Transform.apply` with built-in layers and `keras.ops` only:

    images  Rescaling(1 / scale)
    numbers where(isnan(x), median, x) -> (x - mean) / std, then isnan(x) as 0/1
            for each column that had missing values in training (the missing indicators)
    text    StringLookup(vocabulary, one slot for unseen values) -> a fixed 0/1 table that
            maps each slot to its one-hot row ("" counts as "(missing)", unseen is all zeros)

then the trained network (a copy without optimizer or compile state). Outputs are a dict
({"probabilities": ...} or {"predictions": ...}) because only dict keys survive as output names
in every export format. The saved `.keras` file refers to Keras classes only, so it loads with
`keras.saving.load_model(path, safe_mode=True)` in a process that never imports `workbench`.
Whitespace around text is not stripped here (no Keras layer strips strings, and a Lambda would
not load in safe mode): `Transform.apply` and the service strip it; a direct caller of the
exported model sends categories without it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.config import load_keras
from workbench.data.transform import MISSING_CATEGORY, Transform
from workbench.errors import ServingError
from workbench.task_types import TASKS

if TYPE_CHECKING:
    import keras

IMAGE_INPUT = "images"  # the input name of image models
OUTPUT_NAMES = {"regression": "predictions"}  # every other task's head gives probabilities
PROBABILITIES = "probabilities"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")  # what TF signatures and ONNX names accept


def output_name(task: str) -> str:
    """The name of a single-head model's output: "predictions" (regression), else
    "probabilities" (softmax or sigmoid heads)."""
    return OUTPUT_NAMES.get(task, PROBABILITIES)


def input_names(transform: Transform) -> dict[str, str]:
    """{raw column or "images": input name}. Table columns keep their names where TF Serving
    signatures and ONNX accept them; other characters become "_" ("bill, mm" -> "bill_mm"),
    and a clash gets a number ("x", "x_2")."""
    if transform.kind == "image":
        return {IMAGE_INPUT: IMAGE_INPUT}
    names: dict[str, str] = {}
    for j, column in enumerate(transform.columns):
        base = _NAME_CHARS.sub("_", column["name"]).strip("_.-") or f"column_{j + 1}"
        name, k = base, 2
        while name in names.values():
            name, k = f"{base}_{k}", k + 1
        names[column["name"]] = name
    return names


def describe_input(transform: Transform) -> dict[str, Any]:
    """The "input" block of export.json: what a client sends the exported model."""
    if transform.kind == "image":
        scale = float(transform.scale or 1.0)
        return {
            "kind": "image",
            "name": IMAGE_INPUT,
            "dtype": "float32",
            "shape": [-1, *transform.input_shape],
            "range": [0, int(scale) if scale.is_integer() else scale],
            "description": f"raw pixels 0..{scale:g} (as the data source gives them)",
        }
    names = input_names(transform)
    columns = []
    for c in transform.columns:
        entry = {"name": names[c["name"]], "column": c["name"], "shape": [-1]}
        if c["type"] == "numeric":
            entry.update(dtype="float32", missing="NaN")
        else:
            seen = [v for v in c["categories"] if v != MISSING_CATEGORY]
            entry.update(dtype="string", missing="", categories=seen)
        columns.append(entry)
    return {
        "kind": "tabular",
        "columns": columns,
        "description": (
            "one value per row for each column, as the table holds it: numbers as float32 "
            "(NaN where missing), text as strings ('' where missing; a category not seen in "
            "training is none of them)"
        ),
    }


def raw_inputs(transform: Transform, x: Any) -> dict[str, np.ndarray]:
    """Raw samples as the inference model's inputs: images (N, H, W, C) -> {"images": float32};
    table rows (a version's stored numbers and category codes (N, F), a DataFrame or a list of
    {column: value} dicts) -> one array per column (float32 with NaN, or str with "")."""
    if transform.kind == "image":
        return {IMAGE_INPUT: np.asarray(x, np.float32)}
    import pandas as pd

    if isinstance(x, np.ndarray):
        frame = transform.frame(x)
    else:
        frame = x if isinstance(x, pd.DataFrame) else pd.DataFrame(list(x))
    names, out = input_names(transform), {}
    for c in transform.columns:
        values = frame[c["name"]] if c["name"] in frame else pd.Series([None] * len(frame))
        if c["type"] == "numeric":
            numbers = pd.to_numeric(values, errors="coerce")
            out[names[c["name"]]] = numbers.to_numpy(np.float32, na_value=np.nan)
        else:
            out[names[c["name"]]] = values.astype("string").fillna("").to_numpy(str)
    return out


def inference_model(
    model: keras.Model,
    transform: Transform,
    *,
    class_names: Sequence[str] = (),
    task: str = "multiclass",
) -> keras.Model:
    """`model` (a trained network on transformed inputs) behind `transform` rebuilt as Keras
    layers: a new model that takes raw inputs and returns a dict of named outputs."""
    keras = load_keras()
    if task not in TASKS:
        raise ServingError(f"inference_model: task={task!r}; expected one of {list(TASKS)}.")
    if not isinstance(model, keras.Model):
        raise ServingError(
            f"inference_model: expected a trained keras.Model, got {type(model).__name__}."
        )
    if not isinstance(transform, Transform):
        raise ServingError(
            f"inference_model: expected the data version's Transform, got "
            f"{type(transform).__name__}; pass version.transform."
        )
    want = tuple(transform.output_shape)
    if tuple(model.input_shape[1:]) != want:
        raise ServingError(
            f"inference_model: model {model.name!r} takes inputs of shape "
            f"{tuple(model.input_shape[1:])}, but the transform produces {want}; export the "
            "model with the data version it was trained on."
        )
    network = _plain_copy(model)
    inputs, features = _transform_layers(transform)
    outputs = _named_outputs(network, network(features), task, class_names)
    return keras.Model(inputs, outputs, name=f"{network.name}_inference")


def _plain_copy(model: keras.Model) -> keras.Model:
    """The same layers and weights without the optimizer, the compile state or the training
    classes that `model.keras` of a training run refers to (its learning-rate schedule)."""
    try:
        copy = type(model).from_config(model.get_config())  # uncompiled (clone_model compiles)
    except NotImplementedError as e:
        raise ServingError(
            f"inference_model: cannot copy model {model.name!r} of class "
            f"{type(model).__name__} from its config ({e}); build the network with the "
            "functional API (workbench.design.build) or keras.Sequential."
        ) from e
    copy.set_weights(model.get_weights())
    return copy


def _transform_layers(transform: Transform) -> tuple[dict[str, Any], Any]:
    """(inputs by name, the transformed features tensor) for `transform`."""
    keras = load_keras()
    if transform.kind == "image":
        images = keras.Input(shape=transform.input_shape, dtype="float32", name=IMAGE_INPUT)
        scaled = keras.layers.Rescaling(1.0 / float(transform.scale), name="transform_scale")
        return {IMAGE_INPUT: images}, scaled(images)
    names = input_names(transform)
    inputs = {}
    for c in transform.columns:
        dtype = "float32" if c["type"] == "numeric" else "string"
        inputs[names[c["name"]]] = keras.Input(shape=(), dtype=dtype, name=names[c["name"]])
    numeric = [c for c in transform.columns if c["type"] == "numeric"]
    parts = _numeric_layers(numeric, {names[c["name"]]: inputs[names[c["name"]]] for c in numeric})
    for c in transform.columns:
        if c["type"] == "categorical":
            parts.append(_one_hot(c, inputs[names[c["name"]]], names[c["name"]]))
    if len(parts) == 1:
        return inputs, parts[0]
    return inputs, keras.layers.Concatenate(name="transform_features")(parts)


def _numeric_layers(columns: list[dict[str, Any]], tensors: dict[str, Any]) -> list[Any]:
    """Median imputation and standardisation of the numeric columns, then the missing
    indicators: the first blocks of `Transform.feature_names`."""
    keras = load_keras()
    ops, layers = keras.ops, keras.layers
    if not columns:
        return []
    as_columns = [layers.Reshape((1,), name=f"transform_{n}_column")(t) for n, t in tensors.items()]
    if len(as_columns) == 1:
        x = as_columns[0]  # (batch, 1)
    else:
        x = layers.Concatenate(name="transform_numeric")(as_columns)  # (batch, columns)
    missing = ops.isnan(x)
    filled = ops.where(missing, _constant(columns, "median"), x)
    parts = [
        ops.divide(ops.subtract(filled, _constant(columns, "mean")), _constant(columns, "std"))
    ]
    flagged = [j for j, c in enumerate(columns) if c["indicator"]]
    if flagged:
        indicators = ops.take(missing, np.array(flagged, np.int64), axis=1)
        parts.append(ops.cast(indicators, "float32"))
    return parts


def _constant(columns: list[dict[str, Any]], key: str) -> np.ndarray:
    """One fitted number per column as a float32 constant of the graph (a NumPy argument of a
    `keras.ops` call is saved in the model's config and frozen into every export; a layer's
    constant tensor, such as `Normalization`'s mean, becomes an extra ONNX graph input)."""
    return np.array([c[key] for c in columns], np.float32)


def _one_hot(column: dict[str, Any], text: Any, name: str) -> Any:
    """The one-hot block of a text column over its training categories: StringLookup gives
    slot 0 to unseen values and 1.. to the vocabulary; a fixed 0/1 table maps each slot to its
    row of the block (slot 0: all zeros; "" and "(missing)": the "(missing)" column)."""
    keras = load_keras()
    categories = list(column["categories"])
    columns = [(value, j) for j, value in enumerate(categories)]  # (vocabulary entry, column)
    if MISSING_CATEGORY in categories and "" not in categories:
        # an empty string is a missing value, as the CSV reader reads it
        columns.append(("", categories.index(MISSING_CATEGORY)))
    lookup = keras.layers.StringLookup(
        vocabulary=[value for value, _ in columns],
        num_oov_indices=1,
        output_mode="int",
        name=f"transform_{name}_lookup",
    )
    table = np.zeros((len(columns) + 1, len(categories)), np.float32)  # slot 0: unseen
    for slot, (_, j) in enumerate(columns, start=1):
        table[slot, j] = 1.0
    return keras.ops.take(table, lookup(text), axis=0)  # (batch, categories)


def _named_outputs(network: Any, y: Any, task: str, class_names: Sequence[str]) -> dict[str, Any]:
    """The network's output(s) as a dict: one head is named after the task, several keep
    the network's output names."""
    if isinstance(y, dict):
        return dict(y)
    if isinstance(y, list | tuple):
        return dict(zip(network.output_names, y, strict=True))
    units = int(y.shape[-1])
    if class_names and task in ("multiclass", "multilabel") and len(class_names) != units:
        raise ServingError(
            f"inference_model: {len(class_names)} class names {list(class_names)[:12]} for a "
            f"{task} network with {units} outputs; pass the data version's class_names."
        )
    return {output_name(task): y}
