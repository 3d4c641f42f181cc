"""Continuous learning, data and model side: carve, arriving (shifted) batches, accumulated
training versions, and retraining warm or from scratch through workbench.train."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY, card_for_version

from workbench.data import prepare
from workbench.data.versioning import load_version
from workbench.deploy import retrain as retrain_module
from workbench.deploy import stream
from workbench.deploy.retrain import RETRAIN_FILE, retrain, retrain_run_id, weights_sha256
from workbench.errors import DataError, ParameterError
from workbench.tracking import mlflow_client
from workbench.train import TrainConfig, train

ONE_EPOCH = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-2)
PLAN = [None, None, ("rotate", 30), ("rotate", 30)]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("stream-digits")
    version = prepare("digits", run_dir=run_dir)
    carved = stream.carve(version, gate_fraction=0.15, stream_fraction=0.4, seed=0)
    return run_dir, version, carved


@pytest.fixture(scope="module")
def grown(digits):
    """The day-0 version, a champion trained on it, and a version grown by four batches."""
    run_dir, version, carved = digits
    day0 = stream.save_training_version(
        run_dir, version, carved.x_train, carved.y_train, note="day 0"
    )
    card = card_for_version(day0)
    champion = train(TINY, day0, ONE_EPOCH, card=card, run_dir=run_dir, track=False, verbose=0)
    arrived = stream.schedule(carved.x_pool, carved.y_pool, PLAN, batch_size=50, high=16, seed=0)
    later = stream.save_training_version(
        run_dir, version, carved.x_train, carved.y_train, note="after 4", arrived=arrived
    )
    return card, champion, later, arrived


def test_carve_parts_are_disjoint_cover_train_and_keep_class_shares(digits):
    _, version, carved = digits
    _, y = version.split("train")
    rows = carved.rows
    every = np.concatenate([rows["train"], rows["gate"], rows["pool"]])
    assert len(every) == len(np.unique(every)) == len(y)  # disjoint, and nothing left out
    share = np.bincount(y, minlength=10) / len(y)
    for part, fraction in (("gate", 0.15), ("pool", 0.4), ("train", 0.45)):
        counts = np.bincount(y[rows[part]], minlength=10)
        # stratified: each class within one row of its share (each class is rounded once)
        np.testing.assert_allclose(counts, share * len(y) * fraction, atol=1.01)
    np.testing.assert_array_equal(carved.y_gate, y[rows["gate"]])
    again = stream.carve(version, gate_fraction=0.15, stream_fraction=0.4, seed=0)
    np.testing.assert_array_equal(again.rows["pool"], rows["pool"])
    assert "train=" in repr(carved) and version.id in repr(carved)


def test_carve_refuses_fractions_that_leave_no_training_rows(digits):
    _, version, _ = digits
    with pytest.raises(ParameterError, match="stream_fraction"):
        stream.carve(version, gate_fraction=0.5, stream_fraction=0.5, seed=0)


@pytest.mark.parametrize("high", [16, 255])
def test_shifts_keep_shape_dtype_and_raw_range(digits, high):
    _, version, carved = digits
    x = carved.x_pool[:40]
    x = x if high == 16 else (x.astype(np.float64) * 255 / 16).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    shifted = {
        "rotate": stream.rotate(x, 30, high=high),
        "noise": stream.add_noise(x, 0.3, rng, high=high),
        "invert": stream.invert(x, high=high),
        "blur": stream.blur(x, 1.0, high=high),
    }
    for name, s in shifted.items():
        assert s.shape == x.shape and s.dtype == x.dtype, name
        assert s.min() >= 0 and s.max() <= high, name
        assert not np.array_equal(s, x), name
    assert shifted["noise"].max() == high  # 30 % noise reaches the clip
    np.testing.assert_array_equal(stream.rotate(x, 0, high=high), x)
    np.testing.assert_array_equal(stream.invert(shifted["invert"], high=high), x)
    assert stream.raw_range(version.transform) == (0.0, 16.0)


def test_a_small_rotation_keeps_the_ink_at_the_edges(digits):
    """mode="constant" would erase edge pixels on any turn (mean ink -12 % at 0.5°)."""
    x = digits[2].x_pool
    assert stream.rotate(x, 0.5, high=16).mean() == pytest.approx(x.mean(), rel=0.01)


def test_batches_are_unseen_distinct_rows_and_schedule_labels_them(digits):
    _, _, carved = digits
    drawn = stream.batches(carved.x_pool, carved.y_pool, n_batches=4, batch_size=50, seed=1)
    assert [b.index for b in drawn] == [1, 2, 3, 4] and not any(b.shifted for b in drawn)
    row_ids = np.arange(len(carved.y_pool))  # x = each row's own number: which rows came
    came = np.concatenate([b.x for b in stream.batches(row_ids, carved.y_pool, n_batches=4,
                                                       batch_size=50, seed=1)])  # fmt: skip
    assert len(np.unique(came)) == 200  # no row twice
    np.testing.assert_array_equal(drawn[1].y, carved.y_pool[came[50:100]])
    with pytest.raises(ParameterError, match="at most"):
        stream.batches(carved.x_pool, carved.y_pool, n_batches=50, batch_size=50, seed=0)
    arrived = stream.schedule(carved.x_pool, carved.y_pool, PLAN, batch_size=50, high=16, seed=1)
    assert [b.kind for b in arrived] == ["unshifted"] * 2 + ["rotated 30°"] * 2
    np.testing.assert_array_equal(arrived[0].x, drawn[0].x)  # same seed, same rows
    assert stream.describe(arrived) == "batches 1-2 unshifted, 3-4 rotated 30°"
    with pytest.raises(ParameterError, match="kind"):
        stream.shift(carved.x_pool, "shear", 3, high=16)


def test_a_training_version_keeps_val_test_and_the_fitted_transform(digits, grown):
    run_dir, version, carved = digits
    _, _, later, arrived = grown
    for split in ("val", "test"):
        for a, b in zip(later.split(split), version.split(split), strict=True):
            np.testing.assert_array_equal(a, b)
    assert later.transform.to_dict() == version.transform.to_dict()
    x, y = later.split("train")
    assert len(y) == len(carved.y_train) + 4 * 50
    np.testing.assert_array_equal(x[-50:], arrived[-1].x)
    lineage = later.manifest["parameters"]["derived_from"]
    assert lineage["version"] == version.id and lineage["initial_rows"] == len(carved.y_train)
    assert [b["kind"] for b in lineage["batches"]][-1] == "rotated 30°"
    assert later.manifest["notes"]["modality"] == "image"  # what card_for_version reads
    assert load_version(run_dir).id == later.id  # the current data version
    same = stream.save_training_version(
        run_dir, version, carved.x_train, carved.y_train, note="after 4", arrived=arrived
    )
    assert same.id == later.id  # content-hashed: saving it again reuses it
    with pytest.raises(DataError, match="uint8"):
        stream.save_training_version(
            run_dir, version, carved.x_train.astype(np.float32), carved.y_train, note="bad"
        )


def test_retrain_warm_starts_from_the_champion_and_scratch_from_the_spec(grown, tmp_path):
    card, champion, later, _ = grown
    before = weights_sha256(champion.model)
    # learning rate 1e-9: one epoch cannot move the weights, so they show where training began
    still = ONE_EPOCH.replace(learning_rate=1e-9)
    warm = retrain(champion.model, later, still, card=card, run_dir=tmp_path, verbose=0)
    scratch = retrain(
        champion.path,
        later,
        still,
        card=card,
        run_dir=tmp_path,
        warm_start=False,
        track=False,
        verbose=0,
        test=False,
    )
    assert weights_sha256(champion.model) == before  # the champion object is left unchanged
    for result, kind in ((warm, "warm"), (scratch, "scratch")):
        assert result.run_id.startswith(f"tiny-{kind}-")
        assert (result.path / "model.keras").is_file() and (result.path / "metrics.json").is_file()
        recorded = json.loads((result.path / RETRAIN_FILE).read_text())
        assert recorded["kind"] == kind and recorded["data_version"] == later.id
        assert recorded["champion_weights_sha256"] == before
    assert scratch.mlflow_run_id is None and scratch.metrics["test"] == {}  # test=False
    assert set(warm.metrics["test"]) == {"accuracy", "loss"}
    tags = mlflow_client().get_run(warm.mlflow_run_id).data.tags
    assert tags["retrain_kind"] == "warm" and tags["retrain_champion_weights_sha256"] == before
    assert json.loads((scratch.path / RETRAIN_FILE).read_text())["champion_run"] == champion.run_id
    start = champion.model.get_weights()
    near = [np.abs(a - b).max() for a, b in zip(warm.model.get_weights(), start, strict=True)]
    far = [np.abs(a - b).max() for a, b in zip(scratch.model.get_weights(), start, strict=True)]
    assert max(near) < 1e-5 < max(far)
    assert scratch.metrics["spec"] == TINY.to_dict()  # rebuilt from the champion run's spec


def test_run_ids_differ_by_start_and_repeat_for_the_same_call(grown):
    card, champion, later, _ = grown
    warm = {"kind": "warm", "champion_weights_sha256": "a"}
    ids = {
        retrain_run_id(champion.model, later, ONE_EPOCH, warm),
        retrain_run_id(champion.model, later, ONE_EPOCH, {**warm, "champion_weights_sha256": "b"}),
        retrain_run_id(TINY, later, ONE_EPOCH, {"kind": "scratch"}),
    }
    assert len(ids) == 3
    assert retrain_run_id(TINY, later, ONE_EPOCH, {"kind": "scratch"}) in ids
    with pytest.raises(ParameterError, match="model.keras"):
        retrain_module.load_champion(later.path)  # a data folder, not a training run
