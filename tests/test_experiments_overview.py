"""Experiment 0.4 on the smoke profile's digits: a random split of duplicated data leaks."""

from __future__ import annotations

import pytest

from workbench import exercises
from workbench.config import get_profile
from workbench.exercises import overview


@pytest.fixture(scope="module")
def observed() -> float:
    return overview.duplicated_split_leakage(get_profile("smoke").dataset, copies=2, seed=0)


def test_experiments_are_exported_apart_from_the_classic_exercises():
    assert overview.EXPERIMENTS == (overview.DUPLICATES,)
    assert overview.DUPLICATES not in exercises.all_exercises()


def test_the_reference_prediction_is_within_tolerance_of_the_smoke_result(observed):
    assert observed == pytest.approx(0.694, abs=0.001)  # 499 of the 719 test images
    assert abs(overview.DUPLICATES.solution - observed) <= overview.DUPLICATES.tolerance
    assert overview.DUPLICATES.check(overview.DUPLICATES.solution, observed).ok


def test_a_prediction_inside_the_tolerance_is_accepted(observed):
    fb = overview.DUPLICATES.check(0.66, observed=observed)
    assert fb.ok and fb.answered
    assert "You predicted 0.66; the experiment gave 0.694 (within 0.05)." in fb.message
    assert "lands in training with about the training share's probability, 0.7" in fb.message


def test_a_prediction_outside_the_tolerance_is_explained(observed):
    fb = overview.DUPLICATES.check(0.2, observed=observed)  # "the test share"
    assert not fb.ok and fb.answered
    assert "You predicted 0.2; the experiment gave 0.694: off by 0.494" in fb.message
    assert "Hint: The shuffle places a test image's copy like any other image" in fb.message


def test_more_copies_leak_more_and_one_copy_leaks_nothing():
    assert overview.duplicated_split_leakage(copies=1) == 0  # the digits have no duplicates
    assert overview.duplicated_split_leakage(copies=3) == pytest.approx(0.91, abs=0.03)
