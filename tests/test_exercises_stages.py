"""Exercises of notebooks 00 and 02-07: references accepted, typical mistakes explained."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from workbench import exercises
from workbench.data import analyze, augmentation
from workbench.design import Group, preset, summarize
from workbench.exercises import amalgam, data, deploy, design, overview, production, train

MODULES = (overview, design, data, train, deploy, production, amalgam)
ALL = [ex for module in MODULES for ex in module.EXERCISES]


def test_modules_are_registered_in_pipeline_order():
    assert exercises.STAGE_MODULES == (
        "overview",
        "identify",
        "design",
        "data",
        "train",
        "deploy",
        "production",
        "amalgam",
    )
    ids = "0.1 0.2 0.3 2.1 2.2 2.4 3.1 3.2 3.3 4.1 4.2 4.3 5.1 5.2 6.1 6.2 7.1 7.2"
    assert [ex.id for ex in ALL] == ids.split()
    assert all(module.NOTES.startswith("- **") for module in MODULES)


@pytest.mark.parametrize("exercise", ALL, ids=lambda e: e.id)
def test_solution_accepted_and_unanswered_is_your_turn(exercise):
    fb = exercise.check(exercise.solution)
    assert fb.ok, fb
    for unanswered in (..., None):
        fb = exercise.check(unanswered)
        assert (fb.ok, fb.answered) == (False, False)
        assert "Your turn" in fb.message and exercise.prompt in fb.message


WRONG_TYPES = [
    (overview.RERUN, "identify", "Expected the stage each change starts at: a dict like"),
    (overview.LEAKAGE_STEP, 3, "Expected a step of the data stage: a name such as 'extraction'"),
    (overview.REPRESENTATION, ["logits"], "Expected a representation per task: a dict like"),
    (design.BUDGET_EXERCISE, "spec", "Expected a ModelSpec (e.g. spec.scaled(0.5)), got 'spec'"),
    (design.CONV_MACS_EXERCISE, "294,912", "which is text. Write the number without quotes."),
    (design.BLOCK_TYPE, 2, "Expected a block type: a name such as 'conv', got 2 (int)."),
    (data.LEAKAGE, "6", "Expected the number of leaked test samples (or their indices), got '6'"),
    (data.LEAKY_PRACTICES, ["a", "c"], "Expected True or False per practice: a dict like"),
    (data.AUGMENTATION, "shear", "Expected an augmentation, one of ['small rotation'"),
    (train.THRESHOLD, 1.5, "Expected a threshold in [0, 1], got 1.5."),
    (amalgam.SUMS_ABOVE_ONE, [True], "Expected True or False per output: a dict like"),
    (amalgam.TEMPERATURE, 1.0, "Expected one of ['higher', 'lower', 'the same']"),
    (
        train.CURVES,
        "overfitting",
        "Expected the reading of the curves as (diagnosis, epoch): a tuple of 2 items",
    ),
    (train.MOMENTUM, "0.9", "Expected a momentum, got '0.9' (str), which is text."),
]


@pytest.mark.parametrize(
    "exercise, answer, message", WRONG_TYPES, ids=[w[0].id for w in WRONG_TYPES]
)
def test_wrong_types_say_what_was_expected(exercise, answer, message):
    fb = exercise.check(answer)
    assert not fb.ok and fb.answered and message in fb.message, fb


def _wrong(exercise, answer, *texts):
    fb = exercise.check(answer)
    assert not fb.ok and fb.answered, fb
    assert "Hint: " in fb.message
    for text in texts:
        assert text in fb.message, fb
    return fb


# ---- 0 overview ----------------------------------------------------------------------------


def test_rerun_reference_is_the_stage_that_writes_the_changed_artifact():
    assert overview.RERUN.solution == {"a": "identify", "b": "design", "c": "data", "d": "train"}
    fb = overview.RERUN.check(
        {"a": "Identify the type of model", "b": "02_design", "c": "prepare", "d": "training"}
    )
    assert fb.ok and "every stage after it that reads its" in fb.message


@pytest.mark.parametrize(
    "answer, texts",
    [
        (
            {"a": "design", "b": "design", "c": "data", "d": "train"},
            [
                "3 of 4 right.",
                "(a) not 'design': starting at stage 2 (design) keeps the old problem card: "
                "stage 1 (identify) writes it and must run again first.",
                "task multilabel, a head of four sigmoids",
                "What's right: (b), (c), (d).",
            ],
        ),
        (
            {"a": "identify", "b": "train", "c": "design", "d": "deploy"},
            [
                "1 of 4 right.",
                "(b) not 'train': starting at stage 4 (train) keeps the old model spec",
                "(c) not 'design': starting at stage 2 (design) redoes work for nothing: the "
                "model spec stays the same.",
                "(d) not 'deploy': starting at stage 5 (deploy) keeps the old trained model",
            ],
        ),
        (
            {"a": "identify", "b": "identify", "c": "identify", "d": "identify"},
            [
                "1 of 4 right.",
                "(c) not 'identify': starting at stage 1 (identify) redoes work for nothing: the "
                "problem card stays the same.",
                "What's right: (a).",
            ],
        ),
    ],
)
def test_rerun_mistakes(answer, texts):
    _wrong(overview.RERUN, answer, *texts, "Ask which artifact the change alters")


def test_leakage_step_is_where_analyze_lives():
    assert overview.LEAKAGE_STEP.solution == "analysis" == analyze.__module__.split(".")[-1]
    assert overview.LEAKAGE_STEP.check("Analyze").ok
    _wrong(overview.LEAKAGE_STEP, "split", "Transformation makes the split (stratified_split)")
    _wrong(overview.LEAKAGE_STEP, "management", "content hash identifies the whole data set")
    _wrong(overview.LEAKAGE_STEP, "serving", "by then the split is fixed")


def test_representation_accepts_the_layer_names_of_figure_3():
    answer = {"a": "embedding", "b": "attribute head", "c": "logits"}
    assert overview.REPRESENTATION.check(answer).ok
    assert overview.REPRESENTATION.check({"a": "Embedding", "b": "sigmoid", "c": "logits"}).ok
    assert overview.REPRESENTATION.check({"a": "low-dimensional", "b": "independent probabilities",
                                          "c": "pre-activation"}).ok  # fmt: skip
    fb = _wrong(
        overview.REPRESENTATION,
        {"a": "encoding", "b": "logits", "c": "logits"},
        "1 of 3 right.",
        "(a) not 'high-dimensional latent space': the encoding is the largest vector",
        "(b) not 'pre-activation logits': logits are unbounded scores of the ten classes",
        "What's right: (c).",
    )
    assert "(c) not" not in fb.message
    _wrong(
        overview.REPRESENTATION,
        {"a": "post-activation", "b": "low-dimensional", "c": "embedding"},
        "0 of 3 right.",
        "(a) not 'post-activation independent probabilities': the attribute head answers four",
        "The task needs scores that can be added up before a single softmax.",
    )


def test_probabilities_is_the_softmax_class_head_not_the_attribute_head():
    """The layer `probabilities` of the digits' models is the softmax over exclusive classes."""
    fb = _wrong(
        overview.REPRESENTATION,
        {"a": "embedding", "b": "probabilities", "c": "Softmax"},
        "1 of 3 right.",
        "(b) not 'probabilities': in the digits' models (a multiclass card) the layer "
        "'probabilities' is the class head's softmax on the logits: one conditional "
        "distribution P(class | x) over ten mutually exclusive classes, summing to 1",
        "the attributes need the attribute head, one sigmoid per attribute",
        "(c) not 'Softmax':",
        "combine the logits before the softmax",
    )
    assert "calibrated" not in fb.message
    assert "calibrated" not in overview.REPRESENTATION.prompt


