"""The plain Keras code of a spec: what `build` does, written out for a student to read and run.

`keras_code` writes one functional-API line per row of `summarize(spec, card)`, the same rows
`build` instantiates, so the listing and the built model cannot drift apart. A tensor stays in
`x` while only the next layer reads it; a residual block's input is kept in `shortcut` (and its
main branch in `main` while the shortcut is projected), and the reusable tensors (encoding,
embedding, logits) get their own names. Pure Python: no Keras import.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workbench.design.plan import NAMED_OUTPUTS, LayerRow, summarize
from workbench.design.spec import ModelSpec

if TYPE_CHECKING:
    from workbench.identify import ProblemCard

# Keras' own defaults, left out of the listing to keep each line short.
DEFAULTS = {"strides": 1, "activation": None, "use_bias": True}
# Arguments written positionally, the way the Keras guides write them: Conv2D(32, 3, ...).
POSITIONAL = {
    "Conv2D": ("filters", "kernel_size"),
    "DepthwiseConv2D": ("kernel_size",),
    "Dense": ("units",),
    "Dropout": ("rate",),
    "Activation": ("activation",),
    "MaxPooling2D": ("pool_size",),
}
SECTION_COMMENTS = {
    "stem": "stem: coarse features from the raw input",
    "learner": "learner: groups of blocks that refine the features",
    "task": "task: encoding, optional embedding, logits and the card's head",
}


def keras_code(spec: ModelSpec, card: ProblemCard) -> str:
    """Python source that builds the same model as `build(spec, card)` with plain Keras.

    Running it defines `inputs`, `outputs` and `model`; a SpecError says why a spec cannot be
    built, before any code is written.
    """
    rows = summarize(spec, card).rows
    readers: dict[str, list[int]] = {}  # tensor -> positions of the rows that read it
    for i, row in enumerate(rows):
        for name in row.inputs:
            readers.setdefault(name, []).append(i)
    names: dict[str, str] = {}  # tensor -> its variable
    busy: dict[str, int] = {}  # variable -> position of the last row that reads its tensor
    for i, row in enumerate(rows):
        read = readers.get(row.name, [])
        if i == 0 or i == len(rows) - 1:
            var = "inputs" if i == 0 else "outputs"
        elif row.name in NAMED_OUTPUTS:
            var = row.name
        elif read == [i + 1]:
            var = "x"
        else:  # a residual block's input (read twice) or its main branch (read after the shortcut)
            var = "shortcut" if len(read) > 1 else "main"
            var = row.name if busy.get(var, -1) > i else var  # still needed: keep the old one
        names[row.name], busy[var] = var, max(read, default=i)

    lines = ["import keras", "from keras import layers", ""]
    section = block = None
    for row in rows:
        if row.section != section and row.section in SECTION_COMMENTS:
            lines += ["", f"# {SECTION_COMMENTS[row.section]}"]
        if row.section == "learner" and row.block != block:
            lines.append(f"# {row.block}")
        section, block = row.section, row.block
        lines.append(f"{names[row.name]} = {_call(row, names)}")
    lines += ["", f"model = keras.Model(inputs, outputs, name={_literal(spec.name)})", ""]
    return "\n".join(lines)


def _call(row: LayerRow, names: dict[str, str]) -> str:
    """`layers.Conv2D(32, 3, padding="same", name="stem_conv1")(x)` for one row."""
    if row.kind == "InputLayer":
        return f"keras.Input(shape={row.output_shape!r}, name={_literal(row.name)})"
    positional = POSITIONAL.get(row.kind, ())
    args = [_literal(row.config[key]) for key in positional]
    args += [
        f"{key}={_literal(value)}"
        for key, value in row.config.items()
        if key not in positional and DEFAULTS.get(key, object()) != value
    ]
    args.append(f"name={_literal(row.name)}")
    tensors = [names[name] for name in row.inputs]
    feed = f"[{', '.join(tensors)}]" if len(tensors) > 1 else tensors[0]  # Add takes a list
    return f"layers.{row.kind}({', '.join(args)})({feed})"


def _literal(value: Any) -> str:
    """A Python literal with double-quoted strings, as the Keras guides write them."""
    return json.dumps(value) if isinstance(value, str) else repr(value)
