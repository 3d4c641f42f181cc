"""Build the Keras model of a spec: the plan's layers, wired with the functional API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.config import load_keras
from workbench.design.plan import summarize
from workbench.design.spec import ModelSpec
from workbench.errors import SpecError

if TYPE_CHECKING:
    import keras

    from workbench.data.versioning import DatasetVersion
    from workbench.identify import ProblemCard


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


def check_model(model, card: ProblemCard, version: DatasetVersion) -> None:
    """SpecError unless `model` takes `version`'s inputs and has `card`'s head, and the card
    and the data version are about the same task."""
    if card.task != version.task:
        raise SpecError(
            f"The problem card is for task {card.task!r} but data version {version.id!r} has "
            f"task {version.task!r}. Prepare the data with task={card.task!r}."
        )
    want_in = tuple(version.transform.output_shape)
    got_in = tuple(model.input_shape[1:])
    if got_in != want_in:
        raise SpecError(
            f"Model {model.name!r} takes inputs of shape {got_in}, but data version "
            f"{version.id!r} feeds {want_in}. Build the model for this data's card."
        )
    want_out = (card.head.units,)
    got_out = tuple(model.output_shape[1:])
    if got_out != want_out:
        raise SpecError(
            f"Model {model.name!r} outputs shape {got_out}, but a {card.task} card with "
            f"{card.num_outputs} output(s) needs {want_out} ({card.head.activation} head). "
            "Build the model with workbench.design.build(spec, card)."
        )
