"""Stage 2 exercises: count a convolution's MACs, pick a cheap block, predict what doubling
every width does to the parameters (an experiment), and shrink a spec to a budget.

Every number comes from `workbench.design.summarize` on the digits card (pure Python, no Keras):
the MAC exercise asks about a layer of the `compact` preset's plan, the block exercise compares
the three image block types, the experiment recounts a spec scaled by 2, and the budget exercise
summarizes the student's spec.
"""

from __future__ import annotations

from typing import Any

from workbench.design import ModelSpec, Summary, preset, summarize
from workbench.design.spec import IMAGE_BLOCKS
from workbench.errors import SpecError
from workbench.exercises.base import (
    AnswerError,
    Exercise,
    Experiment,
    Feedback,
    expect_choice,
    expect_number,
    show,
)
from workbench.identify import ProblemCard

CARD = ProblemCard("image", "multiclass", 10, (8, 8, 1), tuple(str(d) for d in range(10)), "digits")
COMPACT = preset("compact", CARD)  # the reference CNN adapted to 8x8 inputs
COMPACT_SUMMARY = summarize(COMPACT, CARD)

# ---- 2.1 multiply-adds of a convolution by hand --------------------------------------------

CONV = COMPACT_SUMMARY.row("learner_g1_b1_conv")  # the first convolution of the learner
_CONV_INPUT = COMPACT_SUMMARY.row(CONV.inputs[0]).output_shape  # (H, W, C_in)
KERNEL = CONV.config["kernel_size"]
CONV_MACS = CONV.macs  # Hout*Wout*Cout*kh*kw*Cin, as summarize counts it


def _conv_mistakes() -> dict[int, tuple[str, str]]:
    """Typical wrong answers -> (what went wrong, hint)."""
    (h, w, c_in), (ho, wo, c_out), k = _CONV_INPUT, CONV.output_shape, KERNEL
    weights = k * k * c_in * c_out
    valid = (h - k + 1) * (w - k + 1) * c_out * k * k * c_in
    return {
        ho * wo * c_out * k * k: (
            "You left out the input channels.",
            f"Each output value sums over a {k}x{k} window of all {c_in} input channels.",
        ),
        ho * wo * c_out * c_in: (
            "You left out the kernel size.",
            f"Each output value reads a {k}x{k} window, not one pixel, per input channel.",
        ),
        weights: (
            f"{weights:,} is the number of weights (kh*kw*Cin*Cout), not of multiply-adds.",
            f"Every weight is used once per output position: multiply by {ho}x{wo}.",
        ),
        weights + c_out: (
            f"{weights + c_out:,} is the number of parameters (weights + biases), not of "
            "multiply-adds.",
            f"Every weight is used once per output position: multiply the weights by {ho}x{wo}.",
        ),
        2 * CONV_MACS: (
            f"{2 * CONV_MACS:,} counts FLOPs: one multiply and one add each, 2 x MACs.",
            "Count each multiply-add once.",
        ),
        valid: (
            f"You used the output size of 'valid' padding ({h - k + 1}x{w - k + 1}).",
            f"'same' padding keeps the {h}x{w} size.",
        ),
    }


def _check_conv_macs(answer: Any) -> Feedback:
    value = expect_number(answer, what="the number of multiply-adds", minimum=0)
    (ho, wo, c_out), c_in = CONV.output_shape, _CONV_INPUT[-1]
    formula = f"{ho}x{wo}x{c_out}x{KERNEL}x{KERNEL}x{c_in} = {CONV_MACS:,}"
    if value == CONV_MACS:
        return Feedback.right(
            f"Hout*Wout*Cout*kh*kw*Cin = {formula}: each of the {ho * wo * c_out:,} output "
            f"values is a sum of {KERNEL * KERNEL * c_in} products. summarize(spec, card) counts "
            "it the same way (FLOPs would be twice this)."
        )
    mistake = _conv_mistakes().get(int(value)) if value.is_integer() else None
    if mistake is not None:
        return Feedback.wrong(mistake[0], hint=mistake[1])
    return Feedback.wrong(
        f"{value:,.0f} is not the number of multiply-adds."
        if value.is_integer()
        else f"{value:g} is not a whole number of multiply-adds.",
        hint="Count the output values (Hout x Wout x Cout), then the products summed for each "
        "(kh x kw x Cin), and multiply.",
    )


CONV_MACS_EXERCISE = Exercise(
    id="2.1",
    title="a convolution's multiply-adds",
    prompt=(
        f"A Conv2D layer with a {KERNEL}x{KERNEL} kernel, stride 1 and "
        f"{CONV.config['padding']!r} padding turns a {'x'.join(map(str, _CONV_INPUT))} feature "
        f"map into {CONV.output_shape[-1]} channels. How many multiply-adds (MACs) does it "
        "cost per example?"
    ),
    expects="a whole number",
    solution=CONV_MACS,
    checker=_check_conv_macs,
)

