"""Stage 1: the problem card derives the right head and refuses inconsistent problems."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from workbench import identify as identify_module
from workbench.errors import SpecError
from workbench.identify import (
    DEFAULT_SPLIT,
    ProblemCard,
    compute_baseline,
    identify,
    load_card,
    save_card,
)

DIGITS = [str(i) for i in range(10)]


def card(**kw) -> ProblemCard:
    base = dict(modality="image", task="multiclass", num_outputs=10, input_shape=(8, 8, 1))
    return ProblemCard(**{**base, **kw})


@pytest.mark.parametrize(
    "task, n, units, activation, loss",
    [
        ("binary", 2, 1, "sigmoid", "binary_crossentropy"),
        ("multiclass", 10, 10, "softmax", "sparse_categorical_crossentropy"),
        ("multilabel", 4, 4, "sigmoid", "binary_crossentropy"),
        ("regression", 1, 1, "linear", "mean_squared_error"),
    ],
)
def test_head_follows_task(task, n, units, activation, loss):
    h = card(task=task, num_outputs=n).head
    assert (h.units, h.activation, h.loss) == (units, activation, loss)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(task="binary", num_outputs=5), "a binary task has exactly 2 classes, got 5"),
        (
            dict(task="binary", num_outputs=2, class_names=list("abcde")),
            "a binary task has exactly 2 classes, got 5",
        ),
        (dict(task="multilabel", num_outputs=4, activation="softmax"), "expected 'sigmoid'"),
        (
            dict(task="regression", num_outputs=1, class_names=["a"]),
            "a regression task predicts numbers and has no class names",
        ),
        (dict(modality="audio"), "unknown modality 'audio'; expected one of ['image', 'tabular']"),
        (dict(task="ranking"), "unknown task 'ranking'"),
        (dict(num_outputs=0), "num_outputs must be a positive integer, got 0"),
        (dict(input_shape=(8, 8)), "an image input_shape is (height, width, channels)"),
        (dict(modality="tabular", input_shape=(4, 4)), "a tabular input_shape is (n_features,)"),
        (dict(num_outputs=2), "a multiclass task needs at least 3 classes, got 2"),
        (dict(class_names=["a", "b", "c"]), "3 class names for num_outputs=10"),
    ],
)
def test_inconsistent_cards_raise(kw, message):
    with pytest.raises(SpecError) as e:
        card(**kw)
    assert message in str(e.value)


def test_identify_counts_outputs_and_baseline():
    y = np.array([0, 1, 2, 2, 2, 1, 0, 2, 3, 4])
    c = identify(y, modality="image", task="multiclass", input_shape=(8, 8, 1), dataset="toy")
    assert c.num_outputs == 5
    assert c.baseline["metric"] == "accuracy"
    assert c.baseline["value"] == pytest.approx(0.4)
    assert "always predicting class '2'" in c.baseline["description"]
    assert "Baseline to beat" in c.reasoning() and "softmax" in repr(c)


def test_baselines_for_every_task():
    ml = np.array([[1, 0], [1, 1], [1, 0], [0, 0]])
    assert compute_baseline("multilabel", ml)["value"] == pytest.approx((0.75 + 0.75) / 2)
    reg = compute_baseline("regression", np.array([1.0, 2.0, 3.0]))
    assert reg["value"] == pytest.approx(2 / 3, abs=1e-4) and reg["mse"] == pytest.approx(
        2 / 3, abs=1e-4
    )
    with pytest.raises(SpecError, match="got no labels"):
        compute_baseline("multiclass", np.array([]))


def test_majority_baseline_is_learned_on_train_and_scored_on_test():
    y_train = np.array([0, 0, 0, 1, 1])  # train's majority: 0
    y_test = np.array([1, 1, 1, 0])
    overall = np.concatenate([y_train, y_test])  # overall majority: 1 (5 of 9)
    assert compute_baseline("multiclass", overall)["predictor"] == "majority class '1'"
    c = identify(overall, modality="tabular", task="binary", input_shape=(3,),
                 class_names=["no", "yes"], y_train=y_train, y_test=y_test)  # fmt: skip
    assert c.baseline["value"] == pytest.approx(0.25)  # class 0 is right on 1 of 4 test labels
    assert c.baseline["description"] == (
        "always predicting class 'no', the majority in the training split, scores accuracy "
        "0.250 on the test split"
    )
    with pytest.raises(SpecError, match="expected both y_train and y_test"):
        identify(overall, modality="tabular", task="binary", input_shape=(3,), y_train=y_train)
    with pytest.raises(SpecError, match="got no test labels"):
        compute_baseline("binary", y_train, np.array([], int))


def test_multilabel_baseline_is_each_labels_training_majority_on_test():
    y_train = np.array([[1, 0], [1, 0], [0, 1]])  # majorities: label 0 yes, label 1 no
    y_test = np.array([[0, 1], [1, 1]])
    b = compute_baseline("multilabel", y_train, y_test)
    assert b["value"] == pytest.approx((0.5 + 0.0) / 2)
    assert "majority in the training split" in b["description"] and "test split" in b["description"]


def test_regression_baseline_uses_the_median_for_mae_and_the_mean_for_mse():
    y_train = np.array([1.0, 2.0, 3.0, 10.0])  # median 2.5, mean 4.0
    y_test = np.array([2.0, 4.0])
    b = compute_baseline("regression", y_train, y_test)
    assert b["metric"] == "mae" and b["value"] == pytest.approx((0.5 + 1.5) / 2)
    assert b["mse"] == pytest.approx((4.0 + 0.0) / 2)
    assert "median (which minimises MAE) scores MAE 1.000 on the test split" in b["description"]
    assert "mean (which minimises MSE) scores MSE 2.000" in b["description"]


def test_identify_does_not_import_data_engineering():
    tree = ast.parse(Path(identify_module.__file__).read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and m.startswith("workbench.data")]


def test_identify_refuses_wrong_label_shapes():
    with pytest.raises(SpecError, match="For independent labels use task='multilabel'"):
        identify(np.zeros((5, 3)), modality="image", task="multiclass", input_shape=(8, 8, 1))
    with pytest.raises(SpecError, match="multilabel targets are a 0/1 matrix"):
        identify(np.zeros(5), modality="image", task="multilabel", input_shape=(8, 8, 1))


def test_card_round_trip_and_index(tmp_path):
    c_train, c_test = np.arange(8) % 10, np.arange(8, 10)
    c = identify(
        np.arange(10) % 10,
        modality="image",
        task="multiclass",
        input_shape=(8, 8, 1),
        class_names=DIGITS,
        dataset="digits",
    )
    c = c.with_split({"seed": 3, "val_fraction": 0.25, "test_fraction": 0.5}, c_train, c_test)
    path = save_card(c, tmp_path)
    assert path == tmp_path / "problem" / "card.json"
    assert json.loads(path.read_text())["split"] == {
        "seed": 3,
        "val_fraction": 0.25,
        "test_fraction": 0.5,
    }
    loaded = load_card(tmp_path)
    assert loaded == c and loaded.baseline == c.baseline and loaded.split == c.split
    assert "split:       seed 3, validation 0.25, test 0.5" in repr(loaded)
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["identify"].startswith("card-")


def test_an_old_card_without_a_split_loads_with_the_default_split(tmp_path):
    old = {"modality": "image", "task": "multiclass", "num_outputs": 10,
           "input_shape": [8, 8, 1], "dataset": "digits"}  # fmt: skip
    (tmp_path / "problem").mkdir()
    (tmp_path / "problem" / "card.json").write_text(json.dumps(old))
    assert (
        load_card(tmp_path).split
        == DEFAULT_SPLIT
        == {
            "seed": 0,
            "val_fraction": 0.1,
            "test_fraction": 0.2,
        }
    )


@pytest.mark.parametrize(
    "split, message",
    [
        ({"seed": 0}, "expected a dict with keys ['seed', 'val_fraction', 'test_fraction']"),
        ({"seed": -1, "val_fraction": 0.1, "test_fraction": 0.2}, "seed must be 0 or a positive"),
        ({"seed": 0, "val_fraction": 0.95, "test_fraction": 0.0}, "val_fraction must be in"),
        ({"seed": 0, "val_fraction": 0.5, "test_fraction": 0.5}, "must be below 1"),
    ],
)
def test_a_bad_split_is_refused(split, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        card(split=split)


def test_load_card_refuses_bad_files(tmp_path):
    with pytest.raises(SpecError, match="No problem card at .*run notebook 01_identify"):
        load_card(tmp_path)
    (tmp_path / "problem").mkdir()
    (tmp_path / "problem" / "card.json").write_text("{not json")
    with pytest.raises(SpecError, match="is not valid JSON"):
        load_card(tmp_path)
    (tmp_path / "problem" / "card.json").write_text(json.dumps({"modality": "image", "colour": 1}))
    with pytest.raises(SpecError, match=r"unknown field\(s\) \['colour'\]"):
        load_card(tmp_path)
    (tmp_path / "problem" / "card.json").write_text(json.dumps({"modality": "image"}))
    with pytest.raises(SpecError, match="missing field"):
        load_card(tmp_path)


def test_beats_baseline_knows_which_way_is_better():
    acc = identify(
        np.array([0, 0, 1, 2]), modality="image", task="multiclass", input_shape=(8, 8, 1)
    )
    assert acc.beats_baseline(0.6) and not acc.beats_baseline(0.5)
    reg = identify(np.array([1.0, 3.0]), modality="tabular", task="regression", input_shape=(2,))
    assert reg.beats_baseline(0.5) and not reg.beats_baseline(1.5)
    with pytest.raises(SpecError, match="no baseline"):
        card().beats_baseline(0.9)
