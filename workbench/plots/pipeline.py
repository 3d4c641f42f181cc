"""The chapter's three pipeline figures and each notebook's "where am I" map.

Every box is drawn from `workbench.stages` (STAGES, PRODUCTION_STEPS, REPRESENTATIONS,
REPRESENTATION_LAYERS, PART_NOTEBOOKS), so a new stage or step appears in the figures without
touching this module. Stages done in a run directory get a thick green outline and a check mark;
the `current` stage is filled with its colour; what the workbench does not build yet (its notebook
does not exist) is dashed and tagged "planned". Each box carries a `gid` ("stage:data",
"step:data:analysis", "representation:1", ...), its tag "planned:<gid>", so tests and readers can
find them.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.axes import Axes
from matplotlib.colors import to_hex, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from workbench import params
from workbench.config import resolve_run_dir
from workbench.errors import ParameterError
from workbench.plots.style import DONE_EDGE, STAGE_COLOURS, class_colour
from workbench.stages import (
    PART_NOTEBOOKS,
    PRODUCTION_STEPS,
    REPRESENTATION_LAYERS,
    REPRESENTATIONS,
    STAGES,
    Stage,
    available,
    done_stages,
)

if TYPE_CHECKING:
    import keras

NEUTRAL = "#7f7f7f"  # boxes that are not a stage (client, container, collapsed pipeline)
INK = "#222222"  # text and arrows
PHASES = {  # figure 1 groups the stages into the 2017 phases
    "identify": "modeling",
    "design": "modeling",
    "data": "data engineering",
    "train": "training",
    "deploy": "deployment",
}
KEYS = (*(s.key for s in STAGES), *PRODUCTION_STEPS)  # what `done` and `current` may name
STEP_LABELS = {"qa": "quality assurance"}  # figure 2's production steps, spelled out
AMALGAM_STAGES = {"input": "data", "bottom": "train", "serving": "deploy"}  # figure 3 part -> stage
AMALGAM_PARTS = ("attribute head", "downstream tasks", "serving pipeline")  # in PART_NOTEBOOKS
PLANNED_NOTE = "dashed, planned: not in the workbench yet"
# figure 3 drawn from a model: what each head of build_amalgam gives, of its width
AS_BUILT = {
    "high_latent": "{} dims: the bottom's pooled features",
    "low_latent": "{} dims: a linear bottleneck",
    "logits": "{} raw scores: softmax gives P(class | x)",
    "attributes": "{} sigmoids, each P(attribute | x)",
}
PAIR = "pair"  # tasks whose name starts so are fed their representation of two inputs (task 5)


@dataclass(frozen=True)
class _Rect:
    """A box's place in figure inches: lower-left corner, width and height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def left(self) -> tuple[float, float]:
        return (self.x, self.y + self.h / 2)

    @property
    def right(self) -> tuple[float, float]:
        return (self.x + self.w, self.y + self.h / 2)

    @property
    def top(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y)


# ---- drawing helpers ---------------------------------------------------------------------------


def _is_dark(colour: str) -> bool:
    """Whether white text reads better than dark text on `colour` (perceived brightness)."""
    r, g, b, _ = to_rgba(colour)
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.58


def _canvas(title: str, width: float, height: float) -> tuple[Figure, Axes]:
    """A figure whose data coordinates are inches, with a title and no axes."""
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1 - 0.45 / height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height - 0.45)
    ax.set_axis_off()
    ax.set_title(title, fontsize=13, fontweight="bold", loc="left", x=0.01)
    return fig, ax


