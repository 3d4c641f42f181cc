"""A small pad to draw a digit on with the mouse (ipycanvas), and a button to clear it.

The strokes are kept in Python as (x, y) points and rasterized there
(`workbench.data.drawing.rasterize`): the canvas only shows them, so what the model sees does not
depend on the browser. `on_drawn(strokes)` is called when the pen lifts.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from workbench.data.drawing import PAD, PEN

Strokes = list[list[tuple[float, float]]]


class DrawingPad:
    """White ink on a black `size`-pixel square; `strokes` holds what was drawn."""

    def __init__(self, on_drawn: Callable[[Strokes], None], *, size: int = PAD) -> None:
        from ipycanvas import Canvas

        self.on_drawn, self.size = on_drawn, size
        self.strokes: Strokes = []
        self._pen_down = False
        box = w.Layout(width=f"{size}px", height=f"{size}px", border="1px solid #999")
        self.canvas = Canvas(width=size, height=size, layout=box)  # not stretched to the cell
        self.canvas.on_mouse_down(self._down)
        self.canvas.on_mouse_move(self._move)
        self.canvas.on_mouse_up(self._up)
        self.canvas.on_mouse_out(self._up)
        clear = w.Button(description="clear", tooltip="wipe the pad")
        clear.on_click(lambda _: self.clear())
        hint = w.HTML("<i>draw a digit with the mouse, as large as the box</i>")
        self.widget = w.VBox([hint, self.canvas, clear])
        self._wipe()

    def draw(self, strokes: Strokes) -> None:
        """Draw `strokes` as a hand would (shown on the canvas), then lift the pen."""
        for stroke in strokes:
            self._down(*stroke[0])
            for x, y in stroke[1:]:
                self._move(x, y)
            self._up(*stroke[-1])

    def clear(self) -> None:
        self.strokes = []
        self._wipe()
        self.on_drawn(self.strokes)

    def _wipe(self) -> None:
        self.canvas.fill_style = "black"
        self.canvas.fill_rect(0, 0, self.size, self.size)
        self.canvas.stroke_style = self.canvas.fill_style = "white"
        self.canvas.line_width, self.canvas.line_cap, self.canvas.line_join = PEN, "round", "round"

    def _down(self, x: float, y: float) -> None:
        self._pen_down = True
        self.strokes.append([(x, y)])
        self.canvas.fill_circle(x, y, PEN / 2)

    def _move(self, x: float, y: float) -> None:
        if self._pen_down:
            x0, y0 = self.strokes[-1][-1]
            self.strokes[-1].append((x, y))
            self.canvas.stroke_line(x0, y0, x, y)

    def _up(self, x: float, y: float) -> None:
        if self._pen_down:
            self._pen_down = False
            self.on_drawn(self.strokes)
