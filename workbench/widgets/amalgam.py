"""Figure 3 as one view: pick an image, see every task of the served pipeline answer at once.

The view calls the loaded pipeline (`workbench.amalgam.pipeline.load_pipeline`), the same
objects the service runs: one call gives the calibrated class, the nearest training labels,
the out-of-distribution score and the tags; the pair task answers for the picked image and a
second one. The source can be the test digits or the photo patches, to see the OOD score fire,
or a digit drawn by hand on a pad (framed like the first source's images: `data.drawing`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import numpy as np

from workbench import params
from workbench.data.drawing import drawn_like
from workbench.errors import ParameterError
from workbench.tables import format_table
from workbench.widgets.base import View, png
from workbench.widgets.drawing import DrawingPad, Strokes

DRAWN = "drawn by hand"  # the pad's source


class AmalgamView(View):
    """Every task's output for one picked image (and the pair task for it and a second one).

    `images` maps a source name to raw images (N, H, W, 1), e.g. {"test digits": x_test,
    "photo patches": x_ood}; `labels` maps a source to its true classes where it has them.
    `draw` adds the source "drawn by hand": a pad whose drawing is framed and scaled like the
    first source's images; the pair task pairs it with one of those.
    """

    def __init__(
        self,
        pipeline: Any,
        images: Mapping[str, np.ndarray],
        *,
        labels: Mapping[str, np.ndarray] | None = None,
        class_names: Sequence[str],
        attribute_names: Sequence[str],
        pair: str | None = "pair",
        draw: bool = True,
    ) -> None:
        counts = {k: len(v) for k, v in images.items()}
        if not counts or min(counts.values()) == 0:
            raise ParameterError(
                "AmalgamView: expected images as {source: (N, H, W, 1) raw images} with at "
                f"least one image per source, got {counts} images per source."
            )
        if pair is not None:
            params.check_choice("pair", pair, sorted(pipeline.functions))
        self.pipeline, self.pair = pipeline, pair
        self.images = {k: np.asarray(v, np.float32) for k, v in images.items()}
        self.labels = dict(labels or {})
        self.class_names, self.attribute_names = list(class_names), list(attribute_names)
        first = self._first = next(iter(self.images))
        size = len(self.images[first]) - 1
        sources = [*self.images, *([DRAWN] if draw else [])]
        self.controls = {
            "source": w.Dropdown(options=sources, value=first, description="source"),
            "image": w.IntSlider(0, min=0, max=size, description="image"),
            "other": w.IntSlider(min(1, size), min=0, max=size, description="pair with"),
        }
        for control in self.controls.values():
            control.observe(lambda _: self.refresh(), names="value")
        self._figure = w.Image(format="png")
        self._answers = w.HTML()
        shown = [self.controls["source"], self.controls["image"]]
        shown += [self.controls["other"]] if pair is not None else []
        self.pad = DrawingPad(self.draw) if draw else None
        pad = [self.pad.widget] if self.pad is not None else []
        self._root = w.VBox([w.HBox(shown), *pad, self._figure, self._answers])
        self.answers: dict[str, Any] = {}
        self.refresh()

    def draw(self, strokes: Strokes) -> None:
        """Take what the pad holds (strokes of (x, y) points; none: cleared) as the drawn
        image, framed like the first source's digits, and refresh if it is shown."""
        if strokes:
            x = drawn_like(strokes, self.images[self._first])  # drawn on a pad of PAD pixels
            self.images[DRAWN] = x[None].astype(np.float32)
        else:
            self.images.pop(DRAWN, None)
        if self.controls["source"].value == DRAWN:
            self.refresh()

    def refresh(self) -> None:
        """Run the pipeline on the picked image (and the pair) and redraw."""
        from workbench.plots.amalgam import plot_task_outputs

        source = self.controls["source"].value
        drawn = source == DRAWN
        if self.pad is not None:
            self.pad.widget.layout.display = None if drawn else "none"
        self.controls["image"].layout.display = "none" if drawn else None
        x = self.images.get(source)
        if x is None:  # the pad, with nothing drawn on it yet
            self.answers, self._figure.layout.display = {}, "none"
            self._answers.value = "<i>Draw a digit: every task answers when the pen lifts.</i>"
            return
        self._figure.layout.display = None
        partners = self.images[self._first] if drawn else x  # the pair task's second image
        if not drawn:  # a new source may hold fewer images
            self.controls["image"].max = len(x) - 1
        self.controls["other"].max = len(partners) - 1
        i = 0 if drawn else self.controls["image"].value
        j = self.controls["other"].value
        out = {k: np.asarray(v)[0] for k, v in self.pipeline({"images": x[i : i + 1]}).items()}
        same = None
        if self.pair is not None:
            answer = self.pipeline.functions[self.pair](
                {"a": x[i : i + 1], "b": partners[j : j + 1]}
            )
            same = float(np.ravel(next(iter(answer.values())))[0])
        truth = self.labels.get(source)
        self.answers = {**out, **({} if same is None else {"same": same})}
        self._figure.value = png(
            plot_task_outputs(
                x[i], out, self.class_names, self.attribute_names,
                other=partners[j] if same is not None else None, same=same,
                label=None if truth is None else self.class_names[int(truth[i])],
            )
        )  # fmt: skip
        self._answers.value = f"<pre>{html.escape(format_table(self.rows()))}</pre>"

    def rows(self) -> list[dict[str, str]]:
        """The picked image's answers as (task, output, value) rows."""
        a, names = self.answers, self.class_names
        top = int(a["predicted_class"])
        neighbours = ", ".join(names[int(c)] for c in a["neighbor_labels"])
        tags = [n for n, t in zip(self.attribute_names, a["tags"], strict=True) if t]
        rows = [
            ("classes", "predicted class", f"{names[top]} (p = {a['probabilities'][top]:.3f})"),
            ("search", "nearest training labels", neighbours),
            ("ood", "Mahalanobis score", f"{a['ood_score']:.2f}"
             + (" - out of distribution" if a["ood"] else " - looks like a digit")),
            ("tags", "attributes", ", ".join(tags) or "none"),
        ]  # fmt: skip
        if "same" in a:
            rows.append((self.pair, "P(same digit)", f"{a['same']:.3f}"))
        return [{"task": t, "output": o, "value": v} for t, o, v in rows]