def _box(
    ax: Axes,
    r: _Rect,
    text: str,
    *,
    colour: str,
    gid: str,
    done: bool = False,
    current: bool = False,
    planned: bool = False,
    fontsize: float = 9,
    frame: bool = False,
) -> _Rect:
    """A rounded, labelled box; done boxes get a green outline and a check, current ones a fill.

    A `planned` box (not in the workbench yet) is dashed, faint and tagged "planned"; a `frame`
    is a dashed, unfilled outline around other boxes, labelled at its top left.
    """
    edge = DONE_EDGE if done else colour
    patch = FancyBboxPatch(
        (r.x, r.y),
        r.w,
        r.h,
        boxstyle="round,pad=0,rounding_size=0.08",
        facecolor=colour if current else to_rgba(colour, 0 if frame else 0.07 if planned else 0.19),
        edgecolor=edge,
        linewidth=3.5 if done or current else 1.4,
        linestyle="--" if frame or planned else "-",
        gid=gid,
    )
    ax.add_patch(patch)
    chars = max(6, int(r.w * 72 / (fontsize * 0.66)))  # a bold character is ~0.65 em wide
    lines = (textwrap.fill(line, chars, break_long_words=False) for line in text.split("\n"))
    label = "\n".join(lines)
    lift = 0.04 if planned else 0  # clear of the "planned" tag on the lower edge
    ax.text(
        *((r.x + 0.08, r.y + r.h - 0.08) if frame else (r.x + r.w / 2, r.y + r.h / 2 + lift)),
        label,
        ha="left" if frame else "center",
        va="top" if frame else "center",
        fontsize=fontsize,
        color="white" if current and _is_dark(colour) else INK,
        fontweight="bold" if current else "normal",
        gid=f"label:{gid}",
    )
    if planned:  # on the lower left edge, clear of arrows (mid-edges) and the check (upper right)
        ax.text(
            r.x + 0.1,
            r.y,
            "planned",
            ha="left",
            va="center",
            fontsize=7,
            style="italic",
            color=INK,
            bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": edge},
            gid=f"planned:{gid}",
        )
    if done:
        ax.text(
            r.x + r.w,
            r.y + r.h,
            "✓",
            ha="center",
            va="center",
            fontsize=10,
            color="white",
            fontweight="bold",
            bbox={"boxstyle": "circle,pad=0.15", "facecolor": DONE_EDGE, "edgecolor": "white"},
            gid=f"done:{gid}",
        )
    return r


def _planned_note(ax: Axes, x: float, y: float, *, ha: str = "left", va: str = "top") -> None:
    """Say what the dashed boxes mean, if the figure has any."""
    if any((t.get_gid() or "").startswith("planned:") for t in ax.texts):
        ax.text(
            x,
            y,
            PLANNED_NOTE,
            ha=ha,
            va=va,
            fontsize=8,
            style="italic",
            color=NEUTRAL,
            gid="planned-note",
        )


def _arrow(
    ax: Axes,
    *points: tuple[float, float],
    label: str = "",
    label_at: tuple[float, float] | None = None,
    both: bool = False,
) -> None:
    """An arrow through `points` (straight segments; both ends if `both`), optionally labelled.

    The label sits above the middle of the first segment unless `label_at` places it.
    """
    ax.add_patch(
        FancyArrowPatch(
            path=MplPath(points),
            arrowstyle="<|-|>" if both else "-|>",
            mutation_scale=12,
            color=INK,
            linewidth=1.3,
            shrinkA=0,
            shrinkB=0,
        )
    )
    if label:
        (x0, y0), (x1, y1) = points[:2]
        x, y = label_at or ((x0 + x1) / 2, (y0 + y1) / 2 + 0.06)
        ax.text(x, y, label, ha="center", va="bottom", fontsize=8, color=INK, style="italic")


def _row(
    n: int, *, y: float, h: float, gap: float, x0: float = 0.3, x1: float = 11.7
) -> list[_Rect]:
    """`n` equal boxes side by side between x0 and x1, `gap` apart."""
    w = (x1 - x0 - gap * (n - 1)) / n
    return [_Rect(x0 + i * (w + gap), y, w, h) for i in range(n)]


def _chain(ax: Axes, rects: Iterable[_Rect]) -> None:
    """Arrows from each box to the next, left to right."""
    for a, b in itertools.pairwise(rects):
        _arrow(ax, a.right, b.left)


def _resolve(
    done: Iterable[str] | None, run_dir: str | Path | None, current: str | None
) -> set[str]:
    """Check `current` and `done` against KEYS; done comes from `run_dir` when not given."""
    if current is not None:
        params.check_choice("current", current, KEYS)
    if done is None:
        return done_stages(resolve_run_dir(run_dir)) if run_dir is not None else set()
    return {params.check_choice("done", key, KEYS) for key in done}


