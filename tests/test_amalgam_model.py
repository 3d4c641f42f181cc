"""Figure 3's amalgam: one shared bottom, four named representations, one loss per head."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import TINY, card_for_version

from workbench.amalgam.model import (
    AUXILIARY,
    REPRESENTATIONS,
    add_head,
    amalgam_cost,
    amalgam_targets,
    attribute_names,
    attribute_targets,
    build_amalgam,
    compile_amalgam,
    fit_amalgam,
    representations,
    serving_model,
)
from workbench.config import load_keras
from workbench.data import prepare
from workbench.data.transform import ATTRIBUTE_NAMES
from workbench.design import build, preset
from workbench.errors import DataError, ParameterError
from workbench.identify import ProblemCard

HEAD_LAYERS = ("low_latent", "logits", "attributes", AUXILIARY)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    version = prepare("digits", run_dir=tmp_path_factory.mktemp("amalgam-digits"))
    return version, card_for_version(version)


@pytest.fixture(scope="module")
def trained(digits):
    """The compact preset's amalgam after two epochs on the smoke digits."""
    version, card = digits
    model = build_amalgam(preset("compact", card), card)
    history = fit_amalgam(model, version, card, epochs=2)
    return model, history


@pytest.fixture(scope="module")
def val_batch(digits):
    version, card = digits
    x, y = version.split("val")
    return version.transform.apply(x[:64]), y[:64]


def weights_of(model, names):
    return {n: [np.array(w) for w in model.get_layer(n).get_weights()] for n in names}


def same(a, b) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_four_named_representations_with_their_shapes(trained, val_batch, digits):
    model, _ = trained
    card = digits[1]
    reps = representations(model)
    out = reps.predict_on_batch(val_batch[0])
    assert list(out) == list(REPRESENTATIONS) and AUXILIARY in model.output
    assert {k: v.shape for k, v in out.items()} == {
        "high_latent": (64, 256),  # compact on 8x8: 64 channels x 2x2 after the last pool
        "low_latent": (64, 8),
        "logits": (64, 10),
        "attributes": (64, 4),
    }
    assert attribute_names(card) == ATTRIBUTE_NAMES
    bottom = model.get_layer("bottom").predict_on_batch(val_batch[0])
    np.testing.assert_array_equal(out["high_latent"], bottom)  # the pooled features themselves
    logits, attributes = out["logits"], out["attributes"]
    assert (logits < 0).any() and not np.allclose(logits.sum(axis=1), 1.0)  # not softmaxed
    assert ((attributes > 0) & (attributes < 1)).all()
    assert not np.allclose(attributes.sum(axis=1), 1.0)  # independent sigmoids, no softmax


def test_a_short_joint_training_learns_every_head(trained):
    _, history = trained
    assert history["val_logits_accuracy"][-1] > 0.6  # chance: 0.1 (about 0.89 here)
    assert history["val_attributes_binary_accuracy"][-1] > 0.7  # chance: about 0.5
    assert history["val_low_latent_classes_accuracy"][-1] > 0.4  # through 8 dimensions
    assert "val_high_latent_loss" not in history and "val_low_latent_loss" not in history


@pytest.mark.parametrize(
    "head, changed",
    [
        ("logits", {"logits"}),
        ("attributes", {"attributes"}),
        (AUXILIARY, {"low_latent", AUXILIARY}),  # the bottleneck learns through its classifier
    ],
)
def test_each_loss_lands_on_its_own_head(digits, val_batch, head, changed):
    version, card = digits
    model = build_amalgam(TINY, card)
    compile_amalgam(
        model, loss_weights={h: float(h == head) for h in ("logits", "attributes", AUXILIARY)}
    )
    model.run_eagerly = True  # one step: no graph to trace (the losses are mapped the same)
    before = weights_of(model, ("bottom", *HEAD_LAYERS))
    x, y = val_batch
    model.train_on_batch(x, amalgam_targets(card, y))
    after = weights_of(model, ("bottom", *HEAD_LAYERS))
    moved = {n for n in HEAD_LAYERS if not same(before[n], after[n])}
    assert moved == changed and not same(before["bottom"], after["bottom"])


def test_reported_losses_are_each_heads_own(trained, digits, val_batch):
    keras = load_keras()
    model = keras.models.clone_model(trained[0])
    model.set_weights(trained[0].get_weights())
    card = digits[1]
    weights = {"logits": 1.0, "attributes": 3.0, AUXILIARY: 0.5}
    compile_amalgam(model, loss_weights=weights)
    x, y = val_batch
    targets = amalgam_targets(card, y)
    reported = model.test_on_batch(x, targets, return_dict=True)
    out = model.predict_on_batch(x)
    logits = out["logits"] - out["logits"].max(axis=1, keepdims=True)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    p, a = np.clip(out["attributes"], 1e-7, 1 - 1e-7), targets["attributes"]
    by_hand = {
        "logits": -log_softmax[np.arange(len(y)), y].mean(),
        "attributes": -(a * np.log(p) + (1 - a) * np.log(1 - p)).mean(),
        AUXILIARY: -np.log(out[AUXILIARY][np.arange(len(y)), y]).mean(),
    }
    assert len({round(float(v), 2) for v in by_hand.values()}) == 3  # distinguishable
    for name, value in by_hand.items():
        assert reported[f"{name}_loss"] == pytest.approx(value, rel=1e-3)
    total = sum(weights[n] * v for n, v in by_hand.items())
    assert reported["loss"] == pytest.approx(total, rel=1e-3)


