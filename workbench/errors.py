"""The workbench's small family of exceptions.

Every message says what was wrong, what was received and what was expected, so a student
can fix the input without reading a traceback (the habit of scikit-learn's validation).
"""


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class ParameterError(WorkbenchError, ValueError):
    """A notebook or function parameter has the wrong type, value or path."""


class DataError(WorkbenchError, ValueError):
    """A data source, file or data set version is missing, unreadable or inconsistent."""


class SpecError(WorkbenchError, ValueError):
    """A problem card or model spec describes something that cannot be built."""


class ServingError(WorkbenchError):
    """A model cannot be served or a request cannot be answered."""
