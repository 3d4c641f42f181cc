"""Drift detection: rotated digits are flagged, unshifted ones are not, and the false-alarm
count over seeded unshifted batches agrees with the documented rate (Holm, alpha 0.05)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY, card_for_version

from workbench.data import prepare
from workbench.deploy import drift, stream
from workbench.errors import DataError, ParameterError
from workbench.train import TrainConfig, train


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A model trained on the carved training rows; the detector's reference is the validation
    split (not trained on); the stream pool supplies unseen batches."""
    run_dir = tmp_path_factory.mktemp("drift-digits")
    version = prepare("digits", run_dir=run_dir)
    carved = stream.carve(version, gate_fraction=0.15, stream_fraction=0.4, seed=0)
    day0 = stream.save_training_version(
        run_dir, version, carved.x_train, carved.y_train, note="day 0"
    )
    config = TrainConfig(epochs=2, batch_size=32, learning_rate=1e-2)
    card = card_for_version(day0)
    result = train(TINY, day0, config, card=card, run_dir=run_dir, track=False, verbose=0)
    detector = drift.fit_detector(result.model, version.split("val")[0], version.transform)
    return version, carved, result.model, detector


def pool_batch(carved, seed: int, size: int = 80) -> np.ndarray:
    (batch,) = stream.batches(carved.x_pool, carved.y_pool, n_batches=1, batch_size=size, seed=seed)
    return batch.x


def test_a_rotated_batch_is_flagged_and_an_unshifted_one_is_not(setup):
    _, carved, _, detector = setup
    x = pool_batch(carved, seed=0)
    calm = detector.test(x)
    rotated = detector.test(stream.rotate(x, 30, high=16))
    assert not calm.drift and rotated.drift
    assert calm.reason.startswith(f"no drift: 0 of {len(detector.names)} features differ (Holm")
    assert rotated.reason.startswith("drift: ") and ", p=" in rotated.reason
    hits = sum(f.drifted for f in rotated.features)
    assert f"{hits} of {len(detector.names)} features differ (Holm, alpha 0.05)" in rotated.reason
    # effect size: the rotated batch lies further from the reference on average
    distance = [np.mean([f.distance for f in r.features]) for r in (calm, rotated)]
    assert distance[1] > 2 * distance[0]
    assert [r["feature"] for r in rotated.rows()] == detector.names
    assert {r["differs"] for r in rotated.rows()} == {"yes", ""}


def test_false_alarms_over_seeded_unshifted_batches_agree_with_holm_alpha(setup):
    """Holm keeps the chance that an unshifted batch is flagged at or below 5 %: about 1 of
    20 expected. The draws are seeded, so the count is the same on every run; the bound 4 would
    be exceeded with probability < 2 % even by independent batches at exactly 5 % (binomial),
    so it only fails if the detector's rate is wrong, not by chance."""
    _, carved, _, detector = setup
    flagged = [detector.test(pool_batch(carved, seed=100 + k)).drift for k in range(20)]
    assert sum(flagged) <= 4
    shifted = [detector.test(stream.rotate(pool_batch(carved, 100 + k), 30, high=16)).drift
               for k in range(5)]  # fmt: skip
    assert all(shifted)


def test_holm_adjusts_like_the_textbook():
    # p sorted: 0.01 * 4, 0.02 * 3, 0.03 * 2, 0.5 * 1 -> running max, capped at 1
    adjusted = drift.holm(np.array([0.03, 0.01, 0.5, 0.02]))
    np.testing.assert_allclose(adjusted, [0.06, 0.04, 0.5, 0.06])
    np.testing.assert_allclose(drift.holm(np.array([0.9, 0.8])), [1.0, 1.0])


def test_features_are_continuous_statistics_and_embedding_components(setup):
    version, carved, model, detector = setup
    x = pool_batch(carved, seed=1)
    stats = drift.input_statistics(x, 16)
    assert stats.shape == (80, 4) and (stats[:, 0] <= 1).all()
    assert (stats[:, 1:3] >= 0).all() and (stats[:, 1:3] <= 7).all()  # centre within 8x8
    features = detector.features(x)
    assert features.shape == (80, len(detector.names))
    # few ties: projections over all pixels take (nearly) as many values as there are images
    assert len(np.unique(features[:, 4])) >= 75
    assert drift.embedding_layer(model) == "encoding"  # TINY has no embedding layer
    emb = drift.embeddings(model, version.transform.apply(x))
    assert emb.shape == (80, model.get_layer("encoding").output.shape[-1])
    assert "Holm at alpha 0.05" in repr(detector)


def test_bad_inputs_are_refused(setup):
    version, carved, model, detector = setup
    with pytest.raises(DataError, match="shape"):
        detector.test(np.zeros((10, 28, 28, 1), np.uint8))
    with pytest.raises(DataError, match="at least 2"):
        detector.test(carved.x_pool[:1])
    with pytest.raises(DataError, match="at least 10"):
        drift.fit_detector(model, carved.x_gate[:5], version.transform)
    with pytest.raises(ParameterError, match="layer"):
        drift.embeddings(model, version.transform.apply(carved.x_gate[:4]), layer="logits")
