"""The teaching layer at run time: cell tags and the numbers a notebook states.

A teaching notebook tags its exercise, solution and instructor cells (student copies drop the
last two) and prints each number its prose states with `state("NAME", value)`; the tests'
notebook linter (tests/notebook_lint.py) reads those lines back and checks the conventions.
"""

from __future__ import annotations

from typing import Any

from workbench import params
from workbench.errors import ParameterError

EXERCISE, SOLUTION, INSTRUCTOR, PARAMETERS = "exercise", "solution", "instructor", "parameters"
STATED_PREFIX = "[stated]"

Number = int | float


def state(name: str, value: Any, *, digits: int = 3) -> None:
    """Print `[stated] name = value`: the number the prose states, as the code computed it.

    Floats are rounded to `digits` decimals; ints (e.g. class counts) print exactly.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ParameterError(
            f"state: expected a name like 'baseline_accuracy' (letters, digits, _), got {name!r}."
        )
    value = params.as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(
            f"state: {name!r} must be an int or a float, got {value!r} ({type(value).__name__})."
        )
    text = str(value) if isinstance(value, int) else f"{value:.{digits}f}"
    print(f"{STATED_PREFIX} {name} = {text}")


def tags(cell: Any) -> set[str]:
    """The cell's tags."""
    return set(cell.get("metadata", {}).get("tags", []))
