"""Parameter checks for the cell after a notebook's `parameters` cell.

Each check raises a `ParameterError` that names the parameter, the value received and what is
allowed, so a papermill run with `-p epochs -1` fails in the validation cell with a clear message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.errors import ParameterError


def _fail(name: str, value: Any, expected: str, hint: str = "") -> ParameterError:
    msg = f"Parameter {name!r}: expected {expected}, got {value!r}."
    return ParameterError(f"{msg} {hint}".strip())


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return `value` if it is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise _fail(name, value, f"one of {choices}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return `value` if it is a bool (papermill passes `-p flag True` as a bool)."""
    if not isinstance(value, bool):
        raise _fail(name, value, "True or False")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return `value` if it is an int (not a bool) at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, value, "an integer")
    if minimum is not None and value < minimum:
        raise _fail(name, value, f"an integer >= {minimum}")
    return value


def check_number(
    name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """Return `value` as a float if it is a real number within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, value, "a number")
    lo = "-inf" if minimum is None else minimum
    hi = "inf" if maximum is None else maximum
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(name, value, f"a number in [{lo}, {hi}]")
    return float(value)


def check_str(name: str, value: Any) -> str:
    """Return `value` if it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise _fail(name, value, "a non-empty string")
    return value


def check_path(name: str, value: Any, *, must_exist: bool = True) -> Path:
    """Return `value` as a Path; if `must_exist`, it must exist."""
    if not isinstance(value, str | Path) or not str(value).strip():
        raise _fail(name, value, "a path (string)")
    path = Path(value).expanduser()
    if must_exist and not path.exists():
        raise _fail(name, value, "an existing path", "Check the spelling or create it first.")
    return path
