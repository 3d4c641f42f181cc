"""Stage 3 in one call: extraction -> targets -> split -> transform (fit on train) -> version."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench import config, params
from workbench.data.csv_files import is_number_text
from workbench.data.sources import DIGIT_SOURCES, RawData, load_source
from workbench.data.transform import (
    ATTRIBUTE_NAMES,
    Transform,
    digit_attributes,
    stratified_split,
    to_channels_last,
)
from workbench.data.versioning import DatasetVersion, save_version
from workbench.errors import DataError
from workbench.task_types import TASKS

_NOT_RECORDED = ("cache_dir",)  # where a download is cached does not change the data


def prepare(
    source: str,
    *,
    run_dir: str | Path = config.DEFAULT_RUN_DIR,
    task: str = "multiclass",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    **source_kwargs: Any,
) -> DatasetVersion:
    """Load `source`, build targets for `task`, split, fit the transform and save a version.

    Sources with their own test set (keras:*) keep it and draw validation from their training
    part; `test_fraction` then does not apply. Preparing the same thing twice reuses the version.
    """
    params.check_choice("task", task, TASKS)
    params.check_int("seed", seed, minimum=0)
    run_dir = config.resolve_run_dir(run_dir)
    raw = load_source(source, **source_kwargs)
    y, class_names = targets(raw, task)
    predefined = raw.predefined_test is not None
    train, val, test = split_indices(raw, seed, val_fraction, test_fraction)
    if len(train) == 0:
        raise DataError(f"prepare: no training samples left from {len(raw.y)} in {source!r}.")
    x = to_channels_last(raw.x) if raw.modality == "image" else raw.x  # (N, H, W, C) or (N, F)
    arrays = {
        "x_train": x[train], "y_train": y[train],
        "x_val": x[val], "y_val": y[val],
    }  # fmt: skip
    if predefined:
        x_test = raw.predefined_test[0]
        arrays["x_test"] = to_channels_last(x_test) if raw.modality == "image" else x_test
        arrays["y_test"] = _predefined_targets(raw, task)
    else:
        arrays["x_test"], arrays["y_test"] = x[test], y[test]
    transform = fit_transform(raw, arrays["x_train"])
    kwargs = {k: v for k, v in source_kwargs.items() if k not in _NOT_RECORDED}
    parameters = {
        "task": task,
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": None if predefined else test_fraction,
        **json.loads(json.dumps(kwargs, default=str)),  # paths and tuples as plain JSON
    }
    notes = {
        "modality": raw.modality,
        "feature_names": list(raw.feature_names or []),
        "categories": raw.categories,
        "test_split": "the source's own" if predefined else "drawn (stratified)",
        "source": raw.notes,  # what the loader did: column types, dropped rows, image sizes
    }
    return save_version(
        run_dir,
        arrays,
        source=source,
        parameters=parameters,
        task=task,
        class_names=class_names,
        transform=transform,
        notes=notes,
    )


def split_indices(
    raw: RawData, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) indices into `raw` as `prepare` draws them (`stratified_split` of the
    raw labels); a source with its own test set keeps it, so its drawn test part is empty."""
    test_fraction = 0.0 if raw.predefined_test is not None else test_fraction
    return stratified_split(raw.y, val_fraction, test_fraction, seed)


def split_targets(
    raw: RawData, task: str, *, seed: int, val_fraction: float, test_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """The training and test targets of the split `prepare(seed=..., ...)` draws, e.g. for
    stage 1's baseline (learned on the first, scored on the second)."""
    y = targets(raw, task)[0]
    train, _, test = split_indices(raw, seed, val_fraction, test_fraction)
    if raw.predefined_test is not None:
        return y[train], _predefined_targets(raw, task)
    return y[train], y[test]


def _predefined_targets(raw: RawData, task: str) -> np.ndarray:
    x_test, y_test_raw = raw.predefined_test
    return targets(replace(raw, x=x_test, y=y_test_raw), task)[0]


def fit_transform(raw: RawData, x_train: np.ndarray) -> Transform:
    """The transform of `raw`'s training samples `x_train` (channels-last images, or table
    rows): the one place it is fitted, so 01's input shape, 03's features and the served model
    agree."""
    return Transform.fit(
        x_train,
        kind=raw.modality,
        scale=raw.pixel_max,
        feature_names=raw.feature_names,
        categories=raw.categories,
    )


def input_shape(
    raw: RawData, *, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2
) -> tuple[int, ...]:
    """One example's shape as the model sees it: channels-last images; for tables, the features
    of the transform fitted on the split's training rows (one-hot categories seen there, and a
    missing indicator per column with missing values there)."""
    if raw.modality == "image":
        return tuple(to_channels_last(raw.x[:1]).shape[1:])
    train, _, _ = split_indices(raw, seed, val_fraction, test_fraction)
    return fit_transform(raw, raw.x[train]).output_shape


def targets(raw: RawData, task: str) -> tuple[np.ndarray, list[str]]:
    """The targets a model of `task` learns from `raw`, and their names."""
    n = len(raw.class_names)
    if task == "multilabel":
        if raw.source not in DIGIT_SOURCES:
            raise DataError(
                f"Task 'multilabel' derives digit attributes {list(ATTRIBUTE_NAMES)}; it needs "
                f"a digit source {list(DIGIT_SOURCES)}, got {raw.source!r}."
            )
        return digit_attributes(raw.y), list(ATTRIBUTE_NAMES)
    if task == "regression":
        if n and raw.source.startswith("csv:") and all(map(is_number_text, raw.class_names)):
            # a table's whole-number target, read as classes: regression takes the numbers
            return np.array([float(c) for c in raw.class_names], np.float32)[raw.y], []
        if n:
            raise DataError(
                f"Task 'regression' needs a numeric target (e.g. 'sklearn:diabetes'); "
                f"{raw.source!r} has {n} classes. Use task='multiclass' or 'binary'."
            )
        return raw.y.astype(np.float32), []
    if not n:
        raise DataError(
            f"Task {task!r} needs class labels; {raw.source!r} has a numeric target. "
            "Use task='regression'."
        )
    if task == "binary" and n != 2:
        raise DataError(
            f"Task 'binary' needs exactly 2 classes; {raw.source!r} has {n}: "
            f"{list(raw.class_names)[:10]}. Use task='multiclass'."
        )
    if task == "multiclass" and n < 2:
        raise DataError(f"Task 'multiclass' needs at least 2 classes; {raw.source!r} has {n}.")
    return raw.y.astype(np.int64), list(raw.class_names)
