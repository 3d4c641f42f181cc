"""The exercise framework: feedback reads well, a check never raises, run() shows solutions."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import exercises
from workbench.exercises import (
    AnswerError,
    Exercise,
    Experiment,
    Feedback,
    expect_bool,
    expect_choice,
    expect_int,
    expect_mapping,
    expect_number,
    expect_sequence,
    instructor_note,
    run,
)


def _half(answer) -> Feedback:
    value = expect_number(answer, what="a number")
    if value == 0.5:
        return Feedback.right("0.5 is half.")
    return Feedback.wrong(f"{value:g} is not half.", hint="Divide 1 by 2.")


HALF = Exercise("9.1", "half", "What is one half?", "a number", 0.5, _half)


def test_feedback_prints_with_symbol_and_indented_lines():
    assert str(Feedback.right("yes")) == "✓ yes"
    fb = Feedback.wrong("no.", right="the sign.", hint="try again.")
    assert not fb.ok
    assert str(fb) == "✗ no.\n  What's right: the sign.\n  Hint: try again."
    assert repr(fb) == str(fb)


def test_unanswered_is_your_turn_and_not_an_error():
    for answer in (..., None):
        fb = HALF.check(answer)
        assert (fb.ok, fb.answered) == (False, False)
        assert str(fb).startswith("✎ Your turn — exercise 9.1, half.")
        assert "What is one half?" in fb.message and "Answer with a number." in fb.message


def test_wrong_type_says_expected_and_received():
    fb = HALF.check("0.5")
    assert not fb.ok and fb.answered
    assert fb.message == (
        "Expected a number, got '0.5' (str), which is text. Write the number without quotes."
    )


def test_a_crashing_checker_still_gives_feedback():
    ex = Exercise("9.2", "boom", "?", "anything", 1, lambda a: 1 / 0)
    fb = ex.check(3)
    assert not fb.ok
    assert "Could not check the answer 3 (int): ZeroDivisionError" in fb.message
    assert "Expected anything." in fb.message


def test_run_prints_once_and_substitutes_the_solution(capsys):
    fb = run(HALF, 0.25)
    assert capsys.readouterr().out == "✗ 0.25 is not half.\n  Hint: Divide 1 by 2.\n"
    assert fb == Feedback.wrong("0.25 is not half.", hint="Divide 1 by 2.") and fb.printed
    fb._ipython_display_()  # a cell ending with run(...) does not show the feedback twice
    assert capsys.readouterr().out == ""
    fb = run(HALF, ..., solutions=True)
    out = capsys.readouterr().out
    assert out == "Reference solution of exercise 9.1: 0.5\n✓ 0.5 is half.\n"
    assert fb.ok


def test_unprinted_feedback_displays_itself(capsys):
    HALF.check(0.5)._ipython_display_()
    assert capsys.readouterr().out == "✓ 0.5 is half.\n"


def test_instructor_note_only_in_instructor_mode():
    assert instructor_note("watch out", solutions=False) is None
    note = instructor_note("watch out", solutions=True)
    assert repr(note) == "Instructor note:\nwatch out"
    assert note._repr_markdown_().startswith("**Instructor note.**")


def test_exercise_reads_as_its_prompt():
    assert str(HALF) == "Exercise 9.1 · half\nWhat is one half?\nAnswer with a number."
    assert "**Exercise 9.1 · half**" in HALF._repr_markdown_()


@pytest.mark.parametrize(
    "answer, message",
    [
        (True, "Expected a probability, got True (bool)."),
        ([1], "Expected a probability, got [1] (list)."),
        (float("nan"), "Expected a probability, got nan (float)."),
        (2, "Expected a probability in [0, 1], got 2."),
        ("abc", "Expected a probability, got 'abc' (str), which is text."),
    ],
)
def test_expect_number_rejects(answer, message):
    with pytest.raises(AnswerError) as e:
        expect_number(answer, what="a probability", minimum=0, maximum=1)
    assert str(e.value) == message


def test_expect_number_and_int_accept_numpy():
    assert expect_number(np.float32(0.5)) == 0.5
    assert expect_int(np.int64(3)) == 3 and expect_int(4.0) == 4
    with pytest.raises(AnswerError, match="2.5, which is not a whole number"):
        expect_int(2.5)


def test_expect_bool():
    assert expect_bool(np.bool_(True)) is True and expect_bool(" No ") is False
    with pytest.raises(AnswerError, match=r"Expected True or False, got 1 \(int\)"):
        expect_bool(1)


def test_expect_choice_normalises_aliases_names_and_suggests():
    choices = ["binary_crossentropy", "mean_squared_error"]
    assert expect_choice("Binary Cross-Entropy", choices) == "binary_crossentropy"
    assert expect_choice("MSE", choices, aliases={"mse": "mean_squared_error"}) == choices[1]

    def binary_crossentropy(): ...

    assert expect_choice(binary_crossentropy, choices) == "binary_crossentropy"
    with pytest.raises(AnswerError, match="Did you mean 'binary_crossentropy'"):
        expect_choice("binary_crosentropy", choices, what="a loss")
    with pytest.raises(AnswerError, match=r"a name such as 'binary_crossentropy', got 3 \(int\)"):
        expect_choice(3, choices, what="a loss")


def test_expect_sequence_and_mapping():
    assert expect_sequence(["a", "b"], 2, what="a pair") == ("a", "b")
    with pytest.raises(AnswerError, match=r"a pair: 2 items, got 3: \(1, 2, 3\)"):
        expect_sequence([1, 2, 3], 2, what="a pair")
    with pytest.raises(AnswerError, match="a tuple of 2 items, got 'ab' "):
        expect_sequence("ab", 2, what="a pair")
    with pytest.raises(AnswerError, match=r"missing \['b'\] and unknown \['c'\]"):
        expect_mapping({"a": 1, "c": 2}, ["a", "b"], what="answers")
    with pytest.raises(AnswerError, match=r"a dict like \{'a': ..., 'b': ..., ...\}, got 1 "):
        expect_mapping(1, ["a", "b"], what="answers")


def test_every_exercise_accepts_its_solution_and_ids_are_unique():
    found = exercises.all_exercises()
    assert len({ex.id for ex in found}) == len(found) >= 3
    for ex in found:
        fb = ex.check(ex.solution)
        assert fb.ok, f"{ex.id}: {fb}"
        assert not ex.check(...).answered


# ---- experiments: predict, run, compare ------------------------------------------------------

EXPERIMENT = Experiment(
    id="9.9",
    title="more epochs",
    prompt="Predict the validation accuracy after 8 epochs instead of 1.",
    expects="a validation accuracy between 0 and 1",
    tolerance=0.05,
    why="More passes over the data fit the weights better.",
    solution=0.9,
    minimum=0,
    maximum=1,
)


def test_experiment_accepts_a_prediction_within_its_tolerance():
    feedback = EXPERIMENT.check(0.88, observed=0.91)
    assert feedback.ok
    assert str(feedback).startswith("✓ You predicted 0.88; the experiment gave 0.91 (within 0.05).")


def test_experiment_explains_a_prediction_outside_its_tolerance():
    feedback = EXPERIMENT.check(0.5, observed=np.float32(0.91))
    assert not feedback.ok and feedback.answered
    assert "off by 0.41, more than the 0.05 this exercise allows" in feedback.message
    assert "Hint: More passes over the data" in feedback.message


@pytest.mark.parametrize(
    "answer, observed, text",
    [
        (..., 0.9, "Your turn — exercise 9.9, more epochs."),
        ("0.9", 0.9, "which is text. Write the number without quotes."),
        (1.5, 0.9, "in [0, 1], got 1.5"),
        (0.9, None, "the experiment gave None (NoneType), not a number"),
    ],
)
def test_experiment_never_raises(answer, observed, text):
    feedback = EXPERIMENT.check(answer, observed)
    assert not feedback.ok and text in feedback.message


def test_run_hands_the_observed_value_to_an_experiment(capsys):
    feedback = run(EXPERIMENT, 0.9, observed=0.93)
    assert feedback.ok and "the experiment gave 0.93" in capsys.readouterr().out
    assert run(EXPERIMENT, ..., observed=0.93, solutions=True).ok


def test_run_calls_a_lazy_experiment_only_for_a_prediction(capsys):
    calls = []

    def experiment():
        calls.append(1)
        return 0.9

    assert not run(EXPERIMENT, ..., observed=experiment).answered
    assert calls == []
    assert run(EXPERIMENT, 0.9, observed=experiment).ok and calls == [1]