def _enumerate(items: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    *head, last = items
    return f"{', '.join(head)} and {last}" if head else last


def _stage_box(ax: Axes, r: _Rect, s: Stage, *, done: set[str], current: str | None) -> _Rect:
    """The box of stage `s`, labelled with its number and title; planned until it has a notebook."""
    return _box(
        ax,
        r,
        f"{s.number}. {s.title}",
        colour=STAGE_COLOURS.get(s.key, NEUTRAL),
        gid=f"stage:{s.key}",
        done=s.key in done,
        current=s.key == current,
        planned=not s.available,
    )


def _layer(layer: keras.layers.Layer) -> str:
    """'Identity', 'Dense(8)', 'Dense(4, sigmoid)': a layer's class, units and activation."""
    kind = type(layer).__name__
    if not hasattr(layer, "units"):
        return kind
    activation = layer.get_config().get("activation", "linear")
    return f"{kind}({layer.units}{'' if activation == 'linear' else f', {activation}'})"


@dataclass(frozen=True)
class _AsBuilt:
    """Figure 3's labels read from an amalgam (and the pipeline's tasks, if given)."""

    bottom: str
    reps: tuple[str, ...]  # one per representation, in AS_BUILT order
    tasks: tuple[str, ...] | None  # the task names fed each representation; None: "task i"
    combined: str | None  # task 5's label; None: the default (from tasks 1 and 2)
    pair_inputs: tuple[int, ...]  # the representations task 5 is fed, for two inputs each
    note: str


def _as_built(model: keras.Model, tasks: Mapping[str, str] | None) -> _AsBuilt:
    """Read the bottom, the heads and their sizes from `model` (made by build_amalgam)."""
    from workbench.amalgam.model import AUXILIARY, representations

    names = list(AS_BUILT)
    if tasks is not None:
        if not isinstance(tasks, Mapping):
            raise ParameterError(
                f"Parameter 'tasks': expected a mapping of task name -> representation "
                f"(one of {names}), got {tasks!r}."
            )
        for task, rep in tasks.items():
            params.check_str("tasks key", task)
            params.check_choice(f"tasks[{task!r}]", rep, names)
    outputs = representations(model).output  # ParameterError unless it has all four
    bottom = model.get_layer("bottom")
    reps = []
    for (number, _), name in zip(REPRESENTATIONS, names, strict=True):
        layer, width = model.get_layer(name), outputs[name].shape[-1]
        reps.append(
            f"({len(reps) + 1}) {number}\n{name}: {_layer(layer)} · "
            f"{layer.count_params():,} params\n{AS_BUILT[name].format(width)}"
        )
    note = [
        f"Drawn from model {model.name} as built: {model.count_params():,} parameters in all.",
        "Four parallel heads on the shared bottom's pooled features, each reusable as "
        "model.get_layer(name).",
    ]
    if isinstance(model.output, dict) and AUXILIARY in model.output:
        aux = model.get_layer(AUXILIARY)
        note.append(
            f"Not drawn, training only: {AUXILIARY}, {_layer(aux)} on low_latent "
            f"({aux.count_params():,} params), whose loss trains the bottleneck."
        )
    fed, combined, pair_inputs = None, None, ()
    if tasks is not None:
        pairs = [t for t in tasks if t.startswith(PAIR)]
        fed = tuple(
            ", ".join(t for t, r in tasks.items() if r == name and t not in pairs) or "no task"
            for name in names
        )
        pair_inputs = tuple(sorted({names.index(tasks[t]) for t in pairs}))
        combined = (
            f"task 5: {_enumerate(pairs)}\ncombines embeddings of "
            f"{_enumerate(names[i] for i in pair_inputs)}\nfor two inputs"
            if pairs
            else "task 5\nno task of this pipeline combines embeddings"
        )
    return _AsBuilt(
        bottom=f"shared convolutional bottom\n(stem + learner)\n\n{bottom.name}:\n"
        f"{bottom.count_params():,} params",
        reps=tuple(reps),
        tasks=fed,
        combined=combined,
        pair_inputs=pair_inputs,
        note="\n".join(textwrap.fill(line, 140) for line in note),
    )


# ---- the figures -------------------------------------------------------------------------------


def figure1(
    *,
    done: Iterable[str] | None = None,
    current: str | None = None,
    run_dir: str | Path | None = None,
) -> Figure:
    """2017, discovery: pipeline 1 couples modeling, data and training; pipeline 2 deploys."""
    done = _resolve(done, run_dir, current)
    cut = next(i for i, s in enumerate(STAGES) if PHASES.get(s.key) == "deployment")
    first, deployment = STAGES[:cut], STAGES[cut:]  # pipeline 2 couples deployment onwards
    fig, ax = _canvas("Figure 1 · 2017: discovery — two end-to-end pipelines", 12, 5.2)

    ax.text(0.2, 4.45, "Pipeline 1: modeling, data engineering and training", fontsize=10)
    slots = _row(len(first), y=2.9, h=0.9, gap=0.9, x0=0.4, x1=11.6)
    row = [
        _stage_box(ax, r, s, done=done, current=current) for r, s in zip(slots, first, strict=True)
    ]
    _chain(ax, row)
    for phase, group in itertools.groupby(
        zip(first, row, strict=True), lambda p: PHASES.get(p[0].key)
    ):
        rects = [r for _, r in group]
        x0, x1, y = rects[0].x, rects[-1].x + rects[-1].w, rects[0].y + rects[0].h
        ax.plot([x0, x0, x1, x1], [y + 0.1, y + 0.2, y + 0.2, y + 0.1], color=NEUTRAL, lw=1)
        ax.text((x0 + x1) / 2, y + 0.25, phase or "", ha="center", fontsize=9, color=NEUTRAL)

    ax.text(1.3, 2.15, "Pipeline 2: the successful pipeline coupled with deployment", fontsize=10)
    slots = _row(len(deployment) + 5, y=0.45, h=0.9, gap=0.55, x0=0.4, x1=11.6)
    first_box = _box(ax, slots[0], "pipeline 1\n(trained model)", colour=NEUTRAL, gid="pipeline1")
    chain = [first_box]
    chain += [
        _stage_box(ax, r, s, done=done, current=current)
        for r, s in zip(slots[1:], deployment, strict=False)
    ]
    _chain(ax, chain)
    inner, client = slots[len(deployment) + 1 : -1], slots[-1]  # container: model ... REST API
    x0, x1 = inner[0].x, client.x - 0.9  # room for the HTTP label
    planned = not all(s.available for s in deployment)  # the container comes with deployment
    _box(
        ax,
        _Rect(x0, client.y - 0.2, x1 - x0, client.h + 0.75),
        "container (microservice)",
        colour=STAGE_COLOURS["deploy"],
        gid="container",
        planned=planned,
        frame=True,
    )
    model = _box(
        ax, replace(inner[0], x=x0 + 0.25), "model", colour=STAGE_COLOURS["train"], gid="model"
    )
    rest = _box(
        ax,
        replace(inner[-1], x=x1 - 0.25 - inner[-1].w),
        "REST API",
        colour=STAGE_COLOURS["deploy"],
        gid="rest",
        planned=planned,
    )
    _box(ax, client, "client", colour=NEUTRAL, gid="client")
    _arrow(ax, chain[-1].right, (x0, chain[-1].right[1]), label="package")
    _arrow(ax, model.right, rest.left, both=True, label="predict")
    _arrow(ax, rest.right, client.left, both=True, label="HTTP")
    # The end of pipeline 1 (its last box) hands its trained model to pipeline 2.
    end, turn_y = row[-1].bottom, (row[-1].y + first_box.y + first_box.h) / 2 + 0.35
    _arrow(
        ax,
        end,
        (end[0], turn_y),
        (first_box.top[0], turn_y),
        first_box.top,
        label="once it succeeds",
        label_at=((end[0] + first_box.top[0]) / 2, turn_y + 0.06),
    )
    _planned_note(ax, 11.6, 4.45, ha="right", va="baseline")
    return fig


def figure2(
    *,
    done: Iterable[str] | None = None,
    current: str | None = None,
    run_dir: str | Path | None = None,
) -> Figure:
    """2018, exploration: ML as a CI/CD production process, with its steps and the learning loop."""
    done = _resolve(done, run_dir, current)
    # Planning opens the process; quality assurance gates the last stage (deployment).
    sequence = [PRODUCTION_STEPS[0], *STAGES[:-1], *PRODUCTION_STEPS[1:], STAGES[-1]]
    fig, ax = _canvas("Figure 2 · 2018: exploration — ML as a CI/CD production process", 12, 5.5)

    step_h, gap = 0.4, 0.15
    columns: dict[str, list[_Rect]] = {}
    for r, item in zip(_row(len(sequence), y=3.7, h=0.95, gap=0.3), sequence, strict=True):
        if isinstance(item, Stage):
            key, steps = item.key, item.steps
            head = _stage_box(ax, r, item, done=done, current=current)
        else:
            key, steps = item, ()
            colour = STAGE_COLOURS.get(key, NEUTRAL)
            label = STEP_LABELS.get(key, key)
            head = _box(
                ax,
                r,
                label,
                colour=colour,
                gid=f"step:{key}",
                done=key in done,
                current=key == current,
                planned=not available(key),
            )
        column = [head]
        for i, step in enumerate(steps, start=1):
            y = r.y - 0.1 - i * (step_h + gap)
            column.append(
                _box(
                    ax,
                    _Rect(r.x + 0.08, y, r.w - 0.16, step_h),
                    step,
                    colour=STAGE_COLOURS.get(key, NEUTRAL),
                    gid=f"step:{key}:{step}",
                    fontsize=8,
                    planned=not item.step_available(step),
                )
            )
        for a, b in itertools.pairwise(column):
            _arrow(ax, a.bottom, b.top)
        columns[key] = column
    _chain(ax, [column[0] for column in columns.values()])

    data, train, deploy = columns["data"], columns["train"], columns["deploy"]
    _arrow(
        ax,
        data[-1].right,
        (train[-1].bottom[0], data[-1].right[1]),
        train[-1].bottom,
        label="batches",
    )
    loop_y, loop_x = min(r.y for r in data) - 0.35, data[0].x - 0.15
    _arrow(
        ax,
        deploy[-1].bottom,
        (deploy[-1].bottom[0], loop_y),
        (loop_x, loop_y),
        (loop_x, data[1].left[1]),
        data[1].left,
        label="continuous learning: new data from production → retrain",
        label_at=((loop_x + deploy[-1].bottom[0]) / 2, loop_y + 0.06),
    )
    caption = (
        "Planning and quality assurance join the technical stages in one CI/CD process: "
        "every change flows left to right and passes a QA gate before deployment."
    )
    ax.text(0.3, loop_y, textwrap.fill(caption, 55), va="bottom", fontsize=9, color=NEUTRAL)
    _planned_note(ax, 0.3, loop_y - 0.1)
    return fig


def figure3(
    *,
    done: Iterable[str] | None = None,
    current: str | None = None,
    run_dir: str | Path | None = None,
    model: keras.Model | None = None,
    tasks: Mapping[str, str] | None = None,
) -> Figure:
    """2020, model amalgamation: a shared bottom, four representations, tasks that reuse them.

    Without `model`, the representations are drawn as the layers of the models
    `workbench.design.build` makes: encoding -> embedding -> logits, and an attribute head
    beside the logits; parts that PART_NOTEBOOKS names are planned until their notebook exists.
    With `model` (from `workbench.amalgam.model.build_amalgam`, or its `representations`
    view), the figure is redrawn from it as built: four parallel heads on the bottom's pooled
    features, each with its layer, width and parameters. `tasks` (task name -> representation,
    as a pipeline config wires them) then names the tasks; tasks named "pair..." are task 5.
    """
    done = _resolve(done, run_dir, current)
    if tasks is not None and model is None:
        raise ParameterError("Parameter 'tasks': expected with a model (model=...), got no model.")
    built = None if model is None else _as_built(model, tasks)
    title = "Figure 3 · 2020: model amalgamation — one model, many outputs"
    fig, ax = _canvas(f"{title} · as built" if built else title, 12, 6.4)

    def part(r: _Rect, text: str, gid: str, colour: str, *, planned: bool = False) -> _Rect:
        key = AMALGAM_STAGES.get(gid)  # the stage that produces this part, if any
        is_current = key is not None and key == current
        return _box(
            ax,
            r,
            text,
            colour=colour,
            gid=gid,
            done=key in done,
            current=is_current,
            planned=planned and built is None,  # a model given exists: nothing is planned
            fontsize=8.5,
        )

    tasks_planned = not available("downstream tasks")
    n, h, gap, top = len(REPRESENTATIONS), 0.75, 0.3, 5.0
    ys = [top - i * (h + gap) - h for i in range(n)]
    mid = (ys[0] + ys[-1] + h) / 2
    inp = part(_Rect(0.3, mid - 0.5, 1.1, 1.0), "input", "input", STAGE_COLOURS["data"])
    bottom = part(
        _Rect(1.85, ys[-1], 1.35, top - ys[-1]),
        built.bottom if built else "shared convolutional bottom\n(stem + learner)",
        "bottom",
        STAGE_COLOURS["design"],
    )
    _arrow(ax, inp.right, (bottom.x, inp.right[1]))
    reps, task_boxes, layers_built = [], [], []
    layers = zip(REPRESENTATIONS, REPRESENTATION_LAYERS, ys, strict=True)
    for i, ((representation, task), (layer, what), y) in enumerate(layers):
        colour = to_hex(class_colour(i))  # a representation and its task share a colour
        planned = layer in PART_NOTEBOOKS and not available(layer)
        if layer not in PART_NOTEBOOKS:
            layers_built.append(layer)
        reps.append(
            part(
                _Rect(3.9, y, 3.9, h),
                built.reps[i] if built else f"({i + 1}) {representation}\n{layer}: {what}",
                f"representation:{i + 1}",
                colour,
                planned=planned,
            )
        )
        if built and built.tasks:  # the pipeline's tasks fed this representation
            task = built.tasks[i]
        task_boxes.append(
            part(_Rect(8.4, y, 1.0, h), task, f"task:{i + 1}", colour, planned=tasks_planned)
        )
        _arrow(ax, reps[-1].right, task_boxes[-1].left)
    if built:  # parallel heads on the pooled features
        for r in reps:
            _arrow(ax, (bottom.x + bottom.w, r.left[1]), r.left)
    else:  # bottom -> encoding -> embedding -> logits, the attribute head on the embedding
        _arrow(ax, (bottom.x + bottom.w, reps[0].left[1]), reps[0].left)
        for a, b in itertools.pairwise(reps[:3]):
            _arrow(ax, a.bottom, b.top)
        route = (bottom.x + bottom.w + reps[0].x) / 2
        _arrow(ax, reps[1].left, (route, reps[1].left[1]), (route, reps[3].left[1]), reps[3].left)

    def gap_at(i: int) -> float:  # the middle of the gap above representation i (below the 1st)
        return ys[i] + h + gap / 2 if i else ys[0] - gap / 2

    a, b = (t for _, t in REPRESENTATIONS[:2])
    pair_inputs = built.pair_inputs if built else ()
    centre = gap_at(pair_inputs[0] if pair_inputs else 1)
    combined = part(
        _Rect(10.0, centre - (h + 0.3) / 2, 1.7, h + 0.3),
        built.combined
        if built and built.combined
        else f"task {n + 1}\ncombines embeddings\nof {a} + {b}",
        f"task:{n + 1}",
        NEUTRAL,
        planned=tasks_planned,
    )
    if built and built.combined:  # a pair task: its representation, for two inputs
        for i in pair_inputs:
            start = (reps[i].x + reps[i].w - 0.3, reps[i].y + h if i else reps[i].y)
            turn = [(9.7, gap_at(i)), (9.7, centre)] if gap_at(i) != centre else []
            _arrow(ax, start, (start[0], gap_at(i)), *turn, combined.left)
    else:
        for t in task_boxes[:2]:
            _arrow(ax, t.right, (9.7, t.right[1]), (9.7, combined.left[1]), combined.left)
    part(
        _Rect(0.3, 0.2, 11.4, 0.55),
        "serving pipeline: versioned, reconfigurable components "
        "(input → bottom → representations → tasks), each reusable on its own",
        "serving",
        STAGE_COLOURS["deploy"],
        planned=not available("serving pipeline"),
    )
    note = [
        f"Solid: built — the layers {_enumerate(layers_built)} of the models "
        "workbench.design.build makes, reusable as model.get_layer(name)."
    ]
    later = [p for p in AMALGAM_PARTS if not available(p)]
    if later:
        notebooks = sorted({PART_NOTEBOOKS[p] for p in later})
        note.append(
            f"Dashed, planned: the amalgamated model's {_enumerate(later)} "
            f"(notebook {_enumerate(notebooks)})."
        )
    text = built.note if built else "\n".join(note)
    ax.text(0.3, 5.8, text, va="top", fontsize=8.5, color=NEUTRAL, gid="note")
    return fig


def where_am_i(current: str | None, *, run_dir: str | Path | None = None) -> Figure:
    """A one-row map of the stages: `current` filled (None: the overview), done ones checked."""
    if current is None:
        title = f"Where am I? The whole pipeline: {len(STAGES)} stages"
    else:
        params.check_choice("current", current, [s.key for s in STAGES])
        here = next(s for s in STAGES if s.key == current)
        title = f"Where am I? Stage {here.number} of {len(STAGES)}: {here.title}"
    done = _resolve(None, run_dir, None)
    fig, ax = _canvas(title, 12, 1.9)
    slots = _row(len(STAGES), y=0.3, h=0.75, gap=0.45)
    _chain(
        ax,
        [
            _stage_box(ax, r, s, done=done, current=current)
            for r, s in zip(slots, STAGES, strict=True)
        ],
    )
    where = f" in {Path(run_dir).name}" if run_dir is not None else ""
    planned = " · dashed: planned" if not all(s.available for s in STAGES) else ""
    legend = f"filled: this notebook{planned} · ✓ done{where}"
    ax.text(11.7, 1.2, legend, ha="right", fontsize=8, color=NEUTRAL)
    return fig
