"""Figure 2's loop as a view: every step (drift, gate decision with its reasons, champion) as a
table, the accuracy-and-drift figure, and a rollback button.

The button calls `ProductionLoop.rollback()` (also `LoopView.rollback()`, so tests and
notebooks press it as a user would): the previous champion serves again, in the registry and,
when the loop watches a service, in the running service.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w

from workbench.tables import format_table
from workbench.widgets.base import View, png


class LoopView(View):
    """The history of a `workbench.deploy.loop.ProductionLoop`, with a rollback button."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self._table = w.HTML()
        self._reasons = w.HTML()
        self._figure = w.Image(format="png")
        self._rollback = w.Button(description="rollback", icon="undo")
        self._rollback.on_click(lambda _: self.rollback())
        self._answer = w.HTML()
        self.controls = {}
        self._root = w.VBox(
            [self._table, self._reasons, self._figure, w.HBox([self._rollback]), self._answer]
        )
        self.refresh()

    def refresh(self) -> None:
        """Redraw the table, the latest gate decision's reasons and the figure."""
        from workbench.plots.production import plot_loop

        history = self.loop.history
        self._table.value = f"<pre>{html.escape(format_table(self.loop.table()))}</pre>"
        decided = [s for s in history if s.decision is not None]
        self._reasons.value = (
            f"<pre>{html.escape(f'{decided[-1].event}: {decided[-1].decision}')}</pre>"
            if decided
            else ""
        )
        self._figure.value = png(plot_loop(history)) if history else b""

    def rollback(self) -> str:
        """The previous champion serves again; says what happened."""
        try:
            step = self.loop.rollback()
        except Exception as e:  # a button shows the error instead of raising it
            return self._say(f"{type(e).__name__}: {e}")
        self.refresh()
        swap = step.swap or {}
        served = f"; the service answered {swap['answered']}" if swap else ""
        return self._say(f"{step.event}: champion is version {step.champion}{served}")

    def _say(self, text: str) -> str:
        self._answer.value = f"<code>{html.escape(text)}</code>"
        return text
