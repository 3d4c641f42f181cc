"""Experiment 1.4 on the smoke profile's digits: the majority baseline of "is it prime?"."""

from __future__ import annotations

import pytest

from workbench import exercises
from workbench.config import get_profile
from workbench.errors import ParameterError
from workbench.exercises import identify
from workbench.identify import DEFAULT_SPLIT

SMOKE = get_profile("smoke").dataset


@pytest.fixture(scope="module")
def observed() -> float:
    return identify.attribute_baseline(SMOKE, "prime", split=DEFAULT_SPLIT)


def test_experiments_are_exported_apart_from_the_classic_exercises():
    assert identify.EXPERIMENTS == (identify.PRIME,)
    assert identify.PRIME not in exercises.all_exercises()


def test_the_reference_prediction_is_within_tolerance_of_the_smoke_result(observed):
    assert observed == pytest.approx(0.599, abs=0.001)  # 215 of the 359 test digits are not prime
    assert abs(identify.PRIME.solution - observed) <= identify.PRIME.tolerance
    assert exercises.run(identify.PRIME, ..., observed=observed, solutions=True).ok


def test_a_prediction_inside_the_tolerance_is_accepted(observed):
    fb = identify.PRIME.check(0.62, observed=observed)
    assert fb.ok and fb.answered
    assert "You predicted 0.62; the experiment gave 0.599 (within 0.03)." in fb.message
    assert "its accuracy is the test split's share of 'not prime', about 0.6" in fb.message


@pytest.mark.parametrize("prediction", [0.5, 0.4])  # "binary means 0.5", the minority's share
def test_a_prediction_outside_the_tolerance_is_explained(observed, prediction):
    fb = identify.PRIME.check(prediction, observed=observed)
    assert not fb.ok and fb.answered
    assert f"You predicted {prediction:g}; the experiment gave 0.599: off by" in fb.message
    assert "Hint: 4 of the 10 digits are prime" in fb.message
    assert "A binary baseline is 0.5 only when the two answers are equally common" in fb.message


def test_the_stratified_split_keeps_the_baseline_across_seeds_and_balanced_answers_give_half():
    other_seed = {**DEFAULT_SPLIT, "seed": 3}
    assert identify.attribute_baseline(SMOKE, "prime", split=other_seed) == pytest.approx(
        0.599, abs=0.001
    )
    assert identify.attribute_baseline(SMOKE, "even") == pytest.approx(0.5, abs=0.01)


def test_the_attribute_is_checked():
    with pytest.raises(ParameterError, match="attribute"):
        identify.attribute_baseline(SMOKE, "odd")
