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


MISSING_CATEGORY = "(missing)"  # a missing text value is a category of its own


@dataclass(repr=False)
class Transform:
    """Raw samples -> float32 model inputs; fitted on training data, stored as plain numbers.

    Images are divided by `scale`. Tables follow scikit-learn's `ColumnTransformer` layout: the
    numeric columns imputed with their training median and standardised, then one 0/1 column
    per numeric column that had missing values in training (`missing_indicator`), then each
    text column one-hot encoded over the categories seen in training (a missing value is the
    category "(missing)"; a category never seen in training is all zeros).
    """

    kind: str  # "image" or "tabular"
    input_shape: tuple[int, ...]  # one raw sample: (H, W, C) images, (F,) tabular
    scale: float | None = None  # images: divide pixels by this (the source's max), -> [0, 1]
    columns: list[dict[str, Any]] = field(default_factory=list)  # tabular: one per raw column

    @classmethod
    def fit(
        cls,
        x_train: np.ndarray,
        *,
        kind: str,
        scale: float | None = None,
        feature_names: Sequence[str] | None = None,
        categories: dict[str, list[str]] | None = None,
        missing_indicator: bool = True,
    ) -> Transform:
        """Learn the parameters from the training split (never from validation or test).

        Tables: `categories` maps each text column to the values its codes index (a source's
        `RawData.categories`); the fit runs scikit-learn's `SimpleImputer`, `StandardScaler`,
        `MissingIndicator` and `OneHotEncoder(handle_unknown="ignore")` and keeps their
        fitted numbers as plain JSON (never a pickle).
        """
        x_train = np.asarray(x_train)
        if kind == "image":
            if scale is None:
                scale = float(max(x_train.max(), 1)) if x_train.size else 1.0
            return cls("image", tuple(x_train.shape[1:]), scale=float(scale))
        if kind != "tabular":
            raise DataError(f"Transform.fit: kind={kind!r}; expected 'image' or 'tabular'.")
        if x_train.ndim != 2:
            raise DataError(f"Transform.fit: tabular data must be (N, F), got {x_train.shape}.")
        names = list(feature_names or [f"x{j}" for j in range(x_train.shape[1])])
        if len(names) != x_train.shape[1]:
            raise DataError(
                f"Transform.fit: {len(names)} feature names for {x_train.shape[1]} columns."
            )
        vocab = dict(categories or {})
        unknown = sorted(set(vocab) - set(names))
        if unknown:
            raise DataError(f"Transform.fit: categories for unknown columns {unknown}.")
        columns = [
            {"name": n, "type": "categorical", "vocabulary": list(vocab[n])}
            if n in vocab
            else {"name": n, "type": "numeric"}
            for n in names
        ]
        shell = cls("tabular", (len(names),), columns=columns)
        fitted = table_transformer(shell, missing_indicator).fit(shell.frame(x_train))
        numeric = [c for c in columns if c["type"] == "numeric"]
        if numeric:
            impute, scaler = fitted.named_transformers_["numeric"]
            flagged = set()
            if missing_indicator:
                flagged = set(fitted.named_transformers_["missing"].features_.tolist())
            for j, c in enumerate(numeric):
                c["median"] = float(np.nan_to_num(impute.statistics_[j]))
                c["mean"], c["std"] = float(scaler.mean_[j]), float(scaler.scale_[j])
                c["indicator"] = j in flagged
        text = [c for c in columns if c["type"] == "categorical"]
        if text:
            encoder = fitted.named_transformers_["categorical"][-1]
            for c, cats in zip(text, encoder.categories_, strict=True):
                c["categories"] = [str(v) for v in cats]
        return shell

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one transformed sample (what the model's input layer expects)."""
        if self.kind == "image":
            return self.input_shape
        return (len(self.feature_names),)

    @property
    def feature_names(self) -> list[str]:
        """Tables: the name of each model input, e.g. "age", "age missing", "colour=red"."""
        numeric = [c for c in self.columns if c["type"] == "numeric"]
        text = [c for c in self.columns if c["type"] == "categorical"]
        return (
            [c["name"] for c in numeric]
            + [f"{c['name']} missing" for c in numeric if c["indicator"]]
            + [f"{c['name']}={v}" for c in text for v in c["categories"]]
        )

    def apply(self, raw_x: Any) -> np.ndarray:
        """Raw samples (a batch, or one sample) -> float32 batch of shape (N, *output_shape).

        Tables also accept rows as read: a pandas DataFrame, or a list of {column: value}
        dicts, with text categories (missing columns or values count as missing).
        """
        if self.kind == "tabular" and not isinstance(raw_x, np.ndarray | list | tuple):
            return self._apply_table(raw_x)
        if self.kind == "tabular" and isinstance(raw_x, list | tuple) and raw_x:
            if isinstance(raw_x[0], dict):
                return self._apply_table(raw_x)
        x = self._as_batch(np.asarray(raw_x))
        if self.kind == "image":
            return (x.astype(np.float32) / np.float32(self.scale)).astype(np.float32)
        return self._encode(self.frame(x))

    def frame(self, x: np.ndarray) -> Any:
        """Tabular codes (N, F) -> a pandas DataFrame of the values as read (text for text
        columns, None where missing): what scikit-learn's transformer is fitted on."""
        import pandas as pd

        try:
            x = np.asarray(x, np.float64)
        except (TypeError, ValueError) as e:
            raise DataError(
                f"Transform.apply: an array of table rows must hold numbers and category codes, "
                f"as a version stores them ({e}); send rows as read (with text categories) as a "
                "pandas DataFrame or a list of {column: value} dicts."
            ) from e
        data = {}
        for j, c in enumerate(self.columns):
            if c["type"] == "numeric":
                data[c["name"]] = x[:, j]
                continue
            vocab = np.array([*c["vocabulary"], None], dtype=object)
            codes = np.nan_to_num(x[:, j], nan=-1.0)
            valid = (codes >= 0) & (codes < len(c["vocabulary"])) & (codes == np.round(codes))
            data[c["name"]] = vocab[np.where(valid, codes, len(c["vocabulary"])).astype(int)]
        return pd.DataFrame(data)

    def _apply_table(self, rows: Any) -> np.ndarray:
        """Rows as read (DataFrame or records) -> model inputs; a bad number is a DataError."""
        import pandas as pd

        frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
        data = {}
        for c in self.columns:
            values = frame[c["name"]] if c["name"] in frame else pd.Series([None] * len(frame))
            if c["type"] == "numeric":
                numbers = pd.to_numeric(values, errors="coerce")
                bad = values.notna() & numbers.isna()
                if bad.any():
                    raise DataError(
                        f"Transform.apply: column {c['name']!r} expects numbers, got "
                        f"{values[bad].tolist()[:5]!r}; send a number, or null if missing."
                    )
                data[c["name"]] = numbers.to_numpy(np.float64, na_value=np.nan)
            else:
                text = values.astype("string").str.strip()
                data[c["name"]] = text.to_numpy(object, na_value=None)
        return self._encode(pd.DataFrame(data, index=range(len(frame))))

    def _encode(self, frame: Any) -> np.ndarray:
        """The fitted numbers applied to a frame of values as read: what scikit-learn's fitted
        `table_transformer` computes (a test checks), and what the served model rebuilds."""
        import pandas as pd

        numeric = [c for c in self.columns if c["type"] == "numeric"]
        text = [c for c in self.columns if c["type"] == "categorical"]
        n = len(frame)
        parts = [np.zeros((n, 0))]
        if numeric:
            x = np.stack([frame[c["name"]].to_numpy(np.float64) for c in numeric], axis=1)
            missing = np.isnan(x)  # (N, numeric columns)
            x = np.where(missing, [c["median"] for c in numeric], x)
            parts.append((x - [c["mean"] for c in numeric]) / [c["std"] for c in numeric])
            flagged = [j for j, c in enumerate(numeric) if c["indicator"]]
            parts.append(missing[:, flagged].astype(np.float64))
        for c in text:
            values = frame[c["name"]].to_numpy(object)
            values = np.where(pd.isna(values), MISSING_CATEGORY, values)
            parts.append((values[:, None] == np.array(c["categories"], object)).astype(float))
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
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transform:
        """The inverse of `to_dict`."""
        if d["kind"] == "tabular" and "columns" not in d:
            raise DataError(
                "Transform.from_dict: this tabular transform was saved by an older workbench "
                "(no 'columns'); prepare the data set again."
            )
        return cls(
            d["kind"], tuple(d["input_shape"]), scale=d.get("scale"), columns=d.get("columns", [])
        )

    def __repr__(self) -> str:
        if self.kind == "image":
            return f"Transform(image {self.input_shape} / {self.scale:g} -> [0, 1] float32)"
        numeric = [c for c in self.columns if c["type"] == "numeric"]
        flagged = sum(c["indicator"] for c in numeric)
        text = len(self.columns) - len(numeric)
        return (
            f"Transform(tabular {len(self.columns)} columns: {len(numeric)} numeric "
            f"(median-imputed, standardised, {flagged} missing indicators), {text} one-hot "
            f"-> {self.output_shape[0]} features float32)"
        )


def table_transformer(transform: Transform, missing_indicator: bool = True) -> Any:
    """The unfitted scikit-learn `ColumnTransformer` for `transform`'s columns (its layout)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c["name"] for c in transform.columns if c["type"] == "numeric"]
    text = [c["name"] for c in transform.columns if c["type"] == "categorical"]
    steps = []
    if numeric:
        impute = SimpleImputer(strategy="median", keep_empty_features=True)
        steps.append(("numeric", make_pipeline(impute, StandardScaler()), numeric))
        if missing_indicator:
            steps.append(("missing", MissingIndicator(features="missing-only"), numeric))
    if text:
        fill = SimpleImputer(
            strategy="constant", fill_value=MISSING_CATEGORY, keep_empty_features=True
        )
        encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        steps.append(("categorical", make_pipeline(fill, encode), text))
    return ColumnTransformer(steps, sparse_threshold=0.0)


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
