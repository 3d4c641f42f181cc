"""The Keras callbacks `workbench.train.train` adds to a fit: epoch log and line, checkpoint.

They are defined once, at module top level, where they can be read and tested. No saved model
refers to them, so they are not registered for loading (`workbench.schedules` holds what is).
"""

from __future__ import annotations

from pathlib import Path

from workbench.config import load_keras
from workbench.files import atomic_write_json

keras = load_keras()


class EpochLog(keras.callbacks.Callback):
    """Each finished epoch's logs in a JSON file, so the history survives a resume."""

    def __init__(self, path: Path, rows: list[dict[str, float]]):
        super().__init__()
        self.path, self.rows = path, rows

    def on_epoch_begin(self, epoch, logs=None):
        del self.rows[epoch:]  # a resumed run starts after its last backed-up epoch

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({k: float(v) for k, v in (logs or {}).items()})
        atomic_write_json(self.path, self.rows)


class EpochLine(keras.callbacks.Callback):
    """One line per finished epoch with its metrics and no timings (Keras' `verbose=2` adds
    seconds per step), so logs and committed notebook outputs read the same on every machine."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        numbers = " - ".join(
            f"{k} {float(v):.4f}" for k, v in (logs or {}).items() if k != "learning_rate"
        )
        print(f"Epoch {epoch + 1}/{self.epochs}: {numbers}", flush=True)


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint of the model without its augmentation wrapper; after a resume it
    only overwrites best.keras with a better epoch than those before the interruption."""

    def __init__(self, filepath: Path, *, inner, prior: list[dict[str, float]], **kwargs):
        super().__init__(str(filepath), save_best_only=True, **kwargs)
        self._inner, self._prior, self._first = inner, prior, True

    @property
    def model(self):
        super().model  # noqa: B018 - lets the backend sync the training model (JAX)
        return self._inner

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and epoch > 0:
            seen = [r[self.monitor] for r in self._prior[:epoch] if self.monitor in r]
            self.best = min(seen, default=self.best)
        self._first = False
        super().on_epoch_begin(epoch, logs)
