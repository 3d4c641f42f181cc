"""The pipeline figures are drawn from the stage definitions, legibly, with done/current marked."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from workbench import ParameterError, stages
from workbench.config import repo_root, set_current
from workbench.design import NAMED_OUTPUTS, preset, summarize
from workbench.identify import ProblemCard
from workbench.plots import pipeline
from workbench.plots.pipeline import AMALGAM_PARTS, KEYS
from workbench.plots.style import DONE_EDGE, STAGE_COLOURS
from workbench.stages import (
    PART_NOTEBOOKS,
    PRODUCTION_STEPS,
    REPRESENTATION_LAYERS,
    REPRESENTATIONS,
    STAGES,
    Stage,
)

STAGE_KEYS = [s.key for s in STAGES]
FRAMES = {"container"}  # dashed outlines drawn around other boxes

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


def planned(fig: Figure) -> set[str]:
    """Gids of the boxes tagged "planned"; each is dashed (frames are dashed anyway)."""
    tagged = {
        t.get_gid().removeprefix("planned:")
        for t in fig.axes[0].texts
        if (t.get_gid() or "").startswith("planned:")
    }
    for gid, box in boxes(fig).items():
        assert (box.get_linestyle() == "--") == (gid in tagged or gid in FRAMES), gid
    return tagged


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
    layers = zip(REPRESENTATIONS, REPRESENTATION_LAYERS, strict=True)
    for i, ((representation, task), (layer, what)) in enumerate(layers, start=1):
        assert found[f"representation:{i}"] == f"({i}) {representation} {layer}: {what}"
        assert found[f"task:{i}"] == task
    n = len(REPRESENTATIONS)
    assert found[f"task:{n + 1}"].startswith(f"task {n + 1} combines embeddings of task 1 + task 2")
    assert found["bottom"] == "shared convolutional bottom (stem + learner)"
    assert found["serving"].startswith("serving pipeline: versioned, reconfigurable components")


def test_figure3_names_the_layers_the_models_have():
    """Representations 1-3 are layers every build has (embedding with embedding_units > 0);
    the fourth, independent sigmoids, is not the softmax `probabilities` and is planned."""
    card = ProblemCard("image", "multiclass", 10, (8, 8, 1))
    summary = summarize(preset("compact", card), card)  # the preset with an embedding
    built = [layer for layer, _ in REPRESENTATION_LAYERS if layer not in PART_NOTEBOOKS]
    assert built == ["encoding", "embedding", "logits"]
    for layer in built:
        assert layer in NAMED_OUTPUTS and summary.row(layer).name == layer
    attributes, _ = REPRESENTATION_LAYERS[3]
    assert attributes not in NAMED_OUTPUTS and PART_NOTEBOOKS[attributes] == "07_amalgamation"
    assert summary.row("probabilities").config == {"activation": "softmax"}
    note = next(t.get_text() for t in pipeline.figure3().axes[0].texts if t.get_gid() == "note")
    assert "the layers encoding, embedding and logits of the models" in note


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
    assert_legible(FIGURES[name](current=current, run_dir=run_dir))


def assert_legible(fig: Figure) -> None:
    """No two boxes overlap; each label (and "planned" tag) fits inside its box."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    extents = {gid: p.get_window_extent(renderer) for gid, p in boxes(fig).items()}
    solid = {gid: e for gid, e in extents.items() if gid not in FRAMES}
    assert len(solid) >= len(STAGES)
    for (a, ea), (b, eb) in itertools.combinations(solid.items(), 2):
        assert not ea.overlaps(eb), f"{a} overlaps {b}"
    texts = {t.get_gid(): t.get_window_extent(renderer) for t in fig.axes[0].texts if t.get_gid()}
    for gid, box in extents.items():
        inner = texts[f"label:{gid}"]
        assert box.x0 < inner.x0 and inner.x1 < box.x1, f"label of {gid} is too wide"
        assert box.y0 < inner.y0 and inner.y1 < box.y1, f"label of {gid} is too tall"
        if f"planned:{gid}" in texts:
            tag = texts[f"planned:{gid}"]
            assert box.x0 < tag.x0 and tag.x1 < box.x1, f"the planned tag of {gid} is too wide"
            assert not tag.overlaps(inner), f"the planned tag of {gid} covers its label"
    note = texts.get("note")
    if note is not None:  # figure 3's note stays above the boxes and inside the figure
        assert note.x1 < fig.bbox.x1 and all(note.y0 > e.y1 for e in solid.values())


