"""workbench: a visual, notebook-driven teaching workbench for deep learning as a pipeline.

`import workbench` stays light: Keras and TensorFlow load only when a stage needs them.
"""

__version__ = "0.1.0"

from workbench.errors import DataError, ParameterError, ServingError, SpecError, WorkbenchError

__all__ = [
    "DataError",
    "ParameterError",
    "ServingError",
    "SpecError",
    "WorkbenchError",
    "__version__",
]
