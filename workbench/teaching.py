"""The teaching layer at run time: cell tags and the numbers a notebook states.

A teaching notebook tags its exercise, solution and instructor cells (student copies drop the
last two) and records each number its prose states with `state("NAME", value)`; the tests'
notebook linter (tests/notebook_lint.py) reads those values back and checks the conventions.
"""

from __future__ import annotations

import sys
from typing import Any

from workbench import params
from workbench.errors import ParameterError

EXERCISE, SOLUTION, INSTRUCTOR, PARAMETERS = "exercise", "solution", "instructor", "parameters"
STATED_PREFIX = "[stated]"  # the plain line `state` prints outside a kernel
# The output `state` leaves in a notebook: display data of this type only. JupyterLab 4 has no
# renderer for it and shows nothing (not even a "no renderer" note); nbformat and papermill keep
# it; a # NBVAL_CHECK_OUTPUT cell is compared with its committed output, this one included.
STATED_MIMETYPE = "application/vnd.workbench.stated+json"

Number = int | float


def state(name: str, value: Any, *, digits: int = 3) -> None:
    """Record the number the prose states, as the code computed it, where tests read it back.

    In a kernel it is an output the reader does not see: `{"name": name, "value": text}` under
    STATED_MIMETYPE. Elsewhere (plain Python, a script) it prints `[stated] name = text`.
    The text is a float rounded to `digits` decimals, or an int (e.g. a class count) exactly;
    text rather than a JSON number, so NaN stays valid JSON and the rounding stays exact.
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
    shell = _kernel_shell()
    if shell is None:
        print(f"{STATED_PREFIX} {name} = {text}")
    else:
        shell.display_pub.publish(data={STATED_MIMETYPE: {"name": name, "value": text}})


def _kernel_shell() -> Any:
    """The running Jupyter kernel's shell, or None outside one (IPython is not imported here:
    a kernel has always imported it already)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if getattr(shell, "kernel", None) is not None else None


def tags(cell: Any) -> set[str]:
    """The cell's tags."""
    return set(cell.get("metadata", {}).get("tags", []))