# ---- 2 design ------------------------------------------------------------------------------


def test_budget_reference_is_under_budget_with_the_same_output():
    assert design.COMPACT_SUMMARY.params == 99_178
    summary = summarize(design.BUDGET_EXERCISE.solution, design.CARD)
    assert summary.params < design.BUDGET
    assert summary.rows[-1].output_shape == (10,)
    fb = design.BUDGET_EXERCISE.check(design.BUDGET_EXERCISE.solution)
    assert "34,170 parameters (the compact preset has 99,178: 34% of it)" in fb.message


def test_budget_mistakes():
    compact = preset("compact", design.CARD)
    _wrong(
        design.BUDGET_EXERCISE,
        compact,
        "99,178 parameters, not under 50,000: remove at least 49,179.",
        "This is the compact preset unchanged. Most of them sit in the learner (55,424).",
        "What's right: the spec builds, and its output has shape (10,)",
        "spec.scaled(0.5)",
    )
    _wrong(
        design.BUDGET_EXERCISE,
        compact.with_blocks(1),
        "62,250 parameters",
        "Most of them sit in the task (34,186).",
        "embedding_units=32",
    )
    too_deep = compact.replace(groups=(Group(64, 1, "conv", "pool"),) * 4)
    _wrong(
        design.BUDGET_EXERCISE,
        too_deep,
        "This spec cannot be built for the (8, 8, 1) digits: Group 4 (filters=64): spatial size "
        "would shrink to 0x0",
    )
    fb = design.BUDGET_EXERCISE.check(summarize(compact, design.CARD))
    assert "Expected a ModelSpec, got the Summary of one." in fb.message


