"""Serving: batched inputs for training and inference, transformed the same way everywhere.

`feed` returns a `Feed`, a `keras.utils.PyDataset` (works with every Keras backend; prefetches
with its `workers` and `max_queue_size`) that applies the version's fitted `Transform` to each
batch. `serve_batch` applies that identical transform to raw inputs at serving time.

`Feed` is defined at module top level, so it pickles as `workbench.data.serving.Feed` (for
multiprocessing workers). So this module imports Keras, and `workbench.data` does not import it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workbench import params
from workbench.config import load_keras
from workbench.data.transform import Transform
from workbench.data.versioning import DatasetVersion
from workbench.errors import DataError

keras = load_keras()

FLOAT_LABEL_TASKS = ("binary", "multilabel", "regression")  # sigmoid / linear heads


class Feed(keras.utils.PyDataset):
    """Batches of (transformed x, y); with `shuffle`, a new order each epoch from `seed`."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray | None,
        transform: Transform,
        *,
        batch_size: int = 64,
        shuffle: bool = False,
        seed: int = 0,
        **pydataset_kwargs: Any,  # workers, use_multiprocessing, max_queue_size
    ):
        super().__init__(**pydataset_kwargs)
        self.x, self.y, self.transform = x, y, transform
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.epoch = 0  # reshuffles so far (Keras calls on_epoch_end after each epoch)
        self.order = self._draw_order()

    def _draw_order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.x))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(f"batch {i} out of range: the feed has {len(self)} batches")
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        x = self.transform.apply(self.x[idx])  # (batch, *transform.output_shape) float32
        return x if self.y is None else (x, self.y[idx])

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._draw_order()

    def __repr__(self) -> str:
        return (
            f"Feed({len(self.x)} samples, {len(self)} batches of {self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch})"
        )


def feed(
    version: DatasetVersion,
    split: str = "train",
    *,
    batch_size: int = 64,
    shuffle: bool | None = None,
    seed: int = 0,
    **pydataset_kwargs: Any,
) -> Feed:
    """A `PyDataset` over `split` of `version` (shuffled by default only for "train").

    Labels stay sparse: integer class indices for multiclass, float32 for binary, multilabel
    and regression. `pydataset_kwargs` (workers, max_queue_size, ...) go to `PyDataset`.
    """
    params.check_int("batch_size", batch_size, minimum=1)
    params.check_int("seed", seed, minimum=0)
    x, y = version.split(split)
    if version.task in FLOAT_LABEL_TASKS:
        y = y.astype(np.float32)
    shuffle = split == "train" if shuffle is None else shuffle
    return Feed(
        x,
        y,
        version.transform,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        **pydataset_kwargs,
    )


def serve_batch(
    version_or_transform: DatasetVersion | Transform | dict[str, Any], raw_x: np.ndarray
) -> np.ndarray:
    """Raw inputs (a batch or one sample) -> the model's float32 inputs, as in training.

    Accepts a data version, its `Transform`, or the transform's dict from a manifest.
    """
    t = version_or_transform
    if isinstance(t, DatasetVersion):
        t = t.transform
    elif isinstance(t, dict):
        t = Transform.from_dict(t)
    if not isinstance(t, Transform):
        raise DataError(
            "serve_batch: expected a DatasetVersion, Transform or transform dict, "
            f"got {type(version_or_transform).__name__}."
        )
    return t.apply(raw_x)
