"""Transformation: targets, stratified splits, the fitted Transform and augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.data import (
    ATTRIBUTE_NAMES,
    Transform,
    augment_preview,
    augmentation,
    digit_attributes,
    stratified_split,
    to_channels_last,
)
from workbench.errors import DataError, ParameterError


def test_digit_attributes():
    attrs = digit_attributes(np.arange(10))
    assert attrs.shape == (10, 4) and attrs.dtype == np.float32
    assert ATTRIBUTE_NAMES == ("even", "greater_than_4", "closed_loop", "prime")
    assert np.flatnonzero(attrs[:, 0]).tolist() == [0, 2, 4, 6, 8]
    assert np.flatnonzero(attrs[:, 1]).tolist() == [5, 6, 7, 8, 9]
    assert np.flatnonzero(attrs[:, 2]).tolist() == [0, 6, 8, 9]
    assert np.flatnonzero(attrs[:, 3]).tolist() == [2, 3, 5, 7]
    with pytest.raises(DataError, match=r"expected a 1D array of digits 0-9"):
        digit_attributes(np.array([3, 12]))


def test_stratified_split_keeps_class_shares_and_partitions():
    y = np.repeat([0, 1, 2], [100, 50, 20])
    train, val, test = stratified_split(y, 0.1, 0.2, seed=3)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(len(y)))
    for idx, frac in ((val, 0.1), (test, 0.2)):
        assert np.bincount(y[idx]).tolist() == [
            round(100 * frac),
            round(50 * frac),
            round(20 * frac),
        ]
    again = stratified_split(y, 0.1, 0.2, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not np.array_equal(stratified_split(y, 0.1, 0.2, seed=4)[2], test)


def test_split_falls_back_to_shuffle_for_multilabel_and_regression():
    train, val, test = stratified_split(np.linspace(0, 1, 50), 0.2, 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (30, 10, 10)
    train, _, test = stratified_split(np.zeros((20, 4), np.float32), 0.0, 0.25, seed=0)
    assert (len(train), len(test)) == (15, 5)


def test_split_fractions_are_validated():
    with pytest.raises(ParameterError, match=r"Parameter 'val_fraction': expected a number in"):
        stratified_split(np.zeros(10, int), -0.1, 0.2)
    with pytest.raises(ParameterError, match=r"expected a sum below 1 .* got 0.5 \+ 0.5"):
        stratified_split(np.zeros(10, int), 0.5, 0.5)


def test_image_transform_scales_with_the_source_max_and_reshapes():
    raw = np.array([[[0, 8], [16, 4]]], np.uint8)  # (1, 2, 2)
    t = Transform.fit(to_channels_last(raw), kind="image", scale=16)
    out = t.apply(raw)  # (N, H, W) is accepted for one channel
    assert out.shape == (1, 2, 2, 1) and out.dtype == np.float32
    assert out.ravel().tolist() == [0.0, 0.5, 1.0, 0.25]
    assert t.apply(raw[0]).shape == (1, 2, 2, 1)  # one sample
    assert t.apply(raw.reshape(1, 4)).shape == (1, 2, 2, 1)  # flat rows
    with pytest.raises(DataError, match=r"expected raw samples of shape \(2, 2, 1\).* \(3, 3\)"):
        t.apply(np.zeros((3, 3)))
    assert repr(t) == "Transform(image (2, 2, 1) / 16 -> [0, 1] float32)"


def test_tabular_transform_fits_on_train_only_imputes_and_one_hots():
    x_train = np.array([[1.0, 0], [3.0, 1], [np.nan, 2], [5.0, 0]])  # column 1: codes into k
    t = Transform.fit(
        x_train, kind="tabular", feature_names=["w", "k"], categories={"k": ["p", "q", "r", "s"]}
    )
    w, k = t.columns
    assert (w["median"], w["mean"], w["indicator"]) == (3.0, 3.0, True)  # mean after imputing
    assert k["categories"] == ["p", "q", "r"]  # "s" never occurs in training
    assert t.feature_names == ["w", "w missing", "k=p", "k=q", "k=r"] and t.output_shape == (5,)
    x_test = np.array([[3.0, 3], [np.nan, np.nan]])  # an unseen category; two missing values
    assert t.apply(x_test).tolist() == [[0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]


def test_transform_params_are_plain_json_and_round_trip():
    x = np.array([[1.0, 2.0], [3.0, 2.0]])
    t = Transform.fit(x, kind="tabular")
    d = json.loads(json.dumps(t.to_dict()))
    assert [c["std"] for c in d["columns"]] == [1.0, 1.0]  # a constant column keeps std 1
    assert Transform.from_dict(d) == t
    assert np.array_equal(Transform.from_dict(d).apply(x), t.apply(x))


def test_an_old_tabular_transform_asks_to_prepare_again():
    old = {"kind": "tabular", "input_shape": [2], "mean": [0, 0], "std": [1, 1]}
    with pytest.raises(DataError, match="saved by an older workbench .* prepare the data set"):
        Transform.from_dict(old)


def test_augmentation_layers_and_preview():
    aug = augmentation(rotation=0.05, translation=0.1, zoom=0.1, seed=1)
    assert [type(layer).__name__ for layer in aug.layers] == [
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
    ]
    assert len(augmentation(0, 0.1, 0).layers) == 1
    image = np.zeros((8, 8), np.float32)
    image[2:6, 3:5] = 1.0
    copies = augment_preview(image, aug, n=4)
    assert copies.shape == (4, 8, 8, 1) and copies.dtype == np.float32
    assert not np.allclose(copies[0], copies[1])  # each copy is a new random draw
    assert np.array_equal(augment_preview(image, augmentation(0, 0, 0), n=2)[0, ..., 0], image)
    with pytest.raises(
        ParameterError, match=r"Parameter 'zoom': expected a number in \[0.0, 1.0\]"
    ):
        augmentation(zoom=2)