def test_conv_macs_reference_is_the_plan_row_and_the_formula():
    assert design.CONV_MACS_EXERCISE.solution == 4 * 4 * 64 * 3 * 3 * 32 == 294_912
    assert "turns a 4x4x32 feature map into 64 channels" in design.CONV_MACS_EXERCISE.prompt
    assert design.CONV_MACS_EXERCISE.check(294_912.0).ok


@pytest.mark.parametrize(
    "answer, problem, hint",
    [
        (4 * 4 * 64 * 3 * 3, "You left out the input channels.", "all 32 input channels"),
        (4 * 4 * 64 * 32, "You left out the kernel size.", "a 3x3 window"),
        (18_432, "18,432 is the number of weights", "multiply by 4x4"),
        (18_496, "18,496 is the number of parameters", "multiply the weights by 4x4"),
        (589_824, "589,824 counts FLOPs: one multiply and one add each", "once"),
        (73_728, "output size of 'valid' padding (2x2)", "'same' padding keeps the 4x4 size"),
        (1_000, "1,000 is not the number of multiply-adds.", "Count the output values"),
    ],
)
def test_conv_macs_mistakes(answer, problem, hint):
    fb = _wrong(design.CONV_MACS_EXERCISE, answer, problem)
    assert hint in fb.message.split("Hint: ")[1]


def test_cheapest_block_is_derived_from_the_plans():
    assert design.BLOCK_TYPE.solution == "separable"
    assert design.BLOCK_MACS == {"conv": 1_179_648, "residual": 3_014_656, "separable": 147_200}
    assert design.BLOCK_TYPE.check("depthwise-separable").ok
    _wrong(design.BLOCK_TYPE, "conv", "'conv' costs 1,179,648 learner MACs", "8.0 x the cheapest")
    _wrong(design.BLOCK_TYPE, "ResNet", "'residual' costs 3,014,656", "1x1 projection")


# ---- 3 data --------------------------------------------------------------------------------


def test_planted_split_leaks_what_analyze_finds():
    x, y, splits = data.planted_split()
    report = analyze(x, y, splits=splits)
    assert report.leakage == {"train/val": 2, "train/test": data.N_LEAKED, "val/test": 0}
    assert report.n_duplicates == data.N_LEAKED + data.N_VAL_LEAKED + data.N_TRAIN_COPIES
    assert x.shape == (data.N_SAMPLES, 8, 8) and sum(map(len, splits.values())) == len(y)
    x[:] = 0  # the caller's copy: the exercise's own data stay intact
    assert data.LEAKAGE.check(data.N_LEAKED).ok
    x1, _, _ = data.planted_split(seed=1)
    assert not np.array_equal(x1, data.planted_split()[0])


