"""Stage 1 exercises: choose a head, recognise the baseline, name the task type, and predict
the baseline of a binary task before recomputing it (experiment 1.4).

The reference solutions come from `workbench.identify` (the head of a multilabel card, the
baseline of a label array), so an exercise cannot drift from what the stage teaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench import params
from workbench.data import load_source, split_targets
from workbench.data.transform import ATTRIBUTE_NAMES, PRIME_DIGITS
from workbench.exercises.base import (
    Exercise,
    Experiment,
    Feedback,
    expect_choice,
    expect_mapping,
    expect_number,
    expect_pair,
)
from workbench.identify import DEFAULT_SPLIT, TASKS, ProblemCard, check_split, compute_baseline

# ---- 1.1 the head of a multilabel problem ------------------------------------------------------

ATTRIBUTES = tuple(n.replace("_", " ") for n in ATTRIBUTE_NAMES)  # the digits' multilabel targets
_MULTILABEL = ProblemCard("image", "multilabel", len(ATTRIBUTES), (8, 8, 1), ATTRIBUTES).head
_MULTICLASS = ProblemCard("image", "multiclass", 10, (8, 8, 1)).head
ACTIVATIONS = ("sigmoid", "softmax", "linear", "relu", "tanh")
LOSSES = (
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
)
_ACTIVATION_ALIASES = {"logistic": "sigmoid", "identity": "linear", "none": "linear"}
_LOSS_ALIASES = {
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
}
_WRONG_ACTIVATION = {
    "softmax": "softmax makes the 4 outputs sum to 1, so the labels compete: for a 7 (odd, "
    "greater than 4, prime) it cannot give 'greater than 4' and 'prime' both a probability near 1.",
    "linear": "'linear' outputs unbounded scores (logits), not probabilities in [0, 1]: you could "
    "not read P(label | x) from them, and binary cross-entropy expects probabilities (a head "
    "that outputs logits needs from_logits=True in the loss, and a sigmoid to turn them into "
    "probabilities).",
    "relu": "'relu' outputs are >= 0 and unbounded, not probabilities in [0, 1], and a unit stuck "
    "at 0 stops learning.",
    "tanh": "'tanh' outputs lie in [-1, 1], not [0, 1]: they are not probabilities.",
}
_WRONG_LOSS = {
    "categorical_crossentropy": "categorical cross-entropy scores one true class among all "
    "outputs, but here each of the 4 labels is its own yes/no question.",
    "sparse_categorical_crossentropy": "sparse categorical cross-entropy expects one integer class "
    "per example, but a digit here has 4 yes/no labels at once.",
    "mean_squared_error": "mean squared error treats the 0/1 labels as quantities to regress and "
    "gives weak gradients when a sigmoid saturates.",
    "mean_absolute_error": "mean absolute error treats the 0/1 labels as quantities to regress: "
    "its gradient has the same size however far off the prediction is, so a confidently wrong "
    "label is pushed no harder than a nearly right one.",
}


def _check_head(answer: Any) -> Feedback:
    activation, loss = expect_pair(answer, ("activation", "loss"), what="the head")
    activation = expect_choice(
        activation, ACTIVATIONS, what="an activation", aliases=_ACTIVATION_ALIASES
    )
    loss = expect_choice(loss, LOSSES, what="a loss", aliases=_LOSS_ALIASES)
    good_act, good_loss = activation == _MULTILABEL.activation, loss == _MULTILABEL.loss
    if good_act and good_loss:
        return Feedback.right(f"{activation} + {loss}. {_MULTILABEL.why}")
    problems, right, hints = [], [], []
    if (activation, loss) in (
        (_MULTICLASS.activation, _MULTICLASS.loss),
        (_MULTICLASS.activation, "categorical_crossentropy"),
    ):
        problems.append(
            "That is the multiclass head (exactly one of N classes); these 4 labels "
            "do not exclude each other."
        )
    if good_act:
        right.append(f"the activation {activation!r} gives each label its own probability.")
    else:
        problems.append(_WRONG_ACTIVATION[activation])
        hints.append(
            "Apply a squashing function to each output on its own, so every label gets "
            "a probability in [0, 1] whatever the others say."
        )
    if good_loss:
        right.append(f"the loss {loss!r} scores each label as a yes/no question.")
    else:
        problems.append(_WRONG_LOSS[loss])
        hints.append("Score each label as its own two-outcome question.")
    return Feedback.wrong("\n".join(problems), right=" ".join(right), hint=" ".join(hints))


HEAD = Exercise(
    id="1.1",
    title="the head of a multilabel problem",
    prompt=(
        "Every digit image gets 4 yes/no labels: "
        + ", ".join(ATTRIBUTES)
        + ". They do not exclude each other: a digit can have several at once (7 is odd, "
        "greater than 4 and prime). "
        "Which activation and which loss should the model's head use?"
    ),
    expects="a pair (activation, loss) of names, e.g. ('relu', 'mean_absolute_error'), or a dict "
    "{'activation': ..., 'loss': ...}",
    solution=(_MULTILABEL.activation, _MULTILABEL.loss),
    checker=_check_head,
)

# ---- 1.2 the baseline accuracy ---------------------------------------------------------------

LABELS = np.array(
    [1, 0, 1, 2, 1, 1, 3, 1, 2, 0, 1, 1, 2, 1, 0, 3, 1, 2, 1, 1]
)  # imbalanced, 4 classes
TOLERANCE = 0.005  # an answer within this of the baseline counts as right


def baseline_exercise(y: Sequence[int] | np.ndarray, *, labels_name: str | None = None) -> Exercise:
    """Exercise 1.2 for the class labels `y`: the accuracy of always predicting the majority.

    `labels_name` names the notebook variable holding `y`; without it the prompt lists `y`.
    """
    y = np.asarray(y)
    baseline = compute_baseline("multiclass", y)["value"]
    classes, counts = np.unique(y, return_counts=True)
    n, k, top = len(y), len(classes), int(np.argmax(counts))
    majority, share = classes[top], dict(zip(classes.tolist(), (counts / n).tolist(), strict=True))
    shown = f"in `{labels_name}`" if labels_name else f"y = {y.tolist()}"
    count_hint = "Count each class (np.unique(y, return_counts=True)) and take the largest count"

    def near(a: float, b: float) -> bool:
        return abs(a - b) <= TOLERANCE

    def check(answer: Any) -> Feedback:
        value = expect_number(answer, what="the baseline accuracy, a number between 0 and 1")
        if near(value, baseline):
            return Feedback.right(
                f"{value:g}: always predicting the most common class (class {majority}: "
                f"{counts[top]} of {n} labels) is right {baseline:.1%} of the time. A model "
                f"must beat this, not 1/{k} = {1 / k:.3g}, to show it learned from its input."
            )
        if value == counts[top]:
            return Feedback.wrong(
                f"{value:g} is how many labels are class {majority}: a count, not an accuracy.",
                right="you found the most common class.",
                hint=f"Divide the count by the number of labels ({n}).",
            )
        if 1 < value <= 100 and near(value / 100, baseline):
            return Feedback.wrong(
                f"{value:g} looks like a percentage.",
                right="the value itself.",
                hint="Give accuracy as a fraction between 0 and 1, as Keras reports it.",
            )
        if not 0 <= value <= 1:
            return Feedback.wrong(
                f"{value:g} cannot be an accuracy: accuracy is a fraction between 0 and 1.",
                hint=f"{count_hint}, divided by the number of labels ({n}).",
            )
        if near(value, 1 / k):
            return Feedback.wrong(
                f"{value:g} is 1/{k}, what guessing uniformly at random among {k} classes scores. "
                "An input-blind model can do better on imbalanced labels: always answer the "
                "most common class.",
                hint=count_hint + ".",
            )
        if near(value, 1 - baseline):
            return Feedback.wrong(
                f"{value:g} is the error rate of the majority predictor (the share it gets wrong).",
                hint="Accuracy counts the predictions that are right: 1 minus your number.",
            )
        other = [c for c, s in share.items() if c != majority and near(value, s)]
        if other:
            return Feedback.wrong(
                f"{value:g} is the share of class {other[0]}, which is not the most common class.",
                hint=count_hint + "; the baseline always predicts that class.",
            )
        return Feedback.wrong(
            f"{value:g} is not the majority-class accuracy (tolerance ±{TOLERANCE}).",
            hint=f"{count_hint}, divided by the number of labels ({n}).",
        )

    return Exercise(
        id="1.2",
        title="the baseline to beat",
        prompt=(
            f"The labels {shown} belong to {n} examples of {k} classes. What accuracy does a "
            "model score on these labels if it ignores its input and always predicts their most "
            "common class?"
        ),
        expects="a number between 0 and 1",
        solution=baseline,
        checker=check,
    )


BASELINE = baseline_exercise(LABELS)

# ---- 1.3 name the task type ------------------------------------------------------------------

SCENARIOS: dict[str, tuple[str, str, str]] = {  # key -> (description, task type, hint if wrong)
    "a": (
        "Predict the selling price of a house from its floor area and location.",
        "regression",
        "a price is an amount: being off by 1,000 is much better than off by 100,000, and there "
        "is no fixed list of classes.",
    ),
    "b": (
        "Decide from a chest X-ray whether it shows pneumonia.",
        "binary",
        "there are exactly two outcomes, yes or no.",
    ),
    "c": (
        "Read which letter, A to Z, a single handwritten character shows.",
        "multiclass",
        "each character is exactly one of 26 letters: the classes exclude each other.",
    ),
    "d": (
        "Tag a street photo with every object in it: car, bicycle, person, traffic light.",
        "multilabel",
        "one photo can show a car and a person at once: the labels do not exclude each other.",
    ),
    "e": (
        "Estimate a person's age in years from a photo of their face.",
        "regression",
        "age is a quantity: guessing 31 for someone of 30 is nearly right, so the error should "
        "grow with the distance, which 100 unrelated classes would not express.",
    ),
}
_TASK_ALIASES = {f"{t} classification": t for t in TASKS if t != "regression"}


def _check_tasks(answer: Any) -> Feedback:
    given = expect_mapping(answer, SCENARIOS, what="a task type per scenario")
    wrong: dict[str, str] = {}  # scenario -> what is wrong with its answer
    for key, value in given.items():
        if isinstance(value, str) and value.strip().lower() == "classification":
            wrong[key] = "'classification' is too broad: say which kind."
            continue
        task = expect_choice(
            value, TASKS, what=f"the task type of scenario {key!r}", aliases=_TASK_ALIASES
        )
        if task != SCENARIOS[key][1]:
            wrong[key] = f"is not {task!r}: {SCENARIOS[key][2]}"
    if not wrong:
        return Feedback.right(
            "All 5 right: a quantity is regression; one of two outcomes is binary; exactly one "
            "of N classes is multiclass; any subset of N labels is multilabel."
        )
    return Feedback.tally(
        list(SCENARIOS),
        wrong,
        hint="Ask what one example's answer looks like: a quantity (regression), one of two "
        "outcomes (binary), exactly one of N classes (multiclass), any subset of N labels "
        "(multilabel).",
    )


TASK_TYPE = Exercise(
    id="1.3",
    title="name the task type",
    prompt="Which task type is each problem?\n"
    + "\n".join(f"({k}) {text}" for k, (text, _, _) in SCENARIOS.items()),
    expects=f"a dict {{scenario: task type}} such as {{'a': 'binary', ...}}, task types from "
    f"{list(TASKS)}",
    solution={k: task for k, (_, task, _) in SCENARIOS.items()},
    checker=_check_tasks,
)

EXERCISES = (HEAD, BASELINE, TASK_TYPE)

# ---- 1.4 experiment: the baseline of a binary digit task ---------------------------------------

ATTRIBUTE = "prime"  # the yes/no attribute experiment 1.4 turns into a binary task


def attribute_baseline(
    source: str = "digits", attribute: str = ATTRIBUTE, *, split: dict[str, Any] | None = None
) -> float:
    """The majority baseline of the binary task "does the digit have `attribute`?" on `split`
    (seed and fractions, default the workbench's) of the digit source `source`.

    The experiment of exercise 1.4: the split is drawn as stage 3 draws it (stratified on the
    digits), the baseline learned on its training targets and scored on its test targets.
    """
    params.check_choice("attribute", attribute, ATTRIBUTE_NAMES)
    split = check_split(dict(split or DEFAULT_SPLIT))
    y_train, y_test = split_targets(load_source(source), "multilabel", **split)
    column = ATTRIBUTE_NAMES.index(attribute)
    labels = [y[:, column].astype(np.int64) for y in (y_train, y_test)]  # 0/1 binary labels
    return compute_baseline("binary", *labels)["value"]


_PRIME_SHARE = len(PRIME_DIGITS) / 10  # 4 of the 10 digits; the digits are nearly balanced
PRIME_TOLERANCE = 0.03  # a prediction within this of the recomputed baseline counts as right

PRIME = Experiment(
    id="1.4",
    title="the baseline of a binary task",
    prompt="Turn the digits into a binary task: is the digit prime ("
    + ", ".join(map(str, PRIME_DIGITS))
    + ")? Predict its majority baseline: the test-split accuracy of always giving the answer "
    "that is most common in the training split. The cell then recomputes it with "
    "compute_baseline on the card's split (same seed and fractions). A prediction within "
    f"{PRIME_TOLERANCE:g} is right.",
    expects="an accuracy between 0 and 1, e.g. 0.8",
    tolerance=PRIME_TOLERANCE,
    why=f"{len(PRIME_DIGITS)} of the 10 digits are prime and the digits' classes are nearly "
    f"balanced, so about {_PRIME_SHARE:.0%} of the images are prime and "
    f"{1 - _PRIME_SHARE:.0%} are not. The baseline learns the training split's majority "
    "answer, 'not prime', and scores it on the test split: its accuracy is the test split's "
    f"share of 'not prime', about {1 - _PRIME_SHARE:.1f}. A binary baseline is 0.5 only when "
    "the two answers are equally common ('even' gives about 0.5), and "
    f"{_PRIME_SHARE:.1f} is the minority answer's share, not the majority's accuracy. The "
    "split is stratified on the digit, so every split keeps each digit's share (up to "
    "rounding), hence the prime share: another seed changes which images go to test, not how "
    "many of each digit, so the baseline stays the same. A prime detector must beat "
    f"{1 - _PRIME_SHARE:.1f}, not 0.5, to show it learned anything from the image.",
    solution=round(1 - _PRIME_SHARE, 2),
    minimum=0,
    maximum=1,
)

EXPERIMENTS = (PRIME,)

NOTES = """\
- **Softmax for anything "multi-".** Students pick softmax whenever there are several outputs.
  Ask: *can two labels be true for the same example?* If yes, softmax makes them compete.
- **The baseline is the majority class, not 1/N.** On imbalanced labels a 90 % accuracy can be
  worthless; every later stage compares against the card's baseline.
- **Quantities as classes.** Age or price binned into classes loses the distance between answers
  (31 vs 30 is as wrong as 80 vs 30); regression keeps it.
- **A binary baseline is not 0.5.** In experiment 1.4 ("is it prime?") students answer 0.5
  (balanced answers assumed) or 0.4 (the minority's share); ask for the share of each answer
  first. The stratified split keeps the shares, so the test score of the majority is its share.
- **Binary with two softmax units** works too; the workbench uses one sigmoid unit (ProblemCard)
  whose output reads as P(positive | x). Neither output is calibrated by construction: that is
  measured on held-out data and can be fixed (e.g. temperature scaling on the validation split).
"""
