"""The one set of value checks: types, open and closed bounds, NumPy scalars, two phrasings."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import params
from workbench.errors import ParameterError, SpecError


@pytest.mark.parametrize("value", [3, np.int64(3), np.array(3)])
def test_numpy_integers_are_integers(value):
    assert params.check_int("epochs", value, minimum=1) == 3
    assert type(params.check_int("epochs", value)) is int


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), np.array(0.5)])
def test_numpy_floats_are_numbers(value):
    assert params.check_number("rate", value, minimum=0, maximum=1) == 0.5


@pytest.mark.parametrize("value", [True, np.bool_(True)])
def test_booleans_are_never_numbers(value):
    with pytest.raises(ParameterError, match="Parameter 'n': expected an integer, got True"):
        params.check_int("n", value)
    with pytest.raises(ParameterError, match="Parameter 'x': expected a number, got True"):
        params.check_number("x", value)


def test_nan_is_not_a_number_and_floats_are_not_integers():
    with pytest.raises(ParameterError, match="expected a number, got nan"):
        params.check_number("x", float("nan"))
    with pytest.raises(ParameterError, match="expected an integer, got 3.0"):
        params.check_int("n", 3.0)


@pytest.mark.parametrize(
    "bounds, inside, outside, text",
    [
        ({"minimum": 0, "exclusive_minimum": True}, 1e-9, 0, "(0, inf]"),
        ({"maximum": 1, "exclusive_maximum": True}, 0.999, 1, "[-inf, 1)"),
        ({"minimum": 0, "maximum": 1}, 1, 1.01, "[0, 1]"),
    ],
)
def test_open_and_closed_bounds(bounds, inside, outside, text):
    assert params.check_number("x", inside, **bounds) == inside
    with pytest.raises(ParameterError) as e:
        params.check_number("x", outside, **bounds)
    assert str(e.value) == f"Parameter 'x': expected a number in {text}, got {outside}."


def test_an_owner_speaks_as_part_of_a_spec():
    with pytest.raises(SpecError) as e:
        params.check_int("filters", 0, minimum=1, error=SpecError, owner="Group 1")
    assert str(e.value) == "Group 1: filters must be a positive integer, got 0."
    with pytest.raises(SpecError) as e:
        params.check_choice("padding", "full", ["same"], error=SpecError, owner="ModelSpec")
    assert str(e.value) == "ModelSpec: unknown padding 'full'; expected one of ['same']."


def test_a_hint_follows_the_message():
    with pytest.raises(ParameterError) as e:
        params.check_int("epochs", 0, minimum=1, hint="Train at least one epoch.")
    assert (
        str(e.value)
        == "Parameter 'epochs': expected an integer >= 1, got 0. Train at least one epoch."
    )
