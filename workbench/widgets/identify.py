"""Stage 1 view: pick modality, data set and task; the card and its reasoning update live."""

from __future__ import annotations

import html
from functools import lru_cache

import ipywidgets as w

from workbench.data import list_sources
from workbench.errors import WorkbenchError
from workbench.identify import TASKS, ProblemCard
from workbench.upstream import card_for
from workbench.widgets.base import View

DATASETS = {  # offline sources per modality (downloads and your own files are left out)
    "image": ("digits", "mnist5k"),
    "tabular": ("sklearn:breast_cancer", "sklearn:wine", "sklearn:diabetes"),
}


@lru_cache(maxsize=32)
def _card(dataset: str, task: str) -> ProblemCard:
    return card_for(dataset, task)


class ProblemView(View):
    """Dropdowns for modality, data set and task; shows the card, or why it cannot be made."""

    def __init__(
        self, *, modality: str = "image", dataset: str = "digits", task: str = "multiclass"
    ):
        self._modality = w.Dropdown(options=list(DATASETS), value=modality, description="modality")
        self._dataset = w.Dropdown(
            options=DATASETS[modality], value=dataset, description="data set"
        )
        self._task = w.Dropdown(options=list(TASKS), value=task, description="task")
        self._about = w.HTML()
        self._card = w.HTML()
        self.controls = {"modality": self._modality, "dataset": self._dataset, "task": self._task}
        self._modality.observe(self._on_modality, names="value")
        self._dataset.observe(self.refresh, names="value")
        self._task.observe(self.refresh, names="value")
        controls = w.HBox([self._modality, self._dataset, self._task])
        self._root = w.VBox([controls, self._about, self._card])
        self.refresh()

    @property
    def html(self) -> str:
        """What the view shows: the card and its reasoning, or why it cannot be made (HTML)."""
        return self._card.value

    @property
    def dataset(self) -> str:
        """The data set selected (changing the modality selects its first one)."""
        return self._dataset.value

    def _on_modality(self, change) -> None:
        self._dataset.options = DATASETS[change["new"]]  # selects the first, which refreshes

    def refresh(self, _change=None) -> None:
        """Rebuild the card for the current choices and show it with its reasoning."""
        dataset, task = self._dataset.value, self._task.value
        self._about.value = f"<i>{html.escape(list_sources()[dataset])}</i>"
        try:
            card = _card(dataset, task)
        except WorkbenchError as e:
            self._card.value = f"<b style='color:#c44e52'>Not this task:</b> {html.escape(str(e))}"
            return
        self._card.value = (
            f"<pre>{html.escape(repr(card))}</pre><p>"
            + "<br>".join(html.escape(line) for line in card.reasoning().splitlines())
            + "</p>"
        )
