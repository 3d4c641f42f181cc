"""From a trained amalgam to its pipeline: task inputs, heads fitted on train and validation
only, the assembled pipeline answering as the tasks' own functions do, and the AmalgamView.

The session's tiny amalgam (trained 2 epochs on the smoke digits) serves the module.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.amalgam import ood
from workbench.amalgam.assemble import (
    TASKS,
    assemble,
    encode,
    encode_splits,
    fit_heads,
    fit_pair_head,
    pair_head,
    task_data,
)
from workbench.amalgam.model import (
    REPRESENTATIONS,
    attribute_names,
    attribute_targets,
    representations,
)
from workbench.amalgam.pipeline import load_pipeline, read_config
from workbench.amalgam.tasks import (
    combine,
    fit_pair_classifier,
    fit_temperature,
    fit_thresholds,
    nearest,
    softmax,
)
from workbench.errors import DataError, ParameterError
from workbench.identify import ProblemCard


@pytest.fixture(scope="module")
def trained(tiny_amalgam):
    run, version, card, model = tiny_amalgam
    data = task_data(version, card, seed=0)
    reps = encode_splits(model, data)
    heads = fit_heads(reps, data.y, card)
    config = assemble(run / "amalgam", model, version, heads)
    return {"run": run, "version": version, "card": card, "model": model, "data": data,
            "reps": reps, "heads": heads, "config": config}  # fmt: skip


def test_task_data_holds_raw_and_transformed_splits_and_patches_as_bright_as_digits(trained):
    data, version = trained["data"], trained["version"]
    assert set(data.raw) == set(data.x) == {"train", "val", "test", "ood"}
    assert set(data.y) == {"train", "val", "test"}
    assert len(data.raw["ood"]) == len(data.y["test"])
    np.testing.assert_array_equal(data.raw["test"], version.split("test")[0])
    np.testing.assert_allclose(data.x["ood"], version.transform.apply(data.raw["ood"]))
    assert 0 <= data.raw["ood"].min() and data.raw["ood"].max() <= version.transform.scale
    brightness = ood.auroc(
        ood.mean_intensity(data.raw["test"]), ood.mean_intensity(data.raw["ood"])
    )
    assert abs(brightness - 0.5) < 0.1  # brightness alone cannot tell them apart


def test_task_data_refuses_a_card_that_is_not_an_image_classifier(trained):
    table = ProblemCard("tabular", "regression", 1, (5,))
    with pytest.raises(ParameterError, match="needs an image classification card"):
        task_data(trained["version"], table, seed=0)


def test_encode_batches_give_what_one_call_gives(trained):
    reps, x = representations(trained["model"]), trained["data"].x["test"][:300]
    whole, batched = encode(reps, x, batch=300), encode(reps, x, batch=64)
    assert list(whole) == list(REPRESENTATIONS)
    for name in REPRESENTATIONS:
        np.testing.assert_allclose(batched[name], whole[name], atol=1e-5)
    with pytest.raises(DataError, match="at least one input row"):
        encode(reps, x[:0])


def test_heads_are_fitted_on_train_and_validation_only(trained):
    reps, y, heads, card = trained["reps"], trained["data"].y, trained["heads"], trained["card"]
    assert set(heads) == set(TASKS)
    np.testing.assert_array_equal(heads["search"]["index"], reps["train"]["high_latent"])
    assert heads["classes"]["temperature"] == fit_temperature(reps["val"]["logits"], y["val"])
    expected = fit_thresholds(reps["val"]["attributes"], attribute_targets(card, y["val"]))
    np.testing.assert_array_equal(heads["tags"]["thresholds"], expected)
    scorer = ood.Mahalanobis(heads["ood"]["means"], heads["ood"]["precision"])
    passed = (scorer.score(reps["val"]["low_latent"]) <= heads["ood"]["threshold"]).mean()
    assert passed == pytest.approx(0.95, abs=0.01)  # the quantile of validation digits
    assert heads["ood"]["means"].shape == (10, reps["train"]["low_latent"].shape[1])


def test_a_validation_split_is_required(trained):
    reps, y = dict(trained["reps"]), dict(trained["data"].y)
    reps["val"] = {k: v[:0] for k, v in reps["val"].items()}
    y["val"] = y["val"][:0]
    with pytest.raises(DataError, match="never on test"):
        fit_heads(reps, y, trained["card"])


def test_the_assembled_pipeline_answers_as_the_task_functions(trained):
    config, data, reps, heads = (trained[k] for k in ("config", "data", "reps", "heads"))
    assert {t: e["input"] for t, e in read_config(config)["tasks"].items()} == {
        t: rep for t, (_, rep) in TASKS.items()
    }
    out = load_pipeline(config)({"images": data.raw["test"][:50]})
    test = {k: v[:50] for k, v in reps["test"].items()}
    probs = softmax(test["logits"], heads["classes"]["temperature"])
    np.testing.assert_allclose(out["probabilities"], probs, atol=1e-4)
    idx, _ = nearest(reps["train"]["high_latent"], test["high_latent"], 5)
    agree = (out["neighbor_labels"] == data.y["train"][idx]).mean()
    assert agree > 0.98  # ONNX vs Keras float noise may swap near-ties
    np.testing.assert_array_equal(out["tags"], test["attributes"] >= heads["tags"]["thresholds"])
    flagged = load_pipeline(config)({"images": data.raw["ood"]})["ood"].mean()
    assert out["ood"].mean() < 0.3 and flagged > out["ood"].mean()


def test_the_pair_head_says_same_for_one_image_twice(trained):
    z, y = trained["reps"]["train"]["low_latent"], trained["data"].y["train"]
    same = trained["heads"]["pair"]
    p = np.asarray(same.predict_on_batch({"a": z[:20], "b": z[:20]})["same"])
    assert p.shape == (20,) and p.mean() > 0.7
    scored = fit_pair_classifier(z, y, task="same")  # the classifier task 5 scores
    np.testing.assert_allclose(p, scored.predict_proba(combine(z[:20], z[:20]))[:, 1], atol=1e-4)
    total = fit_pair_head(z, y, task="sum", n_pairs=500)
    answer = np.asarray(total.predict_on_batch({"a": z[:30], "b": z[30:60]})["sum"])
    assert answer.shape == (30, 19)
    np.testing.assert_allclose(answer.sum(axis=1), 1.0, atol=1e-5)
    clf = fit_pair_classifier(z, y, task="sum", n_pairs=500)
    expected = clf.predict(combine(z[:30], z[30:60]))
    np.testing.assert_array_equal(answer.argmax(axis=1), expected)  # sums, not column numbers
    with pytest.raises(ParameterError, match="task"):
        pair_head(8, task="product")
    with pytest.raises(DataError, match="embeddings for"):
        fit_pair_head(z[:10], y[:9])


def test_amalgam_view_shows_every_task_for_the_picked_image(trained):
    from workbench.widgets.amalgam import AmalgamView

    data, card = trained["data"], trained["card"]
    view = AmalgamView(
        load_pipeline(trained["config"]),
        {"test digits": data.raw["test"], "photo patches": data.raw["ood"]},
        labels={"test digits": data.y["test"]},
        class_names=card.class_names,
        attribute_names=attribute_names(card),
    )
    first = dict(view.answers)
    assert {r["task"] for r in view.rows()} == {"classes", "search", "ood", "tags", "pair"}
    assert bytes(view._figure.value).startswith(b"\x89PNG")
    view.set(image=7)
    assert not np.array_equal(view.answers["probabilities"], first["probabilities"])
    view.set(other=7)
    assert view.answers["same"] > 0.5  # the image with itself
    flags = []
    for i in range(20):
        view.set(source="photo patches", image=i)
        flags.append(view.answers["ood"])
    assert np.mean(flags) > 0.5

    view.set(source="drawn by hand")  # the pad: nothing drawn yet, nothing answered
    assert view.answers == {} and "Draw a digit" in view._answers.value
    assert view.pad.widget.layout.display is None and view._figure.layout.display == "none"
    view.pad.draw([[(100, 25), (100, 175)]])  # a "1", drawn as a hand would
    drawn = view.images["drawn by hand"]
    assert drawn.shape == (1, *data.raw["test"].shape[1:]) and drawn.max() == pytest.approx(16)
    assert {r["task"] for r in view.rows()} == {"classes", "search", "ood", "tags", "pair"}
    assert view.pad.strokes == [[(100, 25), (100, 175)]]
    view.set(other=3)  # paired with the fourth test digit
    assert view._figure.layout.display is None and 0 <= view.answers["same"] <= 1
    view.pad.clear()
    assert view.answers == {} and "drawn by hand" not in view.images
    view.set(source="test digits")
    assert view.pad.widget.layout.display == "none" and view.answers
    view.close()
    with pytest.raises(ParameterError, match="at least one image per source"):
        AmalgamView(
            load_pipeline(trained["config"]),
            {"none": data.raw["test"][:0]},
            class_names=card.class_names,
            attribute_names=attribute_names(card),
        )
