"""What every view shares: the root widget, notebook display, closing, figures as PNG."""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as w

from workbench import params


def png(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes, for an `ipywidgets.Image`."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class View:
    """A small stateful view: private widgets under `_root`, one `refresh`, and `close()`.

    `controls` names the widgets a user changes; `set(name=value)` changes them as a user
    would (each change refreshes the view through its observer), so tests and notebooks never
    reach for a private widget.
    """

    _root: w.Box
    controls: dict[str, w.ValueWidget]

    @property
    def widget(self) -> w.Box:
        return self._root

    def set(self, **values: Any) -> None:
        """Set controls by name, as a user would."""
        for name, value in values.items():
            params.check_choice("control", name, self.controls)
            self.controls[name].value = value

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._root._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close every widget of the view (frees their front-end models)."""

        def close_tree(widget: w.Widget) -> None:
            for child in getattr(widget, "children", ()):
                close_tree(child)
            widget.close()

        close_tree(self._root)
