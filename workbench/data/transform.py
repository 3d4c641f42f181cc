"""Transformation: splits, scaling, reshaping, augmentation and simple feature engineering.

A `Transform` is fitted on the training split only and keeps its parameters as plain numbers,
so it is saved in the data set's manifest and the SAME function runs in the training feed and
at serving time (`Transform.apply`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench import params
from workbench.errors import DataError, ParameterError

ATTRIBUTE_NAMES = ("even", "greater_than_4", "closed_loop", "prime")  # digit_attributes columns
CLOSED_LOOP_DIGITS = (0, 6, 8, 9)  # a printed 4 is open at the top
PRIME_DIGITS = (2, 3, 5, 7)


# ---- targets and splits --------------------------------------------------------------------


def digit_attributes(labels: np.ndarray) -> np.ndarray:
    """Four 0/1 attributes of digits, which can be true together: even, > 4, closed loop, prime."""
    d = np.asarray(labels).astype(np.int64)
    if d.ndim != 1 or (d.size and (d.min() < 0 or d.max() > 9)):
        raise DataError(
            f"digit_attributes: expected a 1D array of digits 0-9, got shape {d.shape} "
            f"with values {np.unique(d)[:12].tolist()}."
        )
    columns = [d % 2 == 0, d > 4, np.isin(d, CLOSED_LOOP_DIGITS), np.isin(d, PRIME_DIGITS)]
    return np.stack(columns, axis=1).astype(np.float32)  # (N, 4)


def stratified_split(
    y: np.ndarray, val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, val, test), sorted, that keep each class's share in every split.

    Integer class labels are stratified; multilabel (2D) or real-valued targets get a plain
    shuffled split.
    """
    params.check_number("val_fraction", val_fraction, minimum=0.0, maximum=0.9)
    params.check_number("test_fraction", test_fraction, minimum=0.0, maximum=0.9)
    params.check_int("seed", seed, minimum=0)
    if val_fraction + test_fraction >= 1.0:
        raise ParameterError(
            f"Parameters 'val_fraction' + 'test_fraction': expected a sum below 1 so that "
            f"training data remain, got {val_fraction} + {test_fraction}."
        )
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    stratify = y.ndim == 1 and y.dtype.kind in "iub"
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    train, val, test = [], [], []
    for idx in groups:
        idx = rng.permutation(idx)
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        test.append(idx[:n_test])
        val.append(idx[n_test : n_test + n_val])
        train.append(idx[n_test + n_val :])
    return tuple(np.sort(np.concatenate(part)).astype(np.int64) for part in (train, val, test))


# ---- arrays ----------------------------------------------------------------------------------


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """Images (N, H, W) -> (N, H, W, 1); (N, H, W, C) stays as it is."""
    x = np.asarray(x)
    if x.ndim == 3:
        return x[..., np.newaxis]  # (N, H, W) -> (N, H, W, 1)
    if x.ndim == 4:
        return x
    raise DataError(f"to_channels_last: expected images (N, H, W[, C]), got shape {x.shape}.")


def one_hot(codes: np.ndarray, n: int) -> np.ndarray:
    """Integer codes (N,) -> (N, n) float32; codes outside 0..n-1 (unseen) become all zeros."""
    codes = np.asarray(codes)
    known = (codes >= 0) & (codes < n) & (codes == np.round(codes))
    out = np.zeros((len(codes), n), np.float32)
    out[np.flatnonzero(known), codes[known].astype(np.int64)] = 1.0
    return out


