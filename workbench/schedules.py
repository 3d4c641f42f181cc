"""The Keras classes a saved `model.keras` refers to, registered for `keras.saving.load_model`.

Keras classes live at module top level so a saved model loads in any process that imports this
module (a notebook, a test, a serving process), with `safe_mode=True`:

    import keras
    import workbench.schedules  # registers workbench>WarmupSchedule
    model = keras.saving.load_model("runs/latest/train/<run_id>/model.keras", safe_mode=True)

Importing it loads Keras (through `workbench.config.load_keras`: quiet TensorFlow logs, the
TensorFlow backend unless `KERAS_BACKEND` says otherwise) and nothing else of the workbench.
"""

from __future__ import annotations

import math
from typing import Any

from workbench.config import load_keras

keras = load_keras()


@keras.saving.register_keras_serializable(package="workbench", name="WarmupSchedule")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak`, then constant or cosine decay to 0 at `total_steps`."""

    def __init__(
        self, peak: float, total_steps: int, warmup_steps: int = 0, decay: str = "cosine"
    ) -> None:
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup_steps, self.decay = int(warmup_steps), decay

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        if self.decay == "constant":
            after = ops.full_like(step, self.peak)
        else:
            span = max(self.total_steps - self.warmup_steps, 1)
            progress = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            after = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warm, after)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
        }
