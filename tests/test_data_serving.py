"""Serving: the batched feed and serve-time inputs are the same transformation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from workbench.data import prepare
from workbench.data.serving import Feed, feed, serve_batch


@pytest.fixture(scope="module")
def digits_version(tmp_path_factory):
    return prepare("digits", run_dir=tmp_path_factory.mktemp("run"))


def test_feed_batches_are_transformed_with_sparse_labels(digits_version):
    train = feed(digits_version, "train", batch_size=64)
    x, y = train[0]
    assert x.shape == (64, 8, 8, 1) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    assert y.shape == (64,) and y.dtype == np.int64
    n = len(digits_version.arrays["y_train"])
    assert len(train) == -(-n // 64) and len(train[len(train) - 1][0]) == n - 64 * (len(train) - 1)
    with pytest.raises(IndexError):
        train[len(train)]
    assert repr(train).startswith(f"Feed({n} samples, {len(train)} batches of 64, shuffle=True")


def test_shuffle_is_deterministic_per_seed_and_new_each_epoch(digits_version):
    a, b = feed(digits_version, seed=5), feed(digits_version, seed=5)
    assert np.array_equal(a[0][1], b[0][1]) and np.array_equal(a.order, b.order)
    first = a.order.copy()
    a.on_epoch_end()
    b.on_epoch_end()
    assert not np.array_equal(a.order, first) and np.array_equal(a.order, b.order)
    assert not np.array_equal(feed(digits_version, seed=6).order, first)
    assert sorted(first.tolist()) == list(range(len(first)))


def test_val_and_test_are_not_shuffled(digits_version):
    test = feed(digits_version, "test", batch_size=32)
    assert not test.shuffle
    assert np.array_equal(test[0][1], digits_version.arrays["y_test"][:32])


def test_serve_batch_equals_the_training_feed(digits_version):
    test = feed(digits_version, "test", batch_size=50)
    raw = digits_version.arrays["x_test"][:50]
    served = serve_batch(digits_version, raw)
    assert np.array_equal(served, test[0][0])
    from_manifest = serve_batch(digits_version.manifest["transform"], raw[:, :, :, 0])  # (N, 8, 8)
    assert np.array_equal(from_manifest, served)
    one = serve_batch(digits_version.transform, raw[3])
    assert one.shape == (1, 8, 8, 1) and np.array_equal(one[0], served[3])


def test_float_labels_for_multilabel(tmp_path):
    v = prepare("digits", run_dir=tmp_path, task="multilabel")
    x, y = feed(v, "val", batch_size=16)[0]
    assert y.shape == (16, 4) and y.dtype == np.float32


def test_feed_is_a_keras_pydataset_that_trains_and_pickles(digits_version):
    from workbench.config import load_keras

    keras = load_keras()
    train = feed(digits_version, "train", batch_size=128, workers=2, max_queue_size=4)
    assert isinstance(train, keras.utils.PyDataset)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and train.epoch >= 2  # a new order per epoch
    clone = pickle.loads(pickle.dumps(feed(digits_version, "val")))
    assert type(clone) is Feed and Feed.__qualname__ == "Feed"  # workbench.data.serving.Feed
    assert Feed.__module__ == "workbench.data.serving"
    assert np.array_equal(clone[0][0], feed(digits_version, "val")[0][0])