def test_a_head_added_later_leaves_the_frozen_bottom_unchanged(digits):
    keras = load_keras()
    version, card = digits
    model = build_amalgam(TINY.replace(batch_norm=True), card)
    norm = next(
        v for v in model.get_layer("bottom").non_trainable_weights if "moving_mean" in v.path
    )
    initial = np.array(norm)
    fit_amalgam(model, version, card, epochs=1)
    assert not np.array_equal(initial, np.array(norm))  # joint training moves BN statistics
    head = add_head(
        model,
        "parity",
        "low_latent",
        2,
        activation="softmax",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    assert not model.get_layer("bottom").trainable and list(head.output) == ["parity"]
    before = weights_of(model, ("bottom", *HEAD_LAYERS))
    kernel = np.array(head.get_layer("parity").kernel)
    x, y = version.split("train")
    head.fit(version.transform.apply(x), y % 2, epochs=1, batch_size=64, verbose=0)
    after = weights_of(model, ("bottom", *HEAD_LAYERS))
    assert all(same(before[n], after[n]) for n in before)  # incl. BN moving mean and variance
    assert not np.array_equal(kernel, np.array(head.get_layer("parity").kernel))
    with pytest.raises(ParameterError, match=r"Parameter 'on': expected one of"):
        add_head(model, "x", "probabilities", 2, loss="mse")
    with pytest.raises(ParameterError, match="already uses for a representation"):
        add_head(model, "logits", "high_latent", keras.layers.Dense(2), loss="mse")


def test_the_same_seed_builds_the_same_weights(digits):
    card = digits[1]
    a, b, c = (build_amalgam(TINY, card, seed=s).get_weights() for s in (0, 0, 1))
    assert same(a, b) and not same(a, c)


def test_saved_amalgam_loads_in_safe_mode_with_its_output_names(trained, val_batch, tmp_path):
    keras = load_keras()
    model = trained[0]
    model.save(tmp_path / "amalgam.keras")
    loaded = keras.saving.load_model(tmp_path / "amalgam.keras", safe_mode=True)
    assert list(loaded.output) == [*REPRESENTATIONS, AUXILIARY]
    want, got = (m.predict_on_batch(val_batch[0]) for m in (model, loaded))
    assert all(np.allclose(want[k], got[k], atol=1e-6) for k in want)


def test_serving_model_takes_raw_pixels_and_exports_to_onnx(trained, digits, tmp_path):
    import onnxruntime as ort

    version = digits[0]
    x_raw = version.split("test")[0][:32].astype(np.float32)
    reps = representations(trained[0])
    want = reps.predict_on_batch(version.transform.apply(x_raw))
    served = serving_model(trained[0], version)
    got = served.predict_on_batch({"images": x_raw})  # pixels 0..16, as the source gives them
    assert list(got) == list(REPRESENTATIONS)
    assert all(np.allclose(want[k], got[k], atol=1e-5) for k in want)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Keras' numpy-2 patch of tf2onnx
        reps.export(str(tmp_path / "amalgam.onnx"), format="onnx", verbose=False)
    session = ort.InferenceSession(str(tmp_path / "amalgam.onnx"))
    names = [o.name for o in session.get_outputs()]
    assert sorted(names) == sorted(REPRESENTATIONS)
    feed = {session.get_inputs()[0].name: version.transform.apply(x_raw)}
    onnx = dict(zip(names, session.run(names, feed), strict=True))
    assert all(np.allclose(want[k], onnx[k], atol=1e-4) for k in want)


@pytest.mark.parametrize(
    "card, what",
    [
        (ProblemCard(modality="tabular", task="multiclass", num_outputs=3, input_shape=(13,)),
         "a multiclass card of tabular data"),
        (ProblemCard(modality="image", task="regression", num_outputs=1, input_shape=(8, 8, 1)),
         "a regression card of image data"),
        (ProblemCard(modality="image", task="multilabel", num_outputs=4, input_shape=(8, 8, 1)),
         "a multilabel card of image data"),
    ],
)  # fmt: skip
def test_only_image_classification_cards_have_an_amalgam(card, what):
    with pytest.raises(ParameterError, match=f"needs an image classification card.*got {what}"):
        build_amalgam(TINY, card)


def test_other_image_classes_get_one_attribute_per_class():
    card = ProblemCard(
        modality="image",
        task="multiclass",
        num_outputs=3,
        input_shape=(8, 8, 1),
        class_names=("cat", "dog", "owl"),
    )
    assert attribute_names(card) == ("is cat", "is dog", "is owl")
    np.testing.assert_array_equal(attribute_targets(card, np.array([2, 0])), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(DataError, match=r"integers 0..2, got shape \(2,\) with values \[0, 3\]"):
        attribute_targets(card, np.array([0, 3]))
    assert build_amalgam(TINY, card).output["attributes"].shape == (None, 3)


def test_cost_counts_the_bottom_and_each_head(trained, digits):
    card = digits[1]
    spec = preset("compact", card)
    cost = amalgam_cost(spec, card)
    assert cost["amalgam"]["params"] == trained[0].count_params()
    assert cost["plain"]["params"] == build(spec, card).count_params()
    assert cost["logits"] == {"params": 257 * 10, "macs": 256 * 10}
    assert cost["amalgam"]["macs"] < cost["plain"]["macs"]  # no Dense-128 embedding


def test_head_accuracies_reads_the_last_epoch_of_each_head():
    from workbench.amalgam.model import head_accuracies

    history = {"loss": [1.0, 0.5], "logits_accuracy": [0.5, 0.9], "val_logits_accuracy": [0.4, 0.8],
               "attributes_binary_accuracy": [0.7, 0.95]}  # fmt: skip
    assert head_accuracies(history) == [
        {"head": "logits", "train": 0.9, "validation": 0.8},
        {"head": "attributes", "train": 0.95, "validation": None},
    ]