def test_leakage_accepts_the_test_indices():
    x, _, splits = data.planted_split()
    train = {x[i].tobytes() for i in splits["train"]}
    leaked = [int(i) for i in splits["test"] if x[i].tobytes() in train]
    assert len(leaked) == data.N_LEAKED
    assert data.LEAKAGE.check(leaked).ok and data.LEAKAGE.check(np.array(leaked)).ok
    some_train = int(splits["train"][0])
    _wrong(
        data.LEAKAGE,
        [some_train, *leaked[:4]],
        "You found 4 of the 6 leaked test samples.",
        f"[{some_train}] are training indices: list the test copies",
        "2 leaked test sample(s) are missing.",
    )


@pytest.mark.parametrize(
    "answer, problem",
    [
        (11, "11 is report.n_duplicates"),
        (8, "8 adds the copies in validation (2) to those in test."),
        (2, "2 is the leakage from train into validation"),
        (0, "analyze finds no leakage when it does not know the splits"),
        (5, "5 is not the number of leaked test samples."),
    ],
)
def test_leakage_mistakes(answer, problem):
    fb = _wrong(data.LEAKAGE, answer, problem)
    assert "analyze(x, y, splits=splits)" in fb.message.split("Hint: ")[1]


def test_leaky_practices_are_scaling_on_all_samples_and_tuning_on_test():
    assert data.LEAKY_PRACTICES.solution == {"a": True, "b": False, "c": True, "d": False,
                                             "e": False}  # fmt: skip
    fb = data.LEAKY_PRACTICES.check({"a": "yes", "b": "no", "c": True, "d": False, "e": "no"})
    assert fb.ok and "the test split is only measured, once" in fb.message
    fb = _wrong(
        data.LEAKY_PRACTICES,
        {"a": False, "b": True, "c": True, "d": False, "e": True},
        "2 of 5 right.",
        "(a) does not leak? No: the statistics are computed with the test samples in them",
        "(b) leaks? No: dropping copies learns nothing from the test samples",
        "(e) leaks? No: choosing settings such as the epoch is what the validation split is for",
        "What's right: (c), (d).",
    )
    assert "(c)" not in fb.message.split("\n")[0]
    _wrong(
        data.LEAKY_PRACTICES,
        {"a": True, "b": False, "c": False, "d": False, "e": False},
        "(c) does not leak? No: choosing a setting by its test score tunes the pipeline",
    )


def test_leaky_practices_wrong_forms():
    fb = data.LEAKY_PRACTICES.check({"a": True, "b": False})
    assert not fb.ok and "missing ['c', 'd', 'e']" in fb.message
    fb = data.LEAKY_PRACTICES.check({"a": 1, "b": False, "c": True, "d": False, "e": False})
    assert not fb.ok and "Expected True or False for practice 'a', got 1 (int)." in fb.message


def test_the_wrong_augmentation_is_not_one_augmentation_offers():
    assert data.AUGMENTATION.solution == "horizontal flip"
    offered = inspect.signature(augmentation).parameters
    assert "flip" not in " ".join(offered) and {"rotation", "translation", "zoom"} <= set(offered)
    assert data.AUGMENTATION.check("mirror").ok
    _wrong(data.AUGMENTATION, "rotation", "'small rotation' is safe for digits")
    _wrong(data.AUGMENTATION, "zoom", "'zoom' is safe for digits", "which one gives something")
    _wrong(data.AUGMENTATION, "noise", "'pixel noise' is safe for digits")
    _wrong(data.AUGMENTATION, "brightness", "a lighter or darker stroke is still the same digit")


# ---- 4 train -------------------------------------------------------------------------------


def test_threshold_curve_is_seeded_plain_data():
    curve = train.threshold_curve()
    assert set(curve) == {"threshold", "precision", "recall", "f1"}
    assert len(curve["threshold"]) == len(curve["f1"]) == 19
    assert np.array_equal(curve["f1"], train.threshold_curve(0)["f1"])
    assert not np.array_equal(curve["f1"], train.threshold_curve(1)["f1"])
    p, r, f1 = curve["precision"], curve["recall"], curve["f1"]
    assert np.allclose(f1, 2 * p * r / (p + r))
    assert train.THRESHOLD.solution == curve["threshold"][np.argmax(f1)] == 0.25


