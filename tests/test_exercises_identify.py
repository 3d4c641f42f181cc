"""Stage 1 exercises: each accepts its reference solution and explains typical mistakes."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.exercises import identify
from workbench.exercises.identify import BASELINE, HEAD, TASK_TYPE, baseline_exercise


@pytest.mark.parametrize("exercise", identify.EXERCISES, ids=lambda e: e.id)
def test_solution_accepted_and_unanswered_is_your_turn(exercise):
    assert exercise.check(exercise.solution).ok
    fb = exercise.check(...)
    assert not fb.ok and "Your turn" in fb.message and exercise.prompt in fb.message


# ---- 1.1 head ------------------------------------------------------------------------------


def test_head_solution_comes_from_the_problem_card():
    assert HEAD.solution == ("sigmoid", "binary_crossentropy")
    fb = HEAD.check({"activation": "Sigmoid", "loss": "BinaryCrossentropy"})
    assert fb.ok and "Softmax would force the labels to compete" in fb.message


def sigmoid(x):  # stands in for keras.activations.sigmoid: a function is read by its name
    return x


@pytest.mark.parametrize(
    "answer", [("logistic", "bce"), [sigmoid, "binary cross-entropy"], ("sigmoid", "BCE")]
)
def test_head_accepts_spellings(answer):
    assert HEAD.check(answer).ok


@pytest.mark.parametrize(
    "answer, expected",
    [
        (
            ("softmax", "categorical_crossentropy"),
            [
                "That is the multiclass head",
                "softmax makes the 4 outputs sum to 1, so the labels compete",
                "categorical cross-entropy scores one true class",
                "Hint: Apply a squashing function to each output on its own",
            ],
        ),
        (
            ("sigmoid", "mse"),
            [
                "mean squared error treats the 0/1 labels as quantities",
                "What's right: the activation 'sigmoid' gives each label its own probability.",
                "Hint: Score each label as its own two-outcome question.",
            ],
        ),
        (
            ("softmax", "binary_crossentropy"),
            [
                "softmax makes the 4 outputs sum to 1",
                "What's right: the loss 'binary_crossentropy' scores each label",
            ],
        ),
        (("relu", "binary_crossentropy"), ["'relu' outputs are >= 0 and unbounded"]),
        (("linear", "binary_crossentropy"), ["(logits)", "needs from_logits=True in the loss"]),
        (("sigmoid", "mae"), ["its gradient has the same size however far off the prediction is"]),
    ],
)
def test_head_wrong_answers_are_explained(answer, expected):
    fb = HEAD.check(answer)
    assert not fb.ok
    for text in expected:
        assert text in fb.message


@pytest.mark.parametrize(
    "answer, message",
    [
        ("sigmoid", "Expected the head as (activation, loss): a tuple of 2 items, got 'sigmoid'"),
        (("sigmod", "bce"), "got 'sigmod'. Did you mean 'sigmoid'?"),
        ({"activation": "sigmoid"}, "Expected the head with the keys ['activation', 'loss']"),
        (("sigmoid", 0.5), "Expected a loss: a name such as 'binary_crossentropy', got 0.5"),
    ],
)
def test_head_wrong_types_say_what_was_expected(answer, message):
    fb = HEAD.check(answer)
    assert not fb.ok and message in fb.message


# ---- 1.2 baseline --------------------------------------------------------------------------


def test_baseline_solution_is_the_majority_share():
    assert BASELINE.solution == 0.55  # class 1 holds 11 of the 20 labels
    assert BASELINE.check(0.552).ok and not BASELINE.check(0.56).ok
    assert "y = [1, 0, 1, 2" in BASELINE.prompt


@pytest.mark.parametrize(
    "answer, problem, hint",
    [
        (0.25, "0.25 is 1/4, what guessing uniformly at random", "Count each class"),
        (11, "11 is how many labels are class 1: a count", "Divide the count by the number"),
        (55, "55 looks like a percentage", "fraction between 0 and 1"),
        (0.45, "0.45 is the error rate of the majority predictor", "1 minus your number"),
        (0.2, "0.2 is the share of class 2, which is not the most common", "largest count"),
        (1.5, "1.5 cannot be an accuracy", "divided by the number of labels (20)"),
        (0.3, "0.3 is not the majority-class accuracy (tolerance ±0.005)", "largest count"),
    ],
)
def test_baseline_wrong_answers_are_explained(answer, problem, hint):
    fb = BASELINE.check(answer)
    assert not fb.ok
    assert fb.message.startswith(problem)
    assert hint in fb.message.split("Hint: ")[1]


@pytest.mark.parametrize(
    "answer, message",
    [
        ("0.55", "got '0.55' (str), which is text. Write the number without quotes."),
        ([0.55], "Expected the baseline accuracy, a number between 0 and 1, got [0.55] (list)."),
    ],
)
def test_baseline_wrong_types(answer, message):
    fb = BASELINE.check(answer)
    assert not fb.ok and message in fb.message


def test_baseline_exercise_for_other_labels():
    ex = baseline_exercise(np.array([0, 0, 0, 1]), labels_name="y_train")
    assert ex.solution == 0.75 and "in `y_train`" in ex.prompt
    assert ex.check(np.float64(0.75)).ok


# ---- 1.3 task types ------------------------------------------------------------------------


def test_task_type_accepts_spellings():
    answer = {**TASK_TYPE.solution, "c": "Multi-class", "b": "binary classification"}
    assert TASK_TYPE.check(answer).ok


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"d": "multiclass"},
            ["4 of 5 right.", "(d) is not 'multiclass': one photo can show a car and a person"],
        ),
        (
            {"e": "multiclass", "a": "multiclass"},
            ["3 of 5 right.", "(e) is not 'multiclass': age is a quantity", "(a) is not"],
        ),
        ({"b": "classification"}, ["(b) 'classification' is too broad: say which kind."]),
    ],
)
def test_task_type_wrong_answers_are_explained(change, expected):
    fb = TASK_TYPE.check({**TASK_TYPE.solution, **change})
    assert not fb.ok and "Hint: Ask what one example's answer looks like" in fb.message
    for text in expected:
        assert text in fb.message


@pytest.mark.parametrize(
    "answer, message",
    [
        (["regression"], "a dict like {'a': ..., 'b': ..., ...}, got ['regression'] (list)"),
        ({"a": "regression"}, "missing ['b', 'c', 'd', 'e']"),
        ({**TASK_TYPE.solution, "a": "clustering"}, "scenario 'a', one of ['binary'"),
    ],
)
def test_task_type_wrong_types(answer, message):
    fb = TASK_TYPE.check(answer)
    assert not fb.ok and message in fb.message
