"""Thin views of stage 3: a class-filtered sample grid, an augmentation preview, the report.

Each view is a small class with private widgets, one `refresh` method and `close()`; it
calls the same functions a notebook calls directly, and shows the figure as a PNG image
widget, so it renders in JupyterLab and Voila and can be refreshed in a headless test.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as w
import numpy as np

from workbench.data.analysis import DataReport
from workbench.data.transform import augment_preview, augmentation
from workbench.plots.data import augmentation_grid, report_figure, sample_grid
from workbench.widgets.base import View, png


class _FigureView(View):
    """A view whose figure is one image widget, redrawn when one of its controls changes."""

    _image: w.Image

    @property
    def png(self) -> bytes:
        """The figure shown, as PNG bytes."""
        return bytes(self._image.value)

    def _on_change(self, change: dict) -> None:
        self.refresh()


class SampleGrid(_FigureView):
    """Random samples of a data set, filtered by a class dropdown."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        class_names: Sequence[str],
        *,
        n: int = 16,
        seed: int = 0,
    ):
        self._x, self._y, self._names, self._n, self._seed = x, y, list(class_names), n, seed
        options = [("all classes", -1)] + [(c, i) for i, c in enumerate(self._names)]
        self._classes = w.Dropdown(options=options, value=-1, description="class")
        self._image = w.Image(format="png")
        self.controls = {"classes": self._classes}
        self._classes.observe(self._on_change, names="value")
        self._root = w.VBox([self._classes, self._image])
        self.refresh()

    def refresh(self) -> None:
        """Redraw the grid for the selected class."""
        k = self._classes.value
        fig = sample_grid(
            self._x,
            self._y,
            class_names=self._names,
            classes=None if k == -1 else [k],
            n=self._n,
            seed=self._seed,
        )
        self._image.value = png(fig)


class AugmentationPreview(_FigureView):
    """Augmented copies of one image; a slider scales rotation, translation and zoom."""

    def __init__(
        self,
        image: np.ndarray,
        *,
        rotation: float = 0.05,
        translation: float = 0.1,
        zoom: float = 0.1,
        n: int = 8,
        seed: int = 0,
    ):
        self._original = image
        self._base = (rotation, translation, zoom)  # strength 1.0 = these factors
        self._n, self._seed = n, seed
        self._strength = w.FloatSlider(
            value=1.0, min=0.0, max=3.0, step=0.25, description="strength",
            continuous_update=False,
        )  # fmt: skip
        self._image = w.Image(format="png")
        self.controls = {"strength": self._strength}
        self._strength.observe(self._on_change, names="value")
        self._root = w.VBox([self._strength, self._image])
        self.refresh()

    def refresh(self) -> None:
        """Draw new augmented copies at the selected strength."""
        s = self._strength.value
        factors = [min(1.0, s * f) for f in self._base]
        augmenter = augmentation(*factors, seed=self._seed)
        copies = augment_preview(self._original, augmenter, n=self._n, seed=self._seed)
        title = "Augmentation preview: rotation {:.2f}, translation {:.2f}, zoom {:.2f}"
        self._image.value = png(
            augmentation_grid(self._original, copies, title=title.format(*factors))
        )


class DataReportView(_FigureView):
    """The data report: checks and warnings as a table, and the report figure."""

    def __init__(self, report: DataReport):
        self._report = report
        self._table = w.HTML()
        self._image = w.Image(format="png")
        self.controls = {}
        self._root = w.VBox([self._table, self._image])
        self.refresh()

    @property
    def html(self) -> str:
        """The checks and warnings shown, as an HTML table."""
        return self._table.value

    def refresh(self, report: DataReport | None = None) -> None:
        """Show `report` (or the current one again)."""
        self._report = report or self._report
        rows = "".join(
            f"<tr><td>{html.escape(str(r['check']))}</td><td>{html.escape(str(r['value']))}</td></tr>"
            for r in self._report.table()
        )
        warnings = "".join(f"<li>{html.escape(m)}</li>" for m in self._report.warnings)
        self._table.value = (
            f"<table><tr><th>check</th><th>value</th></tr>{rows}</table>"
            f"<ul>{warnings or '<li>no warnings</li>'}</ul>"
        )
        self._image.value = png(report_figure(self._report))