def test_stages_with_a_notebook_are_available_and_the_others_say_planned():
    for s in STAGES:
        assert s.available == (repo_root() / "notebooks" / f"{s.notebook}.ipynb").is_file()
        assert ("planned" in repr(s)) != s.available
    assert STAGES[0].available  # 01_identify


def _notebooks(monkeypatch, folder, names):
    """Make the workbench see only the notebooks `names` (in `folder`/notebooks)."""
    (folder / "notebooks").mkdir()
    for name in names:
        (folder / "notebooks" / f"{name}.ipynb").write_text("{}")
    monkeypatch.setattr(stages, "repo_root", lambda: folder)


TODAY = ["00_overview", "01_identify", "02_design", "03_data", "04_train"]


def test_what_is_not_built_yet_is_marked_planned(monkeypatch, tmp_path):
    _notebooks(monkeypatch, tmp_path, TODAY)
    assert planned(pipeline.figure1()) == {"stage:deploy", "container", "rest"}
    assert planned(pipeline.figure2()) == {
        "step:planning",
        "step:qa",
        "stage:deploy",
        "step:deploy:continuous learning",
    }
    tasks = {f"task:{i}" for i in range(1, len(REPRESENTATIONS) + 2)}
    assert planned(pipeline.figure3()) == {"representation:4", "serving", *tasks}
    assert planned(pipeline.where_am_i("data")) == {"stage:deploy"}
    for fig in (pipeline.figure1(), pipeline.figure2()):
        notes = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "planned-note"]
        assert notes == [pipeline.PLANNED_NOTE]
    note = next(t.get_text() for t in pipeline.figure3().axes[0].texts if t.get_gid() == "note")
    assert note.endswith(
        "Dashed, planned: the amalgamated model's attribute head, downstream tasks and serving "
        "pipeline (notebook 07_amalgamation)."
    )
    legend = pipeline.where_am_i("data").axes[0].texts[-1].get_text()
    assert legend == "filled: this notebook · dashed: planned · ✓ done"


def test_planned_marks_go_when_the_notebooks_land(monkeypatch, tmp_path):
    _notebooks(monkeypatch, tmp_path, [*TODAY, "05_deploy"])
    assert planned(pipeline.figure1()) == set()
    assert planned(pipeline.figure2()) == {
        "step:planning",
        "step:qa",
        "step:deploy:continuous learning",  # it comes with 06_production, not with the stage
    }
    (tmp_path / "notebooks" / "06_production.ipynb").write_text("{}")
    (tmp_path / "notebooks" / "07_amalgamation.ipynb").write_text("{}")
    for name, draw in FIGURES.items():
        fig = draw(current="data")
        assert planned(fig) == set(), name
        assert all(t.get_gid() != "planned-note" for t in fig.axes[0].texts), name
    note = next(t.get_text() for t in pipeline.figure3().axes[0].texts if t.get_gid() == "note")
    assert "planned" not in note
    assert "dashed" not in pipeline.where_am_i("data").axes[0].texts[-1].get_text()


def test_every_part_beyond_the_stages_names_its_notebook():
    assert {*PRODUCTION_STEPS, *AMALGAM_PARTS, "continuous learning"} == set(PART_NOTEBOOKS)
    assert {layer for layer, _ in REPRESENTATION_LAYERS} & set(PART_NOTEBOOKS) == {"attribute head"}
    with pytest.raises(KeyError, match="Unknown part 'deploy'"):
        stages.available("deploy")


