"""Figure 3's downstream tasks on real representations of scikit-learn digits.

The representations come from a small Keras model with the amalgam's four outputs (a pooled
convolutional "high_latent", a linear 8-d "low_latent" bottleneck, "logits", four sigmoid
"attributes"), trained for a few epochs on the training split: real, cheap, and independent of
workbench.amalgam.model. Tests that need only labels or realistic arrays say so.
"""

from __future__ import annotations

import inspect
import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from workbench.amalgam import ood, table, tasks
from workbench.data.prepare import prepare
from workbench.data.transform import ATTRIBUTE_NAMES, digit_attributes
from workbench.errors import DataError, ParameterError
from workbench.evaluate import calibration
from workbench.plots import amalgam as plots

SPLITS = ("train", "val", "test")
OUTPUTS = ("high_latent", "low_latent", "logits", "attributes")


def _amalgam_like(keras):
    """Input -> conv bottom -> pooled high latent -> logits, attributes and a linear low latent
    (trained through a small softmax classifier on it, as the amalgam trains its bottleneck)."""
    layers = keras.layers
    x = keras.Input((8, 8, 1))
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(64, 3, padding="same", activation="relu")(h)
    high = layers.GlobalAveragePooling2D(name="high_latent")(h)
    low = layers.Dense(8, name="low_latent")(high)
    outputs = {
        "high_latent": high,
        "low_latent": low,
        "logits": layers.Dense(10, name="logits")(high),
        "attributes": layers.Dense(4, activation="sigmoid", name="attributes")(high),
        "low_classes": layers.Dense(10, activation="softmax", name="low_classes")(low),
    }
    return keras.Model(x, outputs)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The digits version, the trained model and its outputs per split (plus on photo patches)."""
    from workbench.config import load_keras, seed_everything

    keras = load_keras()
    seed_everything(0)
    version = prepare("digits", run_dir=tmp_path_factory.mktemp("amalgam"))
    raw = {s: version.split(s) for s in SPLITS}
    model = _amalgam_like(keras)
    heads = ("logits", "attributes", "low_classes")
    trainer = keras.Model(model.input, [model.output[h] for h in heads])
    trainer.compile(
        keras.optimizers.Adam(5e-3),
        [keras.losses.SparseCategoricalCrossentropy(from_logits=True), "binary_crossentropy",
         "sparse_categorical_crossentropy"],
    )  # fmt: skip
    x, y = raw["train"]
    trainer.fit(version.transform.apply(x), [y, digit_attributes(y), y], epochs=10,
                batch_size=32, verbose=0)  # fmt: skip

    def outputs(x_raw):
        out = model.predict_on_batch(version.transform.apply(x_raw))
        return {k: np.asarray(out[k]) for k in OUTPUTS}

    patches = ood.patches(300, 8, seed=0, match_mean=ood.mean_intensity(raw["train"][0]))
    reps = {s: outputs(raw[s][0]) for s in SPLITS}
    reps["ood"] = outputs(patches)
    return {
        "version": version,
        "x": {s: raw[s][0] for s in SPLITS},
        "y": {s: raw[s][1] for s in SPLITS},
        "reps": reps,
        "patches": patches,
        "teacher_params": model.count_params(),
    }


def titled(fig: Figure) -> bool:
    texts = [ax.get_title() for ax in fig.axes]
    texts += [f._suptitle.get_text() for f in (fig, *fig.subfigs) if f._suptitle is not None]
    return any(texts)


# ---- task 1 -----------------------------------------------------------------------------


def test_nearest_returns_sorted_cosine_neighbours(world):
    r, y = world["reps"], world["y"]
    idx, dist = tasks.nearest(r["train"]["high_latent"], r["test"]["high_latent"], k=5)
    assert idx.shape == dist.shape == (len(y["test"]), 5)
    assert np.all(np.diff(dist, axis=1) >= -1e-6) and np.all(dist >= -1e-5)
    self_idx, self_dist = tasks.nearest(
        r["train"]["high_latent"][:20], r["train"]["high_latent"][:20], k=1
    )
    assert np.array_equal(self_idx[:, 0], np.arange(20)) and np.allclose(self_dist, 0, atol=1e-5)
    with pytest.raises(ParameterError, match="'k'"):
        tasks.nearest(r["train"]["high_latent"][:3], r["test"]["high_latent"], k=5)


def test_precision_at_k_far_above_chance(world):
    r, y = world["reps"], world["y"]
    p5 = tasks.precision_at_k(
        r["train"]["high_latent"], y["train"], r["test"]["high_latent"], y["test"], k=5
    )
    assert p5 > 0.8  # chance is 0.1 with ten balanced classes


# ---- task 2 -----------------------------------------------------------------------------


def test_map_2d_pca_or_identity_and_clusters(world):
    r, y = world["reps"], world["y"]
    m = tasks.fit_map_2d(r["train"]["low_latent"])
    assert m.apply(r["test"]["low_latent"]).shape == (len(y["test"]), 2) and 0 < m.explained < 1
    flat = r["test"]["low_latent"][:, :2]
    assert np.array_equal(tasks.fit_map_2d(flat).apply(flat), flat)  # a 2-D latent as it is
    km = tasks.fit_kmeans(r["train"]["low_latent"], n_clusters=10, seed=0)
    ari, clusters = tasks.cluster_ari(km, r["test"]["low_latent"], y["test"])
    assert clusters.shape == (len(y["test"]),) and ari > 0.4  # 0 = chance


def test_patches_shape_range_and_matched_mean(world):
    """Real photo patches (scikit-learn's sample images) against the digits' pixel statistics."""
    digits_means = ood.mean_intensity(world["x"]["train"])
    p = world["patches"]
    assert p.shape == (300, 8, 8, 1) and p.dtype == np.float32
    assert p.min() >= 0 and p.max() <= 16
    assert abs(ood.mean_intensity(p).mean() - digits_means.mean()) < 0.15
    one = ood.patches(20, 8, seed=1, match_mean=5.0)
    assert np.allclose(ood.mean_intensity(one), 5.0, atol=0.01)
    mnist_like = ood.patches(5, 28, seed=0, match_mean=33.0, value_range=(0, 255))
    assert mnist_like.shape == (5, 28, 28, 1) and 0 <= mnist_like.min() <= mnist_like.max() <= 255
    assert np.array_equal(ood.patches(4, 8, seed=3), ood.patches(4, 8, seed=3))  # seeded
    with pytest.raises(ParameterError, match="size"):
        ood.patches(2, 200, seed=0)  # 800-pixel crops do not fit in a 427-pixel photograph
    with pytest.raises(ParameterError, match="value_range"):
        ood.patches(2, 8, seed=0, value_range=(16, 0))


def test_ood_latent_beats_brightness_baseline(world):
    r, x = world["reps"], world["x"]
    baseline = ood.auroc(ood.mean_intensity(x["test"]), ood.mean_intensity(world["patches"]))
    assert abs(baseline - 0.5) < 0.15  # brightness alone cannot separate them
    scorer = ood.fit_mahalanobis(r["train"]["low_latent"], world["y"]["train"])
    latent = ood.auroc(scorer.score(r["test"]["low_latent"]), scorer.score(r["ood"]["low_latent"]))
    assert latent > 0.8 and latent > baseline + 0.2
    assert ood.auroc([0, 1], [2, 3]) == 1.0 and ood.auroc([2, 3], [0, 1]) == 0.0


# ---- task 3 -----------------------------------------------------------------------------


def test_temperature_tames_overconfident_logits(world):
    r, y = world["reps"], world["y"]
    sharp_val, sharp_test = 5 * r["val"]["logits"], 5 * r["test"]["logits"]
    t = tasks.fit_temperature(sharp_val, y["val"])
    assert t > 1
    before = tasks.expected_calibration_error(tasks.softmax(sharp_test), y["test"])
    after = tasks.expected_calibration_error(tasks.softmax(sharp_test, t), y["test"])
    assert after < before
    probs = tasks.softmax(sharp_test, t)
    assert np.allclose(probs.sum(axis=1), 1) and tasks.accuracy(probs, y["test"]) == tasks.accuracy(
        sharp_test, y["test"]
    )
    assert tasks.nll(sharp_val, y["val"], t) <= tasks.nll(sharp_val, y["val"], 1.0)


def test_ece_is_evaluate_calibration():
    """Hand-made probabilities: the same number as workbench.evaluate.calibration."""
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    expected = calibration(probs.max(1), probs.argmax(1) == y, bins=15)["ece"]
    assert tasks.expected_calibration_error(probs, y) == pytest.approx(expected)
    assert tasks.expected_calibration_error(np.eye(3), np.arange(3)) == 0.0


def test_distilled_student_is_small_and_accurate(world):
    r, y, version = world["reps"], world["y"], world["version"]
    x_train = version.transform.apply(world["x"]["train"])
    student = tasks.distill(x_train, r["train"]["logits"], y["train"], epochs=10, seed=0)
    acc = tasks.accuracy(student.logits(version.transform.apply(world["x"]["test"])), y["test"])
    assert student.params < world["teacher_params"] and acc > 0.8
    with pytest.raises(DataError, match="same number"):
        tasks.distill(x_train[:10], r["train"]["logits"], y["train"])


# ---- task 4 -----------------------------------------------------------------------------


def test_thresholds_fitted_on_validation_only(world):
    r, y = world["reps"], world["y"]
    fit_params = list(inspect.signature(tasks.fit_thresholds).parameters)
    assert fit_params == ["probs_val", "attributes_val"]  # no test arrays can go in
    assert list(inspect.signature(tasks.fit_temperature).parameters) == ["logits_val", "y_val"]
    assert "thresholds" not in inspect.signature(tasks.attribute_scores).parameters
    truth_val = digit_attributes(y["val"])
    th = tasks.fit_thresholds(r["val"]["attributes"], truth_val)
    assert th.shape == (4,)
    val_f1 = tasks.attribute_scores(r["val"]["attributes"] >= th, truth_val)["f1"]
    for t in np.linspace(0.05, 0.95, 19):  # no threshold on a grid beats the fitted ones
        grid = tasks.attribute_scores(r["val"]["attributes"] >= t, truth_val)["f1"]
        assert np.all(grid <= val_f1 + 1e-9)


def test_attribute_tagging_beats_chance(world):
    r, y = world["reps"], world["y"]
    th = tasks.fit_thresholds(r["val"]["attributes"], digit_attributes(y["val"]))
    truth = digit_attributes(y["test"])
    s = tasks.attribute_scores(r["test"]["attributes"] >= th, truth)
    share = truth.mean(axis=0)
    all_yes_f1 = 2 * share / (1 + share)  # the F1 of tagging every image
    assert np.all(s["f1"] > all_yes_f1 + 0.1) and s["exact_match"] > 0.5
    assert set(s) == {"precision", "recall", "f1", "support", "exact_match"}


# ---- task 5 -----------------------------------------------------------------------------


def test_combine_joins_two_embeddings():
    a, b = np.array([[1.0, -2.0]]), np.array([[3.0, 4.0]])
    assert tasks.combine(a, b).tolist() == [[1, -2, 3, 4, 2, 6, 3, -8]]
    with pytest.raises(DataError, match="one shape"):
        tasks.combine(a, b[:, :1])


def test_pairs_stay_within_one_split(world):
    """Labels only: pairs are indices into the one split they are drawn from."""
    y_train, y_test = world["y"]["train"], world["y"]["test"]
    for task in tasks.PAIR_TASKS:
        i, j, target = tasks.make_pairs(y_test, 500, task=task, seed=0)
        assert i.max() < len(y_test) and j.max() < len(y_test)
        expected = y_test[i] == y_test[j] if task == "same" else y_test[i] + y_test[j]
        assert np.array_equal(target, expected.astype(int))
        again = tasks.make_pairs(y_test, 500, task=task, seed=0)
        assert all(np.array_equal(a, b) for a, b in zip((i, j, target), again, strict=True))
    _, _, same = tasks.make_pairs(y_train, 500, task="same", seed=0)
    assert same.mean() == 0.5  # balanced
    assert list(inspect.signature(tasks.fit_pair_classifier).parameters)[:2] == [
        "z_train",
        "y_train",
    ]  # the classifier sees training pairs only
    result = tasks.pair_task(world["reps"]["train"]["low_latent"], y_train,
                             world["reps"]["test"]["low_latent"], y_test, task="same", n_train=1000,
                             n_test=200)  # fmt: skip
    ti, tj = result["pairs"]
    assert ti.max() < len(y_test) and np.array_equal(result["target"], (y_test[ti] == y_test[tj]))


@pytest.mark.parametrize("task", tasks.PAIR_TASKS)
def test_pair_tasks_beat_chance(world, task):
    r, y = world["reps"], world["y"]
    result = tasks.pair_task(r["train"]["low_latent"], y["train"], r["test"]["low_latent"],
                             y["test"], task=task, seed=0)  # fmt: skip
    bar = 0.7 if task == "same" else 2.5 * result["chance"]  # chance: 0.5; ~0.11 (sum = 9)
    assert result["accuracy"] > bar


# ---- the table ----------------------------------------------------------------------------


def test_representation_table(world):
    rows = table.representation_table(world["reps"], world["y"], n_pairs=1000)
    keys = {"task", "candidate", "representation", "dims", "bytes_per_example", "us_per_query",
            "metric", "value", "used"}  # fmt: skip
    assert all(set(r) == keys for r in rows)
    assert {r["task"] for r in rows} == set(table.USED)
    for task, pick in table.USED.items():  # exactly the workbench's pick is marked, per task
        assert {r["candidate"] for r in rows if r["task"] == task and r["used"]} == {pick}
    for r in rows:
        assert r["bytes_per_example"] == 4 * r["dims"] and r["us_per_query"] >= 0
        assert 0 <= r["value"] <= 1 or r["metric"] == "ARI"
    high = next(r for r in rows if r["task"] == "1 similarity search" and r["used"])
    assert high["dims"] == 64 and high["value"] > 0.8


# ---- figures ----------------------------------------------------------------------------


def test_figures_have_titles(world):
    r, y, x = world["reps"], world["y"], world["x"]
    idx, dist = tasks.nearest(r["train"]["high_latent"], r["test"]["high_latent"][:4], k=5)
    m = tasks.fit_map_2d(r["train"]["low_latent"])
    t = tasks.fit_temperature(r["val"]["logits"], y["val"])
    truth = digit_attributes(y["test"])
    th = tasks.fit_thresholds(r["val"]["attributes"], digit_attributes(y["val"]))
    s = tasks.attribute_scores(r["test"]["attributes"] >= th, truth)
    i, j, target = tasks.make_pairs(y["test"], 6, task="sum", seed=0)
    figures = [
        plots.plot_neighbours(x["test"], y["test"], x["train"], y["train"], idx, dist, n_queries=4),
        plots.plot_latent_map(m.apply(r["test"]["low_latent"]), y["test"],
                              ood_points=m.apply(r["ood"]["low_latent"]),
                              axis_labels=("PC 1", "PC 2")),
        plots.plot_reliability_before_after(tasks.softmax(r["test"]["logits"]),
                                            tasks.softmax(r["test"]["logits"], t), y["test"],
                                            temperature=t),
        plots.plot_attributes(s, ATTRIBUTE_NAMES),
        plots.plot_attributes(s, ATTRIBUTE_NAMES, image=x["test"][0],
                              probabilities=r["test"]["attributes"][0], thresholds=th),
        plots.plot_pairs(x["test"], (i, j), target, target, task="sum"),
    ]  # fmt: skip
    for fig in figures:
        assert isinstance(fig, Figure) and titled(fig)
        fig.savefig(io.BytesIO(), format="png", dpi=40)  # draws without error


def test_fashion_mnist_is_read_from_the_keras_cache_only(tmp_path):
    """A second OOD set where Keras has Fashion-MNIST cached: a small IDX file written here
    stands in for it, checked by its hash; without the file, None (nothing is downloaded)."""
    import gzip
    import hashlib

    assert ood.cached_fashion_mnist(3, 8, seed=0, cache_dir=tmp_path) is None
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    header = b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in images.shape)
    path = tmp_path / "datasets" / "fashion-mnist" / ood.FASHION_TEST
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(header + images.tobytes()))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    x = ood.cached_fashion_mnist(3, 8, seed=0, value_range=(0, 16), cache_dir=tmp_path,
                                 file_hash=md5)  # fmt: skip
    assert x.shape == (3, 8, 8, 1) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 16
    full = ood.cached_fashion_mnist(5, 28, seed=0, cache_dir=tmp_path, file_hash=md5)
    assert sorted(full[..., 0].reshape(5, -1).sum(1)) == sorted(images.reshape(5, -1).sum(1))
    with pytest.raises(DataError, match="not the expected"):
        ood.cached_fashion_mnist(3, 8, seed=0, cache_dir=tmp_path)  # the published md5
