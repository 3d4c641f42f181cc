"""Hand-over between stages: use the upstream artifact in the run directory, or build it.

A notebook opened on its own still works: when its upstream artifact (problem card, data set
version) is missing from the run directory, it is built with the profile's defaults, as the
upstream notebook would, and the notebook says so. The split is drawn once, by stage 1: the
card records it, and the data set version is prepared with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench import params
from workbench.config import Run, current
from workbench.data import (
    DatasetVersion,
    RawData,
    input_shape,
    load_source,
    load_version,
    prepare,
    split_targets,
    targets,
)
from workbench.design import ModelSpec, default_preset, load_spec, preset, save_spec
from workbench.identify import (
    CARD_FILE,
    DEFAULT_SPLIT,
    MAX_FRACTION,
    ProblemCard,
    check_source_options,
    check_split,
    identify,
    load_card,
    save_card,
)


def card_for(
    dataset: str,
    task: str = "multiclass",
    *,
    split: dict[str, Any] | None = None,
    target: str | None = None,
    source_options: dict[str, Any] | None = None,
) -> ProblemCard:
    """Stage 1 on a named data source: load it (`target` names a table's label column,
    `source_options` go to its loader), build the task's targets, draw the split (default:
    seed 0, 10 % validation, 20 % test) and identify. The card records all of it."""
    split = check_split(dict(split or DEFAULT_SPLIT))
    options = check_source_options(source_options)
    raw = load_source(dataset, target=target, **options)
    y, names = targets(raw, task)
    y_train, y_test = split_targets(raw, task, **split)
    return identify(
        y,
        modality=raw.modality,
        task=task,
        input_shape=input_shape(raw, **split),
        class_names=names,
        dataset=dataset,
        split=split,
        y_train=y_train,
        y_test=y_test,
        target=target,
        source_options=options,
    )


def load_raw(card: ProblemCard) -> RawData:
    """The card's data as its stage 1 read them (same source, target and source options)."""
    return load_source(card.dataset, **card.source_kwargs)


def ensure_card(
    run: Run,
    *,
    task: str = "multiclass",
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> ProblemCard:
    """The run directory's problem card, or a new one on the profile's data set (said so).
    Fractions given (not None) that differ from the card's split re-split it (`resplit_card`)."""
    if (run.dir / CARD_FILE).is_file():
        card = load_card(run.dir)
        return resplit_card(run, card, val_fraction=val_fraction, test_fraction=test_fraction)
    print(
        f"No problem card in this run directory yet: identifying one with defaults "
        f"(dataset={run.profile.dataset!r}, task={task!r}), as notebook 01_identify would."
    )
    split = {**DEFAULT_SPLIT, "seed": run.seed, **_given(val_fraction, test_fraction)}
    card = card_for(run.profile.dataset, task, split=split)
    save_card(card, run.dir)
    return card


def resplit_card(
    run: Run,
    card: ProblemCard,
    *,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
) -> ProblemCard:
    """`card` if the given fractions are None or the card's own; else the card re-split with
    them (the card's seed), its baseline recomputed on the new split, and saved (said so)."""
    split = check_split({**card.split, **_given(val_fraction, test_fraction)})
    if split == card.split:
        return card
    y_train, y_test = split_targets(load_raw(card), card.task, **split)
    new = card.with_split(split, y_train, y_test)
    save_card(new, run.dir)
    print(
        f"The split (validation {split['val_fraction']}, test {split['test_fraction']}) differs "
        f"from the card's (validation {card.split['val_fraction']}, test "
        f"{card.split['test_fraction']}): re-saved the card with it and a recomputed baseline: "
        f"{new.baseline['description']}."
    )
    return new


def _given(val_fraction: float | None, test_fraction: float | None) -> dict[str, float]:
    """The fractions given (not None), checked as notebook parameters."""
    given = {"val_fraction": val_fraction, "test_fraction": test_fraction}
    return {
        name: params.check_number(name, value, minimum=0.0, maximum=MAX_FRACTION)
        for name, value in given.items()
        if value is not None
    }


def ensure_data(run: Run, card: ProblemCard) -> DatasetVersion:
    """The current data set version if it matches the card (source and how it is read, task
    and split), else one prepared with the card's (said so)."""
    if current(run.dir, "data"):
        version = load_version(run.dir)
        if (
            (version.source, version.task) == (card.dataset, card.task)
            and _same_split(version, card)
            and _same_reading(version, card)
        ):
            return version
    print(
        f"No data set version for {card.dataset!r} ({card.task}, the card's split and source "
        "options) in this run directory yet: preparing one with them, as notebook 03_data would."
    )
    return prepare(
        card.dataset, run_dir=run.dir, task=card.task, **card.split, **card.source_kwargs
    )


def _same_split(version: DatasetVersion, card: ProblemCard) -> bool:
    """Whether `version` was prepared with the card's split (a source's own test set, recorded
    as test_fraction None, matches any test fraction)."""
    drawn = version.manifest["parameters"]
    return all(
        drawn.get(k) == v or (k == "test_fraction" and drawn.get(k) is None)
        for k, v in card.split.items()
    )


def _same_reading(version: DatasetVersion, card: ProblemCard) -> bool:
    """Whether `version` was read with the card's target and source options."""
    drawn = version.manifest["parameters"]
    recorded = {k: v for k, v in drawn.items() if k not in ("task", *DEFAULT_SPLIT)}
    return recorded == json.loads(json.dumps(card.source_kwargs))


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


def ensure_trained(run: Run, card: ProblemCard) -> Path:
    """The run directory's current trained run folder (`<run_dir>/train/<run_id>/`), or one
    trained with the profile's recipe on the card's data and spec (said so), as 04_train would."""
    from workbench import train

    run_id = current(run.dir, train.STAGE)
    if run_id and (run.dir / train.TRAIN_DIR / run_id / "model.keras").is_file():
        return run.dir / train.TRAIN_DIR / run_id
    version = ensure_data(run, card)
    spec = ensure_spec(run, card)
    print(
        f"No trained model in this run directory yet: training {spec.name!r} with the "
        f"{run.profile.name!r} profile's recipe, as notebook 04_train would."
    )
    config = train.TrainConfig.for_profile(run.profile.name, card=card, seed=run.seed)
    result = train.train(spec, version, config, card=card, run_dir=run.dir, verbose=0)
    return result.path
