"""Stage 2's view: change a preset's width, blocks, block type and embedding; see the cost live.

Thin over pure functions: `preset` -> `ModelSpec.scaled/with_blocks/...` -> `summarize` and
`plot_architecture`. Nothing here builds a Keras model, so every change redraws in milliseconds;
an impossible setting shows its SpecError message instead of raising.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as widgets

from workbench.design import ModelSpec, Summary, format_summary, list_presets, preset, summarize
from workbench.errors import SpecError
from workbench.plots.design import plot_architecture
from workbench.widgets.base import View, png

if TYPE_CHECKING:
    from workbench.identify import ProblemCard

AS_PRESET = "as preset"  # the label of "keep the preset's value" in every override control


class DesignView(View):
    """A preset plus overrides; `refresh()` recomputes the summary and diagram (headless too)."""

    def __init__(self, card: ProblemCard, *, preset_name: str = "compact") -> None:
        self.card = card
        names = list_presets(card)
        blocks = ("conv", "residual", "separable") if card.modality == "image" else ("dense",)
        self.spec: ModelSpec | None = None  # the spec shown, None while the settings are invalid
        self.summary: Summary | None = None  # its summary
        self.error: str | None = None  # the SpecError message of invalid settings
        self.text = ""  # the text shown: the spec and its cost, or the error
        self.png = b""  # the diagram shown, as PNG bytes (empty while invalid)
        self._preset = widgets.Dropdown(
            options=names,
            value=preset_name if preset_name in names else names[0],
            description="preset",
        )
        self._width = widgets.FloatSlider(
            value=1.0, min=0.25, max=2.0, step=0.25, continuous_update=False, description="width x"
        )
        self._blocks = widgets.SelectionSlider(
            options=[(AS_PRESET, 0), *((str(n), n) for n in range(1, 5))],
            continuous_update=False,
            description="blocks/group",
        )
        self._block = widgets.Dropdown(
            options=[(AS_PRESET, ""), *((b, b) for b in blocks)], description="block"
        )
        self._embedding = widgets.Dropdown(
            options=[(AS_PRESET, -1), ("none", 0), *((str(n), n) for n in (32, 64, 128, 256))],
            description="embedding",
        )
        self._text = widgets.HTML()
        self._image = widgets.Image(format="png")
        self.controls = {  # by name, for `set` and for linking to other views
            "preset": self._preset,
            "width": self._width,
            "blocks": self._blocks,
            "block": self._block,
            "embedding": self._embedding,
        }
        for control in self.controls.values():
            control.observe(self.refresh, names="value")
        self._root = widgets.VBox(
            [
                widgets.HBox([self._preset, self._block, self._embedding]),
                widgets.HBox([self._width, self._blocks]),
                self._text,
                self._image,
            ]
        )
        self.refresh()

    def current_spec(self) -> ModelSpec:
        """The spec the controls describe (may raise SpecError)."""
        spec = preset(self._preset.value, self.card)
        if self._width.value != 1.0:
            spec = spec.scaled(self._width.value)
        if self._blocks.value:
            spec = spec.with_blocks(self._blocks.value)
        if self._block.value:
            spec = spec.with_block_type(self._block.value)
        if self._embedding.value >= 0:
            spec = spec.replace(task=spec.task.replace(embedding_units=self._embedding.value))
        return spec

    def refresh(self, change: dict | None = None) -> Summary | None:
        """Recompute the summary and redraw; show the SpecError instead if the spec is invalid."""
        try:
            spec = self.current_spec()
            summary = summarize(spec, self.card)
        except SpecError as e:
            self.spec, self.summary, self.error = None, None, str(e)
            self.text, self.png = self.error, b""
            self._text.value = f"<pre style='color:#b00020'>{html.escape(self.text)}</pre>"
            self._image.value = self.png
            return None
        self.spec, self.summary, self.error = spec, summary, None
        self.text = f"{spec!r}\n\n{format_summary(summary, layers=False)}"
        self.png = png(plot_architecture(spec, self.card), dpi=80)
        self._text.value = f"<pre>{html.escape(self.text)}</pre>"
        self._image.value = self.png
        return summary