@dataclass(repr=False)
class Transform:
    """Raw samples -> float32 model inputs; fitted on training data, stored as plain numbers."""

    kind: str  # "image" or "tabular"
    input_shape: tuple[int, ...]  # one raw sample: (H, W, C) images, (F,) tabular
    scale: float | None = None  # images: divide pixels by this (the source's max), -> [0, 1]
    mean: list[float] | None = None  # tabular: per-column mean of the training split
    std: list[float] | None = None  # tabular: per-column std (1.0 where a column is constant)
    categorical: dict[int, int] = field(default_factory=dict)  # column -> number of categories

    @classmethod
    def fit(
        cls,
        x_train: np.ndarray,
        *,
        kind: str,
        scale: float | None = None,
        categorical: dict[int, int] | None = None,
    ) -> Transform:
        """Learn the parameters from the training split (never from validation or test)."""
        x_train = np.asarray(x_train)
        if kind == "image":
            if scale is None:
                scale = float(max(x_train.max(), 1)) if x_train.size else 1.0
            return cls("image", tuple(x_train.shape[1:]), scale=float(scale))
        if kind != "tabular":
            raise DataError(f"Transform.fit: kind={kind!r}; expected 'image' or 'tabular'.")
        if x_train.ndim != 2:
            raise DataError(f"Transform.fit: tabular data must be (N, F), got {x_train.shape}.")
        categorical = {int(k): int(v) for k, v in (categorical or {}).items()}
        mean = np.nan_to_num(np.nanmean(x_train, axis=0))  # (F,)
        std = np.nan_to_num(np.nanstd(x_train, axis=0))
        std = np.where(std > 0, std, 1.0)  # a constant column stays at 0 after centring
        return cls(
            "tabular",
            (x_train.shape[1],),
            mean=[float(v) for v in mean],
            std=[float(v) for v in std],
            categorical=categorical,
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one transformed sample (what the model's input layer expects)."""
        if self.kind == "image":
            return self.input_shape
        return (self.input_shape[0] + sum(n - 1 for n in self.categorical.values()),)

    def apply(self, raw_x: np.ndarray) -> np.ndarray:
        """Raw samples (a batch, or one sample) -> float32 batch of shape (N, *output_shape)."""
        x = self._as_batch(np.asarray(raw_x))
        if self.kind == "image":
            return (x.astype(np.float32) / np.float32(self.scale)).astype(np.float32)
        z = (x.astype(np.float64) - self.mean) / self.std  # (N, F) standardised
        z = np.nan_to_num(z, nan=0.0)  # a missing value becomes the training mean
        parts = [
            one_hot(x[:, j], self.categorical[j]) if j in self.categorical else z[:, j : j + 1]
            for j in range(x.shape[1])
        ]
        return np.concatenate(parts, axis=1).astype(np.float32)  # (N, output features)

    def _as_batch(self, x: np.ndarray) -> np.ndarray:
        """Accept (N, *input_shape), one sample, (N, H, W) for one channel, or flat rows."""
        shape = self.input_shape
        if x.shape[1:] == shape:
            return x
        if x.shape == shape:
            return x[np.newaxis]  # one sample -> (1, *shape)
        if self.kind == "image" and shape[-1] == 1 and x.shape[-2:] == shape[:2]:
            return x.reshape(-1, *shape)  # (N, H, W) or (H, W) -> (N, H, W, 1)
        if x.ndim == 2 and x.shape[1] == int(np.prod(shape)):
            return x.reshape(-1, *shape)  # flat rows (N, H*W*C) -> (N, H, W, C)
        raise DataError(
            f"Transform.apply: expected raw samples of shape {shape} (or a batch of them), "
            f"got an array of shape {x.shape}."
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable parameters (stored in the data set's manifest)."""
        return {
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "scale": self.scale,
            "mean": self.mean,
            "std": self.std,
            "categorical": {str(k): v for k, v in self.categorical.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transform:
        """The inverse of `to_dict`."""
        return cls(
            d["kind"],
            tuple(d["input_shape"]),
            scale=d.get("scale"),
            mean=d.get("mean"),
            std=d.get("std"),
            categorical={int(k): int(v) for k, v in (d.get("categorical") or {}).items()},
        )

    def __repr__(self) -> str:
        if self.kind == "image":
            return f"Transform(image {self.input_shape} / {self.scale:g} -> [0, 1] float32)"
        return (
            f"Transform(tabular {self.input_shape[0]} columns standardised, "
            f"{len(self.categorical)} one-hot -> {self.output_shape[0]} features float32)"
        )


# ---- augmentation ----------------------------------------------------------------------------


def augmentation(
    rotation: float = 0.05,
    translation: float = 0.1,
    zoom: float = 0.1,
    *,
    seed: int | None = None,
):
    """Random rotation / translation / zoom as Keras preprocessing layers (train time only).

    Factors are fractions: rotation of a full turn, translation and zoom of the image size.
    A zero factor leaves that layer out. Returns a `keras.Sequential`.
    """
    from workbench.config import load_keras

    for name, v in (("rotation", rotation), ("translation", translation), ("zoom", zoom)):
        params.check_number(name, v, minimum=0.0, maximum=1.0)
    keras = load_keras()
    layers = []
    if rotation:
        layers.append(keras.layers.RandomRotation(rotation, fill_mode="constant", seed=seed))
    if translation:
        layers.append(
            keras.layers.RandomTranslation(
                translation, translation, fill_mode="constant", seed=seed
            )
        )
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="constant", seed=seed))
    return keras.Sequential(layers, name="augmentation")


def augment_preview(
    image: np.ndarray, augmenter: Any = None, *, n: int = 8, seed: int = 0
) -> np.ndarray:
    """`n` augmented copies of one image (H, W[, C]) as float32 (n, H, W, C), for a preview."""
    from workbench.config import load_keras

    keras = load_keras()
    augmenter = augmenter if augmenter is not None else augmentation(seed=seed)
    x = np.asarray(image, np.float32)
    x = x[..., np.newaxis] if x.ndim == 2 else x  # (H, W) -> (H, W, 1)
    batch = np.repeat(x[np.newaxis], n, axis=0)  # (n, H, W, C)
    if not augmenter.layers:
        return batch
    return keras.ops.convert_to_numpy(augmenter(batch, training=True)).astype(np.float32)


# ---- tabular feature engineering -----------------------------------------------------------


def categorical_columns(
    feature_names: Sequence[str] | None, categories: dict[str, list[str]]
) -> dict[int, int]:
    """Column index -> number of categories, for the text columns a CSV source encoded."""
    names = list(feature_names or [])
    return {names.index(name): len(cats) for name, cats in categories.items()}
