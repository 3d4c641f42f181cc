"""Stage 2: design the model as data (stem -> learner -> task), inspect it, then build it.

spec = preset("compact", card)           # a ModelSpec adapted to the card's input
summary = summarize(spec, card)          # layers, params, MACs: pure Python, no Keras
print(layer_cost(summary, "stem_conv1")) # one layer's parameter and MAC formulas, filled in
print(keras_code(spec, card))            # the same model as plain Keras functional-API code
model = build(spec, card)                # the keras.Model, with named representations
save_spec(spec, run.dir)                 # <run_dir>/design/spec.json, current in the index
"""

from workbench.design.build import build, check_model
from workbench.design.listing import keras_code
from workbench.design.plan import (
    NAMED_OUTPUTS,
    LayerCost,
    LayerRow,
    Summary,
    format_summary,
    human,
    layer_cost,
    summarize,
    validate,
)
from workbench.design.presets import PRESETS, default_preset, list_presets, preset
from workbench.design.spec import Group, ModelSpec, Stem, Task, check, load_spec, save_spec

__all__ = [
    "NAMED_OUTPUTS",
    "PRESETS",
    "Group",
    "LayerCost",
    "LayerRow",
    "ModelSpec",
    "Stem",
    "Summary",
    "Task",
    "build",
    "check_model",
    "check",
    "default_preset",
    "format_summary",
    "human",
    "keras_code",
    "layer_cost",
    "list_presets",
    "load_spec",
    "preset",
    "save_spec",
    "summarize",
    "validate",
]
