"""Build the Keras model of a spec: the plan's layers, wired with the functional API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.config import load_keras
from workbench.design.plan import summarize
from workbench.design.spec import ModelSpec

if TYPE_CHECKING:
    import keras

    from workbench.problem import ProblemCard


def build(spec: ModelSpec, card: ProblemCard) -> keras.Model:
    """A `keras.Model` for `spec` on `card` (SpecError before any Keras work if it cannot be built).

    Layers are named by section ("stem_conv1", "learner_g1_b1_conv", "task_pool"), and the
    reusable representations by what they are: `model.get_layer("encoding")`, "embedding",
    "logits" (pre-activation) and "probabilities" ("outputs" for regression).
    """
    keras = load_keras()
    rows = summarize(spec, card).rows  # validates from shapes first
    tensors = {}
    for row in rows:
        if row.kind == "InputLayer":
            tensors[row.name] = keras.Input(shape=row.output_shape, name=row.name)
            continue
        layer = getattr(keras.layers, row.kind)(name=row.name, **row.config)
        args = [tensors[name] for name in row.inputs]
        tensors[row.name] = layer(args if len(args) > 1 else args[0])  # Add takes a list
    return keras.Model(tensors[rows[0].name], tensors[rows[-1].name], name=spec.name)
