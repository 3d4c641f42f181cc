"""Notebook 00 exercises: where a change starts, where leakage is caught, which output to reuse,
and an experiment on what a random split does to duplicated data.

The reference solutions come from `workbench.stages` (the stages, the data stage's steps, the
amalgamation's representations and the layers behind them) and `workbench.data.analyze` (the
step that finds leakage, and the count the experiment reads).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench import params
from workbench.data import analyze, load_source, stratified_split
from workbench.exercises.base import (
    Exercise,
    Experiment,
    Feedback,
    expect_choice,
    expect_mapping,
)
from workbench.identify import DEFAULT_SPLIT
from workbench.stages import REPRESENTATION_LAYERS, REPRESENTATIONS, STAGES, stage

# ---- 0.1 where a change starts -------------------------------------------------------------

ORDER = tuple(s.key for s in sorted(STAGES, key=lambda s: s.number))
_STAGE_ALIASES = {
    **{s.title: s.key for s in STAGES},
    **{s.notebook: s.key for s in STAGES},
    **{s.module: s.key for s in STAGES},
    "identification": "identify",
    "model design": "design",
    "prepare": "data",
    "data preparation": "data",
    "data engineering": "data",
    "training": "train",
    "deployment": "deploy",
}
ARTIFACTS = {  # what each stage writes into the run directory for the next ones
    "identify": "problem card",
    "design": "model spec",
    "data": "data set version",
    "train": "trained model",
}
CHANGES: dict[str, tuple[str, str, str]] = {  # key -> (change, owning stage, why it is there)
    "a": (
        "Predict the digits' four yes/no attributes (even, > 4, closed loop, prime) instead of "
        "the digit itself.",
        "identify",
        "the task changes from one of ten classes to four independent labels, so the problem "
        "card changes: task multilabel, a head of four sigmoids with binary cross-entropy, new "
        "metrics and a new baseline; the model's head, the targets and the training follow",
    ),
    "b": (
        "Replace the compact architecture by a residual one (the resnet preset).",
        "design",
        "the architecture is the model spec; the problem card and the data set version stay as "
        "they are, and training reruns on the new spec",
    ),
    "c": (
        "Standardise the pixels (subtract the training split's mean, divide by its standard "
        "deviation) instead of dividing them by the largest pixel value.",
        "data",
        "scaling is the transformation step of data engineering, fitted on the training split "
        "and stored with the data set version (so serving applies the very same); card and spec "
        "stay, and training reruns on the new version",
    ),
    "d": (
        "Train for 20 epochs instead of 8.",
        "train",
        "epochs are a training setting: card, spec and data set version stay as they are",
    ),
}


def _check_rerun(answer: Any) -> Feedback:
    given = expect_mapping(answer, CHANGES, what="the stage each change starts at")
    wrong = {}
    for key, value in given.items():
        choice = expect_choice(
            value, ORDER, what=f"the stage of change {key!r}", aliases=_STAGE_ALIASES
        )
        _, owner, why = CHANGES[key]
        if choice == owner:
            continue
        c, o = stage(choice), stage(owner)
        if c.number > o.number:
            problem = (
                f"starting at stage {c.number} ({choice}) keeps the old {ARTIFACTS[owner]}: "
                f"stage {o.number} ({owner}) writes it and must run again first"
            )
        else:
            problem = (
                f"starting at stage {c.number} ({choice}) redoes work for nothing: "
                f"the {ARTIFACTS[choice]} stays the same"
            )
        wrong[key] = f"not {choice!r}: {problem}. Here {why}."
    if not wrong:
        return Feedback.right(
            "All right: "
            + "; ".join(f"({k}) {owner}: {why}" for k, (_, owner, why) in CHANGES.items())
            + ". A change reruns the stage that owns it and every stage after it that reads its "
            "result; the earlier stages keep their artifacts in the run directory."
        )
    return Feedback.tally(
        list(CHANGES),
        wrong,
        hint="Ask which artifact the change alters (problem card, model spec, data set version, "
        "trained model): the stage that writes it is where the rerun starts.",
    )


RERUN = Exercise(
    id="0.1",
    title="where a change starts",
    prompt="Each change below alters one stage's artifact in the run directory; that stage and "
    "every later one that reads it must run again. Which stage ("
    + ", ".join(repr(k) for k in ORDER)
    + ") is the earliest to rerun for each?\n"
    + "\n".join(f"({k}) {change}" for k, (change, _, _) in CHANGES.items()),
    expects="a dict {change: stage} such as {'a': 'train', ...}",
    solution={k: owner for k, (_, owner, _) in CHANGES.items()},
    checker=_check_rerun,
)

# ---- 0.2 the step that catches leakage -----------------------------------------------------

STEPS = stage("data").steps
ANALYSIS_STEP = analyze.__module__.rsplit(".", 1)[-1]  # the step whose module defines analyze
_STEP_ALIASES = {
    "analyze": "analysis",
    "analyse": "analysis",
    "loading": "extraction",
    "load": "extraction",
    "split": "transformation",
    "splitting": "transformation",
    "scaling": "transformation",
    "versioning": "management",
    "feeding": "serving",
    "feed": "serving",
}
_WRONG_STEP = {
    "extraction": "Extraction loads the source into arrays (load_source); at that point no "
    "sample belongs to a split yet.",
    "transformation": "Transformation makes the split (stratified_split) and scales the data, but "
    "it never compares the samples' contents: a copy of a training image lands in test unnoticed.",
    "management": "Management saves the prepared data as a version: its content hash identifies "
    "the whole data set, not identical samples inside it.",
    "serving": "Serving feeds batches to the model: by then the split is fixed, and a test score "
    "inflated by leaked samples is already on its way.",
}


def _check_step(answer: Any) -> Feedback:
    step = expect_choice(answer, STEPS, what="a step of the data stage", aliases=_STEP_ALIASES)
    if step == ANALYSIS_STEP:
        return Feedback.right(
            f"{step}: analyze(x, y, splits=...) hashes every sample and counts the samples of a "
            "later split that also appear in an earlier one (report.leakage, e.g. 'train/test'), "
            "before a model ever sees the data."
        )
    return Feedback.wrong(
        _WRONG_STEP[step],
        hint="Which step looks at what is in the data before anything is done with it?",
    )


LEAKAGE_STEP = Exercise(
    id="0.2",
    title="where leakage is caught",
    prompt="Some test images are exact copies of training images, so the test score overstates "
    "what the model learned. Which step of the data stage ("
    + ", ".join(STEPS)
    + ") finds these duplicates shared by train and test?",
    expects=f"one step name from {list(STEPS)}",
    solution=ANALYSIS_STEP,
    checker=_check_step,
)

# ---- 0.3 which representation a downstream task reuses -------------------------------------

REPRESENTATION_NAMES = tuple(name for name, _ in REPRESENTATIONS)
LAYER_NAMES = tuple(layer for layer, _ in REPRESENTATION_LAYERS)  # encoding ... attribute head
# Names of the class head's output: in the digits' models workbench.design.build makes (a
# multiclass card), the layer `probabilities` is the softmax on the logits, not representation 4.
SOFTMAX_NAMES = ("probabilities", "softmax", "softmax probabilities", "class probabilities")


def _key(text: str) -> str:
    """`text` as `expect_choice` compares names: lower case, letters and digits only."""
    return "".join(c for c in text.lower() if c.isalnum())


_SOFTMAX_KEYS = {_key(name) for name in SOFTMAX_NAMES}
_REPRESENTATION_ALIASES = {
    **dict(zip(LAYER_NAMES, REPRESENTATION_NAMES, strict=True)),
    "high-dimensional": REPRESENTATION_NAMES[0],
    "high-dimensional latent": REPRESENTATION_NAMES[0],
    "low-dimensional": REPRESENTATION_NAMES[1],
    "low-dimensional latent": REPRESENTATION_NAMES[1],
    "pre-activation": REPRESENTATION_NAMES[2],
    "post-activation": REPRESENTATION_NAMES[3],
    "attributes": REPRESENTATION_NAMES[3],
    "sigmoid": REPRESENTATION_NAMES[3],
    "sigmoids": REPRESENTATION_NAMES[3],
    "sigmoid outputs": REPRESENTATION_NAMES[3],
    "independent probabilities": REPRESENTATION_NAMES[3],
}
DOWNSTREAM: dict[str, tuple[str, str, str]] = {  # key -> (task, what it needs, best fit)
    "a": (
        "Find the visually most similar digits to a query image, fast, among a million stored "
        "images (nearest neighbours).",
        "short vectors whose distances mean visual similarity",
        REPRESENTATION_NAMES[1],
    ),
    "b": (
        "Report independent yes/no attributes of a digit (even, > 4, closed loop, prime), each "
        "with its own probability.",
        "one probability P(attribute | x) per attribute, each its own yes/no, not competing with "
        "the others",
        REPRESENTATION_NAMES[3],
    ),
    "c": (
        "Combine this model's class scores with another model's scores before the softmax.",
        "scores that can be added up before a single softmax",
        REPRESENTATION_NAMES[2],
    ),
}
_LIMIT = {  # representation -> why it does not suit the other tasks
    REPRESENTATION_NAMES[0]: "the encoding is the largest vector: slow to compare, and most of "
    "its detail has nothing to do with the task",
    REPRESENTATION_NAMES[1]: "the embedding is a feature vector, neither class scores nor "
    "probabilities",
    REPRESENTATION_NAMES[2]: "logits are unbounded scores of the ten classes, one number per "
    "class: no probability per attribute, and tuned to tell classes apart rather than to "
    "measure how alike two images look",
    REPRESENTATION_NAMES[3]: "the attribute head answers four yes/no questions (even, > 4, closed "
    "loop, prime) with numbers squashed into [0, 1]: neither the ten classes' scores nor a "
    "vector rich enough to compare images by",
}
_SOFTMAX = (
    "in the digits' models (a multiclass card) the layer 'probabilities' is the class head's "
    "softmax on the logits: one conditional distribution P(class | x) over ten mutually "
    "exclusive classes, summing to 1; representation 4 is another head beside it"
)
_SOFTMAX_INSTEAD = {
    REPRESENTATION_NAMES[1]: "it says which class an image is, not which images look alike",
    REPRESENTATION_NAMES[2]: "its scores are already squashed: combine the logits before the "
    "softmax (a softmax of summed logits is not the average of two softmaxes)",
    REPRESENTATION_NAMES[3]: "the attributes need the attribute head, one sigmoid per attribute, "
    "whose probabilities are independent and need not sum to 1",
}


def _check_one(key: str, value: Any) -> str | None:
    """Why `value` does not suit task `key`, or None when it is the best fit."""
    _, need, best = DOWNSTREAM[key]
    if isinstance(value, str) and _key(value) in _SOFTMAX_KEYS:
        return f"not {value!r}: {_SOFTMAX}; {_SOFTMAX_INSTEAD[best]}."
    choice = expect_choice(
        value,
        REPRESENTATION_NAMES,
        what=f"the representation of task {key!r}",
        aliases=_REPRESENTATION_ALIASES,
    )
    return None if choice == best else f"not {choice!r}: {_LIMIT[choice]}. The task needs {need}."


def _check_representations(answer: Any) -> Feedback:
    given = expect_mapping(answer, DOWNSTREAM, what="a representation per task")
    wrong = {k: msg for k, v in given.items() if (msg := _check_one(k, v)) is not None}
    if not wrong:
        return Feedback.right(
            "All right: "
            + "; ".join(f"({k}) {best} gives {need}" for k, (_, need, best) in DOWNSTREAM.items())
            + ". One trained model serves all of them (the amalgamation)."
        )
    return Feedback.tally(
        list(DOWNSTREAM),
        wrong,
        hint="The closer to the input, the richer and larger the representation; the closer to "
        "the output, the more it says about the classes. Ask what the task needs: vectors to "
        "compare, scores to add, or one yes/no probability per attribute.",
    )


REPRESENTATION = Exercise(
    id="0.3",
    title="which representation to reuse",
    prompt="The amalgamated model of figure 3 exposes four representations: "
    + ", ".join(REPRESENTATION_NAMES)
    + ". Which one suits each downstream task best?\n"
    + "\n".join(f"({k}) {task}" for k, (task, _, _) in DOWNSTREAM.items()),
    expects="a dict {task: representation} such as {'a': 'pre-activation logits', ...} (the "
    "layer names of figure 3 work too)",
    solution={k: best for k, (_, _, best) in DOWNSTREAM.items()},
    checker=_check_representations,
)

EXERCISES = (RERUN, LEAKAGE_STEP, REPRESENTATION)

# ---- 0.4 experiment: a random split of duplicated data -------------------------------------

VAL_SHARE, TEST_SHARE = DEFAULT_SPLIT["val_fraction"], DEFAULT_SPLIT["test_fraction"]
TRAIN_SHARE = 1 - VAL_SHARE - TEST_SHARE  # 0.7 with the workbench's default split


def duplicated_split_leakage(source: str = "digits", *, copies: int = 2, seed: int = 0) -> float:
    """The share of test samples with an exact copy in training, after every sample of
    `source` is stored `copies` times and the whole lot is split at random (stratified).

    The experiment of exercise 0.4: the workbench's default split, counted by `analyze`.
    """
    params.check_int("copies", copies, minimum=1, maximum=10)
    params.check_int("seed", seed, minimum=0)
    raw = load_source(source)
    x, y = np.repeat(raw.x, copies, axis=0), np.repeat(raw.y, copies)  # copies side by side
    train, val, test = stratified_split(y, VAL_SHARE, TEST_SHARE, seed=seed)
    report = analyze(x, y, splits={"train": train, "val": val, "test": test})
    return report.leakage["train/test"] / len(test)


DUPLICATES = Experiment(
    id="0.4",
    title="a random split of duplicated data",
    prompt="Suppose every image of the data set was stored twice (say, two exports merged). The "
    f"cell duplicates every image, splits all of them at random into {TRAIN_SHARE:.0%} train, "
    f"{VAL_SHARE:.0%} validation and {TEST_SHARE:.0%} test (stratified_split, the workbench's "
    "split) and lets the analysis count the test images whose copy sits in training. Predict "
    "that share of the test split.",
    expects="a share of the test images between 0 and 1, e.g. 0.5",
    tolerance=0.05,
    why="The shuffle places a test image's copy like any other image, so it lands in training "
    f"with about the training share's probability, {TRAIN_SHARE:.1f} ({TRAIN_SHARE:.0%} of the "
    "other images are there). A random split, stratified or not, never keeps copies together; "
    "only the analysis, which compares contents across the splits, notices, and a test score on "
    "such a split measures memory more than generalisation. The fix comes before splitting: "
    "remove the duplicates, or keep each group of copies in one split. (With 3 copies a test "
    f"image has two chances: 1 - {1 - TRAIN_SHARE:.1f}**2, about "
    f"{1 - (1 - TRAIN_SHARE) ** 2:.2f}.)",
    solution=round(TRAIN_SHARE, 2),
    minimum=0,
    maximum=1,
)

EXPERIMENTS = (DUPLICATES,)

NOTES = """\
- **A change reruns from its owner on.** Students tend to rerun everything, or only training.
  Each artifact has one owner: the card (head, loss, baseline) is stage 1's, the spec stage 2's,
  the data set version (targets, fitted scaling) stage 3's. Changing the task is a stage-1 change
  even though the data stay the same.
- **Leakage is found by looking, not by splitting.** A stratified split keeps class shares; it
  does not stop two identical images from landing on both sides (exercise 0.4: with every image
  stored twice, about 70 % of the test images have their copy in training). Only the analysis
  compares contents (hashes), so it must run on the splits, not just on the raw data.
- **Probabilities are not always the best output, and never calibrated by construction.** For
  similarity search use the embedding; for ensembling, add logits (averaging softmax outputs is
  not the same as a softmax of summed scores). Softmax and sigmoid outputs are both conditional
  on the input; softmax is for exclusive classes, one sigmoid per label for independent ones.
  Whether either is calibrated is measured (a reliability diagram) and can be fixed (temperature
  scaling fitted on the validation split).
"""
