"""Experiment 3.4 on the smoke profile's digits: serving raw pixels to a 1-nearest-neighbour
classifier fitted on transformed ones raises no error but costs accuracy."""

from __future__ import annotations

import pytest

from workbench import exercises
from workbench.config import get_profile
from workbench.errors import DataError, ParameterError
from workbench.exercises import data
from workbench.identify import DEFAULT_SPLIT

SMOKE = get_profile("smoke").dataset


@pytest.fixture(scope="module")
def observed() -> float:
    return data.served_accuracy(SMOKE, transformed=False, **DEFAULT_SPLIT)


def test_experiments_are_exported_apart_from_the_classic_exercises():
    assert data.EXPERIMENTS == (data.SKIPPED_TRANSFORM,)
    assert data.SKIPPED_TRANSFORM not in exercises.all_exercises()


def test_the_prompt_and_the_reference_match_the_smoke_result(observed):
    assert data.served_accuracy(SMOKE, **DEFAULT_SPLIT) == pytest.approx(0.972, abs=0.001)
    assert "0.97 of the validation images are classified right" in data.SKIPPED_TRANSFORM.prompt
    assert observed == pytest.approx(0.765, abs=0.001)  # 137 of the 179 validation images
    assert abs(data.SKIPPED_TRANSFORM.solution - observed) <= data.SKIPPED_TRANSFORM.tolerance
    assert data.SKIPPED_TRANSFORM.check(data.SKIPPED_TRANSFORM.solution, observed).ok


def test_a_prediction_inside_the_tolerance_is_accepted(observed):
    fb = data.SKIPPED_TRANSFORM.check(0.7, observed=observed)
    assert fb.ok and fb.answered
    assert "You predicted 0.7; the experiment gave 0.765 (within 0.1)." in fb.message
    assert "no error is raised; only the answers change" in fb.message


def test_a_prediction_outside_the_tolerance_is_explained(observed):
    fb = data.SKIPPED_TRANSFORM.check(0.1, observed=observed)  # "chance: one class in ten"
    assert not fb.ok and fb.answered
    assert "You predicted 0.1; the experiment gave 0.765: off by 0.665" in fb.message
    assert "Hint: Nothing fails: raw images have the shape the classifier expects" in fb.message


def test_the_full_profile_numbers_the_prompt_and_the_why_quote():
    full = get_profile("full").dataset
    assert data.served_accuracy(full, **DEFAULT_SPLIT) == pytest.approx(0.94, abs=0.005)
    assert data.served_accuracy(full, transformed=False, **DEFAULT_SPLIT) == pytest.approx(
        0.67, abs=0.005
    )
    assert "0.94 on the full one" in data.SKIPPED_TRANSFORM.prompt
    assert "0.67 on the full one" in data.SKIPPED_TRANSFORM.why


def test_served_accuracy_needs_an_image_source_and_a_bool():
    with pytest.raises(DataError, match="expected an image source"):
        data.served_accuracy("sklearn:wine")
    with pytest.raises(ParameterError, match="'transformed'"):
        data.served_accuracy(transformed="no")
