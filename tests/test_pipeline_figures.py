"""The pipeline figures are drawn from the stage definitions, legibly, with done/current marked."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from workbench import ParameterError
from workbench.config import repo_root, set_current
from workbench.plots import pipeline
from workbench.plots.pipeline import KEYS
from workbench.plots.style import DONE_EDGE, STAGE_COLOURS
from workbench.stages import PRODUCTION_STEPS, REPRESENTATIONS, STAGES, Stage

STAGE_KEYS = [s.key for s in STAGES]

FIGURES = {  # each is called with keyword arguments current= and run_dir=
    "figure1": pipeline.figure1,
    "figure2": pipeline.figure2,
    "figure3": pipeline.figure3,
    "where_am_i": pipeline.where_am_i,
}


def boxes(fig: Figure) -> dict[str, object]:
    """Every labelled box of the figure by its gid."""
    (ax,) = fig.axes
    return {p.get_gid(): p for p in ax.patches if p.get_gid()}


def labels(fig: Figure) -> dict[str, str]:
    """Box labels by box gid, with line wraps undone."""
    (ax,) = fig.axes
    return {
        t.get_gid().removeprefix("label:"): t.get_text().replace("\n", " ")
        for t in ax.texts
        if (t.get_gid() or "").startswith("label:")
    }


def is_done(fig: Figure, gid: str) -> bool:
    box = boxes(fig)[gid]
    badges = {t.get_gid() for t in fig.axes[0].texts}
    done = box.get_edgecolor() == to_rgba(DONE_EDGE) and box.get_linewidth() > 3
    assert done == (f"done:{gid}" in badges)
    return done


@pytest.fixture
def run_dir(tmp_path):
    """A run directory whose index names current versions of the first two stages."""
    for s in STAGES[:2]:
        set_current(tmp_path, s.key, "v1")
    return tmp_path


@pytest.mark.parametrize(
    "name, title",
    [
        ("figure1", "2017: discovery"),
        ("figure2", "2018: exploration — ML as a CI/CD production process"),
        ("figure3", "2020: model amalgamation"),
        ("where_am_i", "Where am I? Stage 3 of 5: Prepare the data"),
    ],
)
def test_titles_and_no_ticks(name, title):
    fig = FIGURES[name](current="data")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert title in ax.get_title(loc="left")
    assert not ax.axison


def test_figure1_one_box_per_stage_and_the_container():
    fig = pipeline.figure1()
    found = labels(fig)
    for s in STAGES:
        assert found[f"stage:{s.key}"] == f"{s.number}. {s.title}"
    assert found["rest"] == "REST API"
    assert found["client"] == "client"
    assert "container" in found["container"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"modeling", "data engineering", "training"} <= set(texts)


def test_figure2_one_box_per_stage_step_and_production_step():
    found = labels(pipeline.figure2())
    for s in STAGES:
        assert found[f"stage:{s.key}"] == f"{s.number}. {s.title}"
        for step in s.steps:
            assert found[f"step:{s.key}:{step}"] == step
    assert {f"step:{p}" for p in PRODUCTION_STEPS} <= found.keys()
    assert found["step:qa"] == "quality assurance"
    assert [k for k in found if k.startswith("step:data:")] == [
        f"step:data:{step}" for step in ("extraction", "analysis", "transformation")
    ] + ["step:data:management", "step:data:serving"]


def test_figure3_one_box_per_representation_and_task():
    found = labels(pipeline.figure3())
    for i, (representation, task) in enumerate(REPRESENTATIONS, start=1):
        assert found[f"representation:{i}"] == f"({i}) {representation}"
        assert found[f"task:{i}"] == task
    n = len(REPRESENTATIONS)
    assert found[f"task:{n + 1}"].startswith(f"task {n + 1} combines embeddings of task 1 + task 2")
    assert found["bottom"] == "shared convolutional bottom"
    assert found["serving"].startswith("serving pipeline: versioned, reconfigurable components")


def test_done_stages_from_a_run_directory_are_highlighted(run_dir):
    for name in ("figure1", "figure2", "where_am_i"):
        fig = FIGURES[name](current="data", run_dir=run_dir)
        assert [is_done(fig, f"stage:{s.key}") for s in STAGES] == [True, True, False, False, False]


def test_done_and_current_given_directly():
    fig = pipeline.figure2(done={"planning", "deploy"}, current="qa")
    assert is_done(fig, "step:planning") and is_done(fig, "stage:deploy")
    assert not is_done(fig, "stage:data")
    assert boxes(fig)["step:qa"].get_facecolor() == to_rgba(STAGE_COLOURS["qa"])
    fig3 = pipeline.figure3(done={"data"}, current="train")
    assert is_done(fig3, "input") and not is_done(fig3, "bottom")
    assert boxes(fig3)["bottom"].get_facecolor() == to_rgba(STAGE_COLOURS["design"])


def test_where_am_i_fills_only_the_current_stage(run_dir):
    fig = pipeline.where_am_i("train", run_dir=run_dir)
    filled = [
        s.key
        for s in STAGES
        if boxes(fig)[f"stage:{s.key}"].get_facecolor() == to_rgba(STAGE_COLOURS[s.key])
    ]
    assert filled == ["train"]
    assert fig.axes[0].get_title(loc="left") == "Where am I? Stage 4 of 5: Train the model"
    assert any(t.get_text().endswith(f"✓ done in {run_dir.name}") for t in fig.axes[0].texts)


def test_unknown_stage_names_fail_with_the_choices():
    with pytest.raises(ParameterError, match=r"Parameter 'current': expected one of \['identify'"):
        pipeline.where_am_i("training")
    with pytest.raises(ParameterError, match="Parameter 'done'"):
        pipeline.figure1(done={"nope"})


def test_a_new_stage_appears_in_every_figure(monkeypatch):
    monitor = Stage(
        "monitor", 6, "Monitor the model", "workbench.monitor", "08_monitor", ("drift",)
    )
    monkeypatch.setattr(pipeline, "STAGES", (*STAGES, monitor))
    for fig in (pipeline.figure1(), pipeline.figure2(), pipeline.where_am_i("data")):
        assert labels(fig)["stage:monitor"] == "6. Monitor the model"
    assert labels(pipeline.figure2())["step:monitor:drift"] == "drift"


@pytest.mark.parametrize(
    "name, current",
    [(name, key) for name in FIGURES for key in KEYS if name != "where_am_i" or key in STAGE_KEYS],
)
def test_boxes_do_not_overlap_and_labels_fit(name, current, run_dir):
    fig = FIGURES[name](current=current, run_dir=run_dir)
    renderer = FigureCanvasAgg(fig).get_renderer()
    extents = {gid: p.get_window_extent(renderer) for gid, p in boxes(fig).items()}
    solid = {gid: e for gid, e in extents.items() if boxes(fig)[gid].get_linestyle() == "-"}
    assert len(solid) >= len(STAGES)
    for (a, ea), (b, eb) in itertools.combinations(solid.items(), 2):
        assert not ea.overlaps(eb), f"{a} overlaps {b}"
    for text in fig.axes[0].texts:
        gid = (text.get_gid() or "").removeprefix("label:")
        if gid in extents:
            inner = text.get_window_extent(renderer)
            box = extents[gid]
            assert box.x0 < inner.x0 and inner.x1 < box.x1, f"label of {gid} is too wide"
            assert box.y0 < inner.y0 and inner.y1 < box.y1, f"label of {gid} is too tall"


def test_stages_with_a_notebook_are_available_and_the_others_say_planned():
    for s in STAGES:
        assert s.available == (repo_root() / "notebooks" / f"{s.notebook}.ipynb").is_file()
        assert ("planned" in repr(s)) != s.available
    assert STAGES[0].available  # 01_identify
