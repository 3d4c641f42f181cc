"""One set of value checks for notebook parameters, spec and card fields, and exercise answers.

Each check returns the value as a plain Python type or raises an error that names the value,
says what was expected and what was received. Two phrasings, one logic:

    check_int("epochs", 0, minimum=1)
    -> ParameterError: Parameter 'epochs': expected an integer >= 1, got 0.
    check_int("filters", 0, minimum=1, error=SpecError, owner="Group 1")
    -> SpecError: Group 1: filters must be a positive integer, got 0.

Numbers are ints, floats and NumPy scalars (or 0-d arrays); booleans are never numbers, and NaN
is never a valid number. Bounds are closed unless `exclusive_minimum` / `exclusive_maximum`.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.errors import ParameterError, WorkbenchError


def as_scalar(value: Any) -> Any:
    """A NumPy scalar or 0-d array as the Python value it holds; anything else unchanged."""
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return value.item()
    return value


def is_number(value: Any) -> bool:
    """Whether `value` is a real number (int, float, NumPy scalar), not a bool and not NaN."""
    value = as_scalar(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def is_integer(value: Any) -> bool:
    """Whether `value` is an integer (int or NumPy integer), not a bool or a float."""
    return isinstance(as_scalar(value), int) and not isinstance(as_scalar(value), bool)


def within(
    value: float,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> bool:
    """Whether the number `value` lies within the bounds (None: unbounded on that side)."""
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        return False
    return maximum is None or (value < maximum if exclusive_maximum else value <= maximum)


def interval(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> str:
    """The bounds in interval notation: `[0, 1)`, `(0, 1]`, `[-inf, 5]`."""
    lo = "-inf" if minimum is None else minimum
    hi = "inf" if maximum is None else maximum
    return f"{'(' if exclusive_minimum else '['}{lo}, {hi}{')' if exclusive_maximum else ']'}"


def _fail(
    name: str,
    value: Any,
    expected: str,
    hint: str = "",
    *,
    error: type[WorkbenchError],
    owner: str | None,
) -> WorkbenchError:
    value = as_scalar(value)  # "got True", not "got np.True_"
    if owner:
        msg = f"{owner}: {name} must be {expected}, got {value!r}."
    else:
        msg = f"Parameter {name!r}: expected {expected}, got {value!r}."
    return error(f"{msg} {hint}".strip())


def check_choice(
    name: str,
    value: Any,
    choices: Iterable[Any],
    *,
    error: type[WorkbenchError] = ParameterError,
    owner: str | None = None,
) -> Any:
    """Return `value` if it is one of `choices`."""
    choices = list(choices)
    if value in choices:
        return value
    if owner:
        raise error(f"{owner}: unknown {name} {value!r}; expected one of {choices}.")
    raise _fail(name, value, f"one of {choices}", error=error, owner=None)


def check_bool(
    name: str,
    value: Any,
    *,
    error: type[WorkbenchError] = ParameterError,
    owner: str | None = None,
) -> bool:
    """Return `value` if it is a bool (papermill passes `-p flag True` as a bool)."""
    value = as_scalar(value)
    if not isinstance(value, bool):
        raise _fail(name, value, "True or False", error=error, owner=owner)
    return value


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    hint: str = "",
    error: type[WorkbenchError] = ParameterError,
    owner: str | None = None,
) -> int:
    """Return `value` as an int if it is an integer (not a bool) within [minimum, maximum]."""
    if not is_integer(value):
        raise _fail(name, value, "an integer", hint, error=error, owner=owner)
    value = int(as_scalar(value))
    if not within(value, minimum, maximum):
        raise _fail(
            name, value, _int_bounds(minimum, maximum, owner), hint, error=error, owner=owner
        )
    return value


def _int_bounds(minimum: int | None, maximum: int | None, owner: str | None) -> str:
    if maximum is None and owner and minimum in (0, 1):  # "filters must be a positive integer"
        return "a positive integer" if minimum == 1 else "0 or a positive integer"
    if maximum is None:
        return f"an integer >= {minimum}"
    return f"an integer in {interval(minimum, maximum)}"


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    hint: str = "",
    error: type[WorkbenchError] = ParameterError,
    owner: str | None = None,
) -> float:
    """Return `value` as a float if it is a real number within the bounds."""
    if not is_number(value):
        raise _fail(name, value, "a number", hint, error=error, owner=owner)
    value = as_scalar(value)  # an int stays an int in the message: "got -1", not "got -1.0"
    bounds = {
        "exclusive_minimum": exclusive_minimum,
        "exclusive_maximum": exclusive_maximum,
    }
    if not within(value, minimum, maximum, **bounds):
        where = interval(minimum, maximum, **bounds)
        expected = f"in {where}" if owner else f"a number in {where}"
        raise _fail(name, value, expected, hint, error=error, owner=owner)
    return float(value)


def check_str(
    name: str,
    value: Any,
    *,
    error: type[WorkbenchError] = ParameterError,
    owner: str | None = None,
) -> str:
    """Return `value` if it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "a non-empty string", error=error, owner=owner)
    return value


def check_path(name: str, value: Any, *, must_exist: bool = True) -> Path:
    """Return `value` as a Path; if `must_exist`, it must exist."""
    if not isinstance(value, str | Path) or not str(value).strip():
        raise _fail(name, value, "a path (string)", error=ParameterError, owner=None)
    path = Path(value).expanduser()
    if must_exist and not path.exists():
        raise _fail(
            name,
            value,
            "an existing path",
            "Check the spelling or create it first.",
            error=ParameterError,
            owner=None,
        )
    return path


def check_folder(name: str, value: Any) -> Path:
    """Return `value` as a folder that exists and takes new files, creating it (and its parents)
    if missing: a stage fails at the start with a clear message, not at its first write."""
    path = check_path(name, value, must_exist=False)
    blocker = next((p for p in (path, *path.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        where = "is a file" if blocker == path else f"lies below {str(blocker)!r}, which is a file"
        hint = f"The path {where}; choose a folder path (a missing folder is created)."
        raise _fail(name, str(path), "a folder", hint, error=ParameterError, owner=None)
    step = "Creating it"
    try:
        path.mkdir(parents=True, exist_ok=True)
        step = "Writing a file in it"
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        hint = (
            f"{step} failed ({e.strerror or e}); choose a folder of your own, such as one in "
            "the repository or in your home folder."
        )
        expected = "a folder that can be created and written to"
        raise _fail(name, str(path), expected, hint, error=ParameterError, owner=None) from None
    return path
