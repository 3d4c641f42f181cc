"""Experiment 3.4 on the smoke profile's digits: serving raw pixels to a 1-nearest-neighbour
classifier fitted on transformed ones raises no error but costs accuracy."""

from __future__ import annotations

import numpy as np
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
    assert data.EXPERIMENTS == (data.SKIPPED_TRANSFORM, data.ZERO_FILL)
    assert not any(e in exercises.all_exercises() for e in data.EXPERIMENTS)


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


# ---- 3.5: filling missing values with zeros ------------------------------------------------


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory):
    from workbench.data.examples import messy_wine_csv

    return messy_wine_csv(tmp_path_factory.mktemp("wine") / "wine.csv", seed=0)


def test_zero_filling_costs_what_the_prompt_and_the_why_say(wine_csv):
    median = data.imputed_accuracy(wine_csv)
    zeros = data.imputed_accuracy(wine_csv, fill="zero")
    assert median == pytest.approx(52 / 53) and zeros == pytest.approx(41 / 53)
    assert "0.98 of the 53 validation wines right (52 of them)" in data.ZERO_FILL.prompt
    assert "drops from 0.98 to 0.77 (41 of 53)" in data.ZERO_FILL.why
    assert data.ZERO_FILL.check(data.ZERO_FILL.solution, zeros).ok
    fb = data.ZERO_FILL.check(0.98, zeros)  # "zeros are as good as anything"
    assert (
        not fb.ok
        and "off by 0.206" in fb.message
        and "A zero is not 'no information'" in fb.message
    )


def test_the_prompts_facts_about_the_table(wine_csv):
    from workbench.data import load_source, split_indices

    raw = load_source(f"csv:{wine_csv}", target="cultivar")
    numeric = [j for j, n in enumerate(raw.feature_names) if n not in raw.categories]
    assert np.isnan(raw.x[:, numeric]).any(axis=1).mean() == pytest.approx(0.38, abs=0.005)
    train, val, _ = split_indices(raw, **data.TABLE_SPLIT)
    proline = raw.x[train, raw.feature_names.index("proline")]
    assert (np.nanmin(proline), np.nanmax(proline), len(val)) == (290, 1547, 53)
    assert "(38 %) miss at least one number" in data.ZERO_FILL.prompt
    assert "proline run from 290 to 1,547" in data.ZERO_FILL.why
    with pytest.raises(ParameterError, match="Parameter 'fill'"):
        data.imputed_accuracy(wine_csv, fill="mean")