# ---- 2.2 the cheapest block type -----------------------------------------------------------

BLOCK_BASE = preset("compact_bn", CARD)  # learner groups of conv blocks, 64 and 128 filters
BLOCK_MACS = {  # learner MACs per example with every group of the block type
    b: summarize(BLOCK_BASE.with_block_type(b), CARD).totals["learner"]["macs"]
    for b in IMAGE_BLOCKS
}
CHEAPEST = min(BLOCK_MACS, key=BLOCK_MACS.get)
_WHY_BLOCK = {
    "conv": "a plain convolution mixes space and channels at once: Hout*Wout*Cout*kh*kw*Cin.",
    "residual": "a residual block holds two convolutions plus a 1x1 projection of the shortcut "
    "when the filters change: more MACs than a plain block, for easier training.",
    "separable": "a separable block filters each channel on its own (Hout*Wout*Cin*kh*kw), then "
    "mixes channels with a 1x1 convolution (Hout*Wout*Cout*Cin): the kh*kw factor no longer "
    "multiplies Cin*Cout.",
}


def _check_block(answer: Any) -> Feedback:
    block = expect_choice(
        answer,
        IMAGE_BLOCKS,
        what="a block type",
        aliases={
            "depthwise separable": "separable",
            "mobilenet": "separable",
            "resnet": "residual",
        },
    )
    table = ", ".join(f"{b} {m:,}" for b, m in BLOCK_MACS.items())
    if block == CHEAPEST:
        return Feedback.right(
            f"{block}: {_WHY_BLOCK[block]} Learner MACs per example on the digits: {table}."
        )
    ratio = BLOCK_MACS[block] / BLOCK_MACS[CHEAPEST]
    return Feedback.wrong(
        f"{block!r} costs {BLOCK_MACS[block]:,} learner MACs per example, {ratio:.1f} x the "
        f"cheapest: {_WHY_BLOCK[block]}",
        hint="Compare the cost of one output value: does the kh*kw window multiply the input "
        "channels times the output channels, or only one of them? Try summarize(spec."
        "with_block_type(...), card) for each type.",
    )


BLOCK_TYPE = Exercise(
    id="2.2",
    title="the cheapest block type",
    prompt=(
        "The compact_bn preset's learner has groups of "
        + " and ".join(str(g.filters) for g in BLOCK_BASE.groups)
        + " filters built from plain conv blocks."
        f" Which block type, {list(IMAGE_BLOCKS)}, gives the fewest multiply-adds "
        "with the same filters?"
    ),
    expects=f"one block type from {list(IMAGE_BLOCKS)}",
    solution=CHEAPEST,
    checker=_check_block,
)

# ---- 2.3 experiment: double every width --------------------------------------------------

SCALE = 2.0  # spec.scaled(SCALE) multiplies every stem and learner width


def scaled_params_factor(spec: ModelSpec, card: ProblemCard, width: float = SCALE) -> float:
    """How many times as many parameters `spec.scaled(width)` has as `spec` on `card`.

    A recount of both plans (no Keras, instant): `summarize` counts what `build` would make.
    """
    return summarize(spec.scaled(width), card).params / summarize(spec, card).params


_FACTORS = {
    name: scaled_params_factor(preset(name, CARD), CARD) for name in ("compact", "compact_bn")
}
_DENSE_SHARE = (
    sum(r.params for r in COMPACT_SUMMARY.rows if r.kind == "Dense") / COMPACT_SUMMARY.params
)

DOUBLE_WIDTH = Experiment(
    id="2.3",
    title="double every width",
    prompt=(
        f"spec.scaled({SCALE:g}) multiplies every stem and learner width (the filters) by "
        f"{SCALE:g}; the embedding's units and the head stay as they are. Predict how many times "
        "as many parameters the scaled spec has as the current one; the cell then recounts "
        "both. A prediction within 10 % of the recount is right."
    ),
    expects="a factor, e.g. 2.0",
    tolerance=round(0.1 * _FACTORS["compact"], 2),  # 10 % of the smoke profile's factor
    why=(
        "A convolution holds kh·kw·Cin·Cout weights: doubling both Cin and Cout multiplies them "
        "by 4, while its Cout biases and a BatchNormalization's 4·C only double. Layers with one "
        "side fixed double too: the first convolution (Cin is the image's channels), a depthwise "
        "convolution (kh·kw·C) and a Dense layer that reads the doubled features into units that "
        "are not a width (the embedding); the logits double when they read the encoding directly "
        "and stay as they are after an embedding. So the factor stays just under 4 when "
        f"convolutions hold nearly all the parameters (compact_bn on the digits: "
        f"{_FACTORS['compact_bn']:.2f}) and drops with the share of the rest (compact: "
        f"{_FACTORS['compact']:.2f}, with {_DENSE_SHARE:.0%} of its parameters in Dense layers)."
    ),
    solution=round(_FACTORS["compact"], 2),
    minimum=0,
)

