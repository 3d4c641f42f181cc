"""Hand-over between stages: use the upstream artifact in the run directory, or build it.

A notebook opened on its own still works: when its upstream artifact (problem card, data set
version) is missing from the run directory, it is built with the profile's defaults, as the
upstream notebook would, and the notebook says so.
"""

from __future__ import annotations

from workbench.config import Run, current
from workbench.data import (
    DatasetVersion,
    input_shape,
    load_source,
    load_version,
    prepare,
    targets,
)
from workbench.design import ModelSpec, default_preset, load_spec, preset, save_spec
from workbench.identify import CARD_FILE, ProblemCard, identify, load_card, save_card


def card_for(dataset: str, task: str = "multiclass") -> ProblemCard:
    """Stage 1 on a named data source: load its labels, build the task's targets, identify."""
    raw = load_source(dataset)
    y, names = targets(raw, task)
    return identify(
        y,
        modality=raw.modality,
        task=task,
        input_shape=input_shape(raw),
        class_names=names,
        dataset=dataset,
    )


def ensure_card(run: Run, *, task: str = "multiclass") -> ProblemCard:
    """The run directory's problem card, or a new one on the profile's data set (said so)."""
    if (run.dir / CARD_FILE).is_file():
        return load_card(run.dir)
    print(
        f"No problem card in this run directory yet: identifying one with defaults "
        f"(dataset={run.profile.dataset!r}, task={task!r}), as notebook 01_identify would."
    )
    card = card_for(run.profile.dataset, task)
    save_card(card, run.dir)
    return card


def ensure_data(run: Run, card: ProblemCard) -> DatasetVersion:
    """The current data set version if it matches the card, else one prepared with defaults."""
    if current(run.dir, "data"):
        version = load_version(run.dir)
        if version.source == card.dataset and version.task == card.task:
            return version
    print(
        f"No data set version for {card.dataset!r} ({card.task}) in this run directory yet: "
        "preparing one with defaults, as notebook 03_data would."
    )
    return prepare(card.dataset, run_dir=run.dir, task=card.task, seed=run.seed)


def ensure_spec(run: Run, card: ProblemCard) -> ModelSpec:
    """The run directory's model spec, or the profile's preset for the card (said so)."""
    if current(run.dir, "design"):
        return load_spec(run.dir)
    name = default_preset(card, run.profile.preset)
    print(
        f"No model spec in this run directory yet: using the {name!r} preset, "
        "as notebook 02_design would."
    )
    spec = preset(name, card)
    save_spec(spec, run.dir)
    return spec