# ---- figure 3 drawn from a model as built ------------------------------------------------------

HEADS = ("high_latent", "low_latent", "logits", "attributes")
PIPELINE_TASKS = {  # task -> the representation it is fed, as a pipeline config wires them
    "search": "high_latent",
    "ood": "low_latent",
    "classes": "logits",
    "tags": "attributes",
    "pair": "low_latent",
}


@pytest.fixture(scope="module")
def amalgam():
    """A tiny untrained amalgam on 8x8 digits (built once)."""
    from conftest import TINY

    from workbench.amalgam.model import build_amalgam

    card = ProblemCard("image", "multiclass", 10, (8, 8, 1), class_names=tuple("0123456789"))
    return build_amalgam(TINY, card, low_latent_units=8)


def test_figure3_as_built_reads_the_model(amalgam, monkeypatch, tmp_path):
    _notebooks(monkeypatch, tmp_path, TODAY)  # 07_amalgamation missing: still nothing planned
    fig = pipeline.figure3(model=amalgam, current="train")
    found = labels(fig)
    assert fig.axes[0].get_title(loc="left").endswith("· as built")
    assert planned(fig) == set()
    bottom = amalgam.get_layer("bottom")
    assert found["bottom"].endswith(f"bottom: {bottom.count_params():,} params")
    for i, (name, (representation, _)) in enumerate(zip(HEADS, REPRESENTATIONS, strict=True)):
        head, width = amalgam.get_layer(name), amalgam.output[name].shape[-1]
        label = found[f"representation:{i + 1}"]
        assert label.startswith(f"({i + 1}) {representation} {name}: ")
        assert f"· {head.count_params():,} params {width} " in label, label
        assert found[f"task:{i + 1}"] == f"task {i + 1}"
    pooled = amalgam.output["high_latent"].shape[-1]  # Dense(8) on it: (pooled + 1) * 8 weights
    assert f"Dense(8) · {(pooled + 1) * 8} params 8 dims: a linear" in found["representation:2"]
    assert "Dense(4, sigmoid)" in found["representation:4"]
    assert "Identity · 0 params" in found["representation:1"]
    note = next(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "note")
    assert f"model {amalgam.name} as built: {amalgam.count_params():,} parameters" in note
    assert "training only: low_latent_classes" in note
    assert_legible(fig)


def test_figure3_as_built_names_the_pipeline_tasks(amalgam):
    from workbench.amalgam.model import representations

    fig = pipeline.figure3(model=representations(amalgam), tasks=PIPELINE_TASKS)
    found = labels(fig)
    assert [found[f"task:{i}"] for i in range(1, 5)] == ["search", "ood", "classes", "tags"]
    assert found["task:5"] == "task 5: pair combines embeddings of low_latent for two inputs"
    note = next(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "note")
    assert "low_latent_classes" not in note  # the serving view has no training-only head
    assert_legible(fig)
    found = labels(pipeline.figure3(model=amalgam, tasks={"search": "high_latent"}))
    assert [found[f"task:{i}"] for i in range(1, 5)] == ["search", *["no task"] * 3]
    assert "no task of this pipeline combines embeddings" in found["task:5"]


def test_figure3_as_built_refuses_other_models_and_bad_tasks(amalgam):
    import keras

    plain = keras.Model(amalgam.input, {"logits": amalgam.output["logits"]}, name="plain")
    with pytest.raises(ParameterError, match=r"'plain' has no outputs \['high_latent', 'low_la"):
        pipeline.figure3(model=plain)
    with pytest.raises(ParameterError, match=r"Parameter \"tasks\['ood'\]\": expected one of"):
        pipeline.figure3(model=amalgam, tasks={"ood": "embedding"})
    with pytest.raises(ParameterError, match="Parameter 'tasks': expected with a model"):
        pipeline.figure3(tasks=PIPELINE_TASKS)
