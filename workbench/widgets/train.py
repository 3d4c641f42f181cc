"""Stage 4's view: learning curves redrawn after every epoch while `train` runs.

    live = LivePlot()
    display(live)                                   # in JupyterLab: the image updates live
    train(spec, version, config, card=card, run_dir=run.dir, callbacks=[live])

`LivePlot` is a Keras callback (the training stage never imports it: the notebook hands it in)
and a thin view over `plots.train.plot_history`. Headless, it keeps the last figure and PNG.
It is defined at module top level, so this module imports Keras (`workbench` never imports a
widget module).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from workbench.config import load_keras
from workbench.plots.train import plot_history
from workbench.train import history_from_rows
from workbench.widgets.base import View, png

keras = load_keras()


class LivePlot(keras.callbacks.Callback, View):
    """A Keras callback that redraws the learning curves every `every` epochs."""

    def __init__(self, *, every: int = 1, title: str = "Learning curves (live)") -> None:
        super().__init__()
        self.every, self.title = every, title
        self.rows: dict[int, dict[str, float]] = {}  # epoch -> its logs
        self.figure = None  # the last figure drawn
        self.png = b""  # ... as PNG bytes, shown in the image widget
        self._status = widgets.HTML("waiting for the first epoch")
        self._image = widgets.Image(format="png")
        self._root = widgets.VBox([self._status, self._image])

    def __repr__(self) -> str:
        return f"LivePlot({len(self.rows)} epochs seen, every={self.every})"

    @property
    def status(self) -> str:
        """The line above the curves: the last epoch's numbers."""
        return self._status.value

    @property
    def history(self) -> dict[str, list[float]]:
        """The epochs seen so far, in Keras' History layout."""
        return history_from_rows([self.rows[e] for e in sorted(self.rows)])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.rows[epoch] = {k: float(v) for k, v in (logs or {}).items()}
        if (epoch + 1) % self.every == 0:
            self.refresh()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Redraw the curves from the epochs seen so far."""
        if not self.rows:
            return
        epochs = sorted(self.rows)
        self.figure = plot_history(self.history, epochs=epochs, title=self.title)
        self.png = png(self.figure)
        self._image.value = self.png
        last = self.rows[epochs[-1]]
        text = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "learning_rate")
        self._status.value = f"epoch {epochs[-1] + 1}: {text}"
