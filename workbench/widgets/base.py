"""What every view shares: the root widget, notebook display, closing, figures as PNG."""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as w


def png(fig, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes, for an `ipywidgets.Image`."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class View:
    """A small stateful view: private widgets under `_root`, one `refresh`, and `close()`."""

    _root: w.Box

    @property
    def widget(self) -> w.Box:
        return self._root

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._root._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close every widget of the view (frees their front-end models)."""

        def close_tree(widget: w.Widget) -> None:
            for child in getattr(widget, "children", ()):
                close_tree(child)
            widget.close()

        close_tree(self._root)
