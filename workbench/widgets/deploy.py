"""Stage 5 view: the registry's versions as a table, promote and rollback buttons, and a test
request to the running service with its answer.

Each button calls one function of `workbench.deploy.registry` or `workbench.deploy.client`
(also `RegistryView.promote()`, `.rollback()`, `.test_request()`, so tests and notebooks press
them as a user would). The service hot-swaps when the champion alias moves: a test request after
a promotion shows the new version answering.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import numpy as np

from workbench.tables import format_table
from workbench.widgets.base import View

# the columns of registry.compare the table shows (hashes and times stay in compare's rows)
SHOWN = ("version", "aliases", "status", "data version", "train run", "test.accuracy", "formats")


class RegistryView(View):
    """Versions of `name`, with buttons that move its champion and a test request."""

    def __init__(self, name: str, *, url: str | None = None, example: Any = None) -> None:
        self.name, self.url = name, url
        self.example = None if example is None else np.asarray(example)
        self._table = w.HTML()
        self._answer = w.HTML()
        self._promote = w.Button(description="promote challenger", icon="arrow-up")
        self._rollback = w.Button(description="rollback", icon="undo")
        self._request = w.Button(description="test request", icon="paper-plane")
        self._promote.on_click(lambda _: self.promote())
        self._rollback.on_click(lambda _: self.rollback())
        self._request.on_click(lambda _: self.test_request())
        self._request.disabled = url is None or example is None
        self.controls = {}
        buttons = w.HBox([self._promote, self._rollback, self._request])
        self._root = w.VBox([self._table, buttons, self._answer])
        self.refresh()

    def refresh(self) -> None:
        """Redraw the table of versions (aliases, status, lineage, test accuracy, formats)."""
        from workbench.deploy import registry

        rows = [{k: v for k, v in r.items() if k in SHOWN} for r in registry.compare(self.name)]
        self._table.value = f"<pre>{html.escape(format_table(rows))}</pre>"

    def promote(self) -> str:
        """Make the challenger the champion; says what happened."""
        return self._act("promote")

    def rollback(self) -> str:
        """Return the champion alias to the previous champion; says what happened."""
        return self._act("rollback")

    def test_request(self) -> str:
        """Send the example to the service's champion (TF Serving's row format); its answer."""
        from workbench.deploy import client, registry

        if self.url is None or self.example is None:
            return self._say("No service or example given: RegistryView(name, url=, example=).")
        try:
            (prediction,) = client.predict(self.url, self.name, [self.example], label="champion")
        except Exception as e:  # a button shows the error instead of raising it
            return self._say(f"{type(e).__name__}: {e}")
        answer = np.asarray(prediction)
        champion = registry.aliases(self.name).get("champion")
        top = int(answer.argmax()) if answer.size > 1 else float(answer.reshape(-1)[0])
        return self._say(
            f"champion (version {champion}) answered: {top}"
            + (f" with probability {answer.max():.3f}" if answer.size > 1 else "")
        )

    def _act(self, action: str) -> str:
        from workbench.deploy import registry

        try:
            version = getattr(registry, action)(self.name)
        except Exception as e:  # a button shows the error instead of raising it
            return self._say(f"{type(e).__name__}: {e}")
        self.refresh()
        return self._say(f"{action}: champion is now version {version.version}")

    def _say(self, text: str) -> str:
        self._answer.value = f"<code>{html.escape(text)}</code>"
        return text