# ---- 2.4 fit a parameter budget ------------------------------------------------------------

BUDGET = 50_000  # parameters


def _as_spec(answer: Any) -> ModelSpec:
    if isinstance(answer, ModelSpec):
        return answer
    if isinstance(answer, Summary):
        raise AnswerError(
            "Expected a ModelSpec, got the Summary of one. Answer with the spec itself, "
            "e.g. spec.scaled(0.5), not summarize(spec, card)."
        )
    if type(answer).__module__.startswith("keras"):
        raise AnswerError(
            f"Expected a ModelSpec, got a built Keras model ({type(answer).__name__}). Design "
            "as data: change the spec (e.g. spec.scaled(0.5)), then build it."
        )
    raise AnswerError(
        f"Expected a ModelSpec (e.g. spec.scaled(0.5)), got {show(answer)} "
        f"({type(answer).__name__})."
    )


def _check_budget(answer: Any) -> Feedback:
    spec = _as_spec(answer)
    try:
        summary = summarize(spec, CARD)
    except SpecError as e:
        return Feedback.wrong(
            f"This spec cannot be built for the {CARD.input_shape} digits: {e}",
            hint="Start again from preset('compact', card) and change one thing at a time, "
            "e.g. spec.scaled(0.5).",
        )
    n, before = summary.params, COMPACT_SUMMARY.params
    shape = summary.rows[-1].output_shape
    out = f"its output has shape {shape}, one probability per class as the card needs"
    if n < BUDGET:
        return Feedback.right(
            f"{n:,} parameters (the compact preset has {before:,}: {n / before:.0%} of it) and "
            f"{summary.macs:,} MACs per example; {out}. The head comes from the card, so "
            "shrinking the stem and learner never changes what the model predicts."
        )
    totals = summary.totals
    largest = max(totals, key=lambda s: totals[s]["params"])
    unchanged = " This is the compact preset unchanged." if spec == COMPACT else ""
    return Feedback.wrong(
        f"{n:,} parameters, not under {BUDGET:,}: remove at least {n - BUDGET + 1:,}."
        f"{unchanged} Most of them sit in the {largest} ({totals[largest]['params']:,}).",
        right=f"the spec builds, and {out}.",
        hint="Parameters of a convolution grow with filters in x filters out: spec.scaled(0.5) "
        "halves every width and cuts them to about a quarter. A smaller embedding "
        "(spec.replace(task=spec.task.replace(embedding_units=32))) shrinks the task section.",
    )


BUDGET_EXERCISE = Exercise(
    id="2.4",
    title="fit a parameter budget",
    prompt=(
        f"spec = preset('compact', card) has {COMPACT_SUMMARY.params:,} parameters on the "
        f"{'x'.join(map(str, CARD.input_shape))} digits card. Change it so it has fewer than "
        f"{BUDGET:,} parameters and still outputs one probability per class "
        f"({CARD.head.units})."
    ),
    expects="a ModelSpec made from spec with spec.scaled, spec.with_blocks or spec.replace",
    solution=COMPACT.scaled(0.5),
    checker=_check_budget,
)

EXERCISES = (CONV_MACS_EXERCISE, BLOCK_TYPE, BUDGET_EXERCISE)
EXPERIMENTS = (DOUBLE_WIDTH,)

NOTES = """\
- **Parameters are not cost.** A convolution's weights are reused at every position: 18 k
  parameters can mean 300 k MACs. Dense layers are the opposite (one MAC per weight). Budgets for
  memory count parameters; budgets for latency count MACs.
- **Scaling widths by 0.5 divides convolution parameters by ~4** (filters in x filters out);
  students often expect a factor of 2.
- **Doubling every width is not x4 for the whole model** (experiment 2.3). Students predict 2,
  or 4 for everything; compact on the digits gives about 3.3: its convolutions grow x4, the first
  one x2 (one input channel), the Dense embedding x2 (its units are not a width), the logits x1.
  Ask which layers have both of their sides scaled.
- **FLOPs vs MACs.** Papers mix them; the workbench always reports MACs and labels FLOPs as 2 x
  MACs.
- **Residual blocks are for depth, not thrift.** They cost more than plain blocks; their gain is
  that deep stacks still train.
- **Softmax and sigmoid outputs are both conditional on the input, and neither is calibrated by
  construction.** Softmax: one distribution over exclusive classes; sigmoid: one probability per
  independent label. Calibration is measured on held-out data (reliability diagram) and can be
  fixed there (e.g. temperature scaling on the validation split).
- **The head is not the designer's to change**: it comes from the problem card, so shrinking a
  model never changes its output shape.
"""
