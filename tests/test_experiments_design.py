"""Experiment 2.3 (double every width): recounted on the smoke profile's card and preset, a
prediction within the tolerance accepted, one outside it explained with both numbers."""

from __future__ import annotations

import pytest

from workbench import config, exercises
from workbench.exercises import all_exercises, design

EXPERIMENT = design.DOUBLE_WIDTH


@pytest.fixture(scope="module")
def observed() -> float:
    """The experiment as the notebook runs it on the smoke profile (digits, its preset)."""
    spec = design.preset(config.get_profile("smoke").preset, design.CARD)
    assert spec == design.COMPACT
    return design.scaled_params_factor(spec, design.CARD)


def test_doubling_every_width_recounts_both_plans(observed):
    assert observed == pytest.approx(325_962 / 99_178)  # x4 convolutions, x2 embedding, x1 logits
    assert EXPERIMENT.tolerance == pytest.approx(0.1 * observed, abs=0.005)  # within 10 %
    assert abs(EXPERIMENT.solution - observed) <= EXPERIMENT.tolerance


def test_a_prediction_within_the_tolerance_is_right(observed):
    feedback = EXPERIMENT.check(3.1, observed=observed)
    assert feedback.ok
    assert feedback.message.startswith("You predicted 3.1; the experiment gave 3.29 (within 0.33).")
    assert "kh·kw·Cin·Cout" in feedback.message


@pytest.mark.parametrize("prediction, off", [(4, "0.713"), (2, "1.29")])
def test_a_prediction_outside_the_tolerance_is_explained(observed, prediction, off):
    feedback = EXPERIMENT.check(prediction, observed=observed)
    assert not feedback.ok and feedback.answered
    assert f"You predicted {prediction}; the experiment gave 3.29: off by {off}" in feedback.message
    assert "Hint: A convolution holds kh·kw·Cin·Cout weights" in feedback.message


def test_instructor_mode_passes_and_unanswered_is_your_turn(observed, capsys):
    assert exercises.run(EXPERIMENT, ..., observed=observed, solutions=True).ok
    assert "Reference solution of exercise 2.3: 3.29" in capsys.readouterr().out
    feedback = EXPERIMENT.check(..., observed=observed)
    assert (feedback.ok, feedback.answered) == (False, False)
    assert "Your turn — exercise 2.3, double every width." in feedback.message


def test_experiments_are_kept_apart_from_the_classic_exercises():
    assert design.EXPERIMENTS == (EXPERIMENT,)
    assert EXPERIMENT not in all_exercises()
    ids = [e.id for e in (*design.EXERCISES, *design.EXPERIMENTS)]
    assert sorted(ids) == ["2.1", "2.2", "2.3", "2.4"]