def test_threshold_accepts_any_near_best_f1():
    curve = train.threshold_curve()
    good = curve["threshold"][curve["f1"] >= curve["f1"].max() - train.F1_TOLERANCE]
    assert len(good) >= 2
    for t in good:
        assert train.THRESHOLD.check(float(t)).ok


@pytest.mark.parametrize(
    "answer, problem, hint",
    [
        (0.5, "At 0.5: precision 0.65, recall 0.44, F1 0.523", "Lower the threshold"),
        (0.05, "0.127 below the best F1 (0.612)", "Raise the threshold"),
        (0.9, "F1 0.101", "low recall"),
        (0.612, "0.612 is the best F1 on the curve, not the threshold", "F1 curve peaks"),
    ],
)
def test_threshold_mistakes(answer, problem, hint):
    fb = _wrong(train.THRESHOLD, answer, problem)
    assert hint in fb.message.split("Hint: ")[1]
    assert ("0.5 is only the default" in fb.message) == (answer == 0.5)


def test_curves_reference_is_the_lowest_val_loss():
    assert train.CURVES.solution == ("overfitting", 6)
    fb = train.CURVES.check({"diagnosis": "overfit", "epoch": 6.0})
    assert fb.ok
    # the selection rule keeps the best epoch; early stopping only stops the run
    assert "it selects the epoch with the lowest val_loss (kept as best.keras)" in fb.message
    assert "Early stopping (patience) only ends the run sooner" in fb.message


@pytest.mark.parametrize(
    "answer, texts",
    [
        (("overfitting", 5), ["Epoch 5 is one early: Keras counts epochs from 1", "What's right:"]),
        (("good fit", 12), ["val_loss rises from epoch 7 on", "Epoch 12 has the lowest training"]),
        (("underfitting", 6), ["Underfitting shows as a training loss that stays high"]),
        (("overfitting", 3), ["At epoch 3 val_loss is 0.9; it gets lower elsewhere."]),
    ],
)
def test_curves_mistakes(answer, texts):
    _wrong(train.CURVES, answer, *texts, "Judge by the validation loss")


def test_momentum_reference_is_the_spec_default():
    assert train.MOMENTUM.solution == 0.9
    assert math.isclose(0.99**55, 0.58, abs_tol=0.005) and 0.9**55 < 0.0031
    assert math.isclose(0.99**500, 0.0066, abs_tol=0.0001)
    assert "trained for one epoch and then tested" in train.MOMENTUM.prompt
    fb = train.MOMENTUM.check(np.float32(0.9))
    assert fb.ok and "0.9**55 = 0.003" in fb.message and "With 0.99, 58%" in fb.message
    # the collapse is a short-run effect, stated as one
    assert "short-run effect: after a few hundred steps 0.99 works as well" in fb.message
    assert "0.99**500 = 0.007 of the start values left" in fb.message


@pytest.mark.parametrize(
    "answer, problem",
    [
        (0.99, "0.99**55 = 0.58: after one epoch 58% of the moving statistics"),
        (0.99, "after a few hundred steps 0.99 works too (0.99**500 = 0.007)"),
        (0.1, "0.1 is the weight of the NEW batch statistics, PyTorch's convention."),
        (0.5, "0.5 is not one of the choices [0.99, 0.9]"),
    ],
)
def test_momentum_mistakes(answer, problem):
    _wrong(train.MOMENTUM, answer, problem)


def test_amalgam_mistakes_are_explained():
    fb = amalgam.SUMS_ABOVE_ONE.check({"a": False, "b": False, "c": False})
    assert not fb.ok and "each is its own sigmoid" in fb.message
    fb = amalgam.TEMPERATURE.check("higher")
    assert not fb.ok and "Dividing by a positive number never changes" in fb.message
    fb = amalgam.FLAGGED.check(0.1, observed=0.9)
    assert not fb.ok and "one point on that curve" in fb.message
