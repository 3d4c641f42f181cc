"""Experiment 4.4 on the smoke profile: the notebook's training with a ten times smaller
learning rate, in a temporary run directory (about 6 seconds)."""

from __future__ import annotations

import pytest

from workbench import config, exercises, upstream
from workbench.errors import ParameterError
from workbench.exercises import train
from workbench.train import TrainConfig


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """What notebook 04 trains on the smoke profile (card, data version, spec and config built
    with the defaults, as a notebook opened on its own builds them)."""
    run = config.setup(run_dir=tmp_path_factory.mktemp("experiment-4.4"), profile="smoke")
    card = upstream.ensure_card(run)
    version = upstream.ensure_data(run, card)
    spec = upstream.ensure_spec(run, card)
    return run, card, version, spec, TrainConfig.for_profile("smoke", card=card, seed=run.seed)


@pytest.fixture(scope="module")
def observed(smoke) -> float:
    run, card, version, spec, train_config = smoke
    return train.smaller_learning_rate(spec, version, train_config, card=card)


def test_experiments_are_exported_apart_from_the_classic_exercises():
    assert train.EXPERIMENTS == (train.SMALLER_RATE,)
    assert train.SMALLER_RATE not in exercises.all_exercises()


def test_the_experiment_trains_apart_from_the_run(smoke, observed):
    run = smoke[0]
    assert config.current(run.dir, "train") is None  # never the run's current model
    assert not (run.dir / "train").exists()


def test_the_reference_prediction_is_within_tolerance_of_the_smoke_result(observed):
    assert observed == pytest.approx(0.91, abs=0.02)  # 2e-4 instead of 2e-3, 8 epochs
    assert abs(train.SMALLER_RATE.solution - observed) <= train.SMALLER_RATE.tolerance
    assert train.SMALLER_RATE.check(train.SMALLER_RATE.solution, observed).ok


def test_a_prediction_inside_the_tolerance_is_accepted(observed):
    fb = train.SMALLER_RATE.check(0.88, observed=observed)
    assert fb.ok and fb.answered
    assert f"You predicted 0.88; the experiment gave {observed:.3g} (within 0.05)." in fb.message
    assert "Adam moves each weight by roughly the learning rate or less per step" in fb.message


def test_a_prediction_outside_the_tolerance_is_explained(observed):
    fb = train.SMALLER_RATE.check(0.75, observed=observed)  # "a tenth of the steps": epoch 1
    assert not fb.ok and fb.answered
    off = abs(0.75 - observed)
    assert f"You predicted 0.75; the experiment gave {observed:.3g}: off by {off:.3g}" in fb.message
    assert "Hint: Adam moves each weight" in fb.message
    assert "it is not the same as training a tenth as long" in fb.message


def test_the_factor_is_checked_before_training(smoke):
    _, card, version, spec, train_config = smoke
    expected = r"Parameter 'factor': expected a number in \[1, inf\], got 0.5"
    with pytest.raises(ParameterError, match=expected):
        train.smaller_learning_rate(spec, version, train_config, card=card, factor=0.5)
