"""Stage 3 exercises: find planted leakage, tell which practices leak the test split, pick the
augmentation that breaks digits, and experiments on serving without the transform and on
filling missing values with zeros.

`planted_split` builds a small split of scikit-learn's digits with copies planted on purpose;
the leakage check counts them with `workbench.data.analyze`, the tool the notebook teaches.
`served_accuracy` scores a 1-nearest-neighbour classifier on validation images served through
the fitted `Transform` or raw (experiment 3.4); `imputed_accuracy` a logistic regression on a
messy table whose missing numbers are imputed or zero-filled (experiment 3.5).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence, Set
from pathlib import Path
from typing import Any

import numpy as np

from workbench import params
from workbench.data import Transform, analyze, load_source, to_channels_last
from workbench.data.prepare import fit_transform, split_indices
from workbench.errors import DataError
from workbench.exercises.base import (
    Exercise,
    Experiment,
    Feedback,
    expect_bool,
    expect_choice,
    expect_int,
    expect_mapping,
)

# ---- 3.1 find the planted leakage ----------------------------------------------------------

N_SAMPLES = 300  # digits drawn for the small split
N_LEAKED = 6  # test samples that are copies of training samples
N_VAL_LEAKED = 2  # validation samples that are copies of training samples
N_TRAIN_COPIES = 3  # training samples that duplicate other training samples (no leak)


@functools.lru_cache(maxsize=4)
def _planted(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(x, y, splits, indices of the test copies); cached, callers must not change the arrays."""
    from workbench.data import load_source, stratified_split

    raw = load_source("digits")  # 1,797 distinct images: no duplicates of its own
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(raw.y), N_SAMPLES, replace=False))
    x, y = raw.x[keep].copy(), raw.y[keep].copy()  # (N, 8, 8), (N,)
    train, val, test = stratified_split(y, seed=seed)
    pool = rng.permutation(train)
    n_originals = N_LEAKED + N_VAL_LEAKED + N_TRAIN_COPIES
    originals, train_copies = pool[:n_originals], pool[n_originals : n_originals + N_TRAIN_COPIES]
    copies = np.concatenate(
        [
            np.sort(rng.choice(test, N_LEAKED, replace=False)),
            rng.choice(val, N_VAL_LEAKED, replace=False),
            train_copies,
        ]
    )
    x[copies], y[copies] = x[originals], y[originals]
    return x, y, {"train": train, "val": val, "test": test}, copies[:N_LEAKED]


def planted_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """`x, y, splits` of 300 digits, split train/val/test, with copies planted across the splits.

    `splits` maps "train", "val" and "test" to index arrays into `x` and `y`; some samples are
    exact copies of training samples.
    """
    x, y, splits, _ = _planted(seed)
    return x.copy(), y.copy(), {k: v.copy() for k, v in splits.items()}


def _check_leakage(answer: Any) -> Feedback:
    x, y, splits, leaked = _planted(0)
    report = analyze(x, y, splits=splits)
    n_leaked, n_val = report.leakage["train/test"], report.leakage["train/val"]
    hint = (
        "x, y, splits = planted_split(); report = analyze(x, y, splits=splits); "
        "report.leakage['train/test'] counts the test samples also present in train."
    )
    if isinstance(answer, Sequence | Set | np.ndarray) and not isinstance(answer, str):
        return _check_indices(answer, splits, set(leaked.tolist()), hint)
    value = expect_int(answer, what="the number of leaked test samples (or their indices)")
    if value == n_leaked:
        return Feedback.right(
            f"{value} test samples are exact copies of training samples: a model that memorised "
            "them scores on them without having learned anything. Remove them from test (or "
            "split after removing duplicates) before trusting a test score."
        )
    problems = {
        report.n_duplicates: f"{value} is report.n_duplicates: every sample identical to an "
        "earlier one, including duplicates inside the training split, which do not leak.",
        n_leaked + n_val: f"{value} adds the copies in validation ({n_val}) to those in test.",
        n_val: f"{value} is the leakage from train into validation, not into test.",
        0: "0: analyze finds no leakage when it does not know the splits (it then sees one "
        "split, 'all').",
    }
    if value in problems:
        return Feedback.wrong(problems[value], hint=hint)
    return Feedback.wrong(f"{value} is not the number of leaked test samples.", hint=hint)


def _check_indices(
    answer: Sequence[Any] | Set[Any] | np.ndarray,
    splits: dict[str, np.ndarray],
    leaked: set[int],
    hint: str,
) -> Feedback:
    given = {
        expect_int(i, what="an index into x", minimum=0) for i in np.asarray(list(answer)).ravel()
    }
    if given == leaked:
        return Feedback.right(
            f"All {len(leaked)}: test samples {sorted(leaked)} are exact copies of training "
            "samples. Remove them from test before trusting a test score."
        )
    found, missing = given & leaked, leaked - given
    in_train = given & set(splits["train"].tolist())
    other = given - leaked - in_train
    problems = [f"You found {len(found)} of the {len(leaked)} leaked test samples."]
    if in_train:
        problems.append(
            f"{sorted(in_train)} are training indices: list the test copies, not the originals."
        )
    if other:
        problems.append(f"{sorted(other)} are not test samples that also appear in train.")
    if missing:
        problems.append(f"{len(missing)} leaked test sample(s) are missing.")
    return Feedback.wrong(
        "\n".join(problems),
        right=f"{sorted(found)} are leaked." if found else "",
        hint=hint,
    )


LEAKAGE = Exercise(
    id="3.1",
    title="find the planted leakage",
    prompt=(
        "x, y, splits = planted_split() gives 300 digits split into train, val and test, with "
        "some copies planted. How many test samples are exact copies of training samples?"
    ),
    expects="a whole number (or the list of the leaked test indices into x)",
    solution=N_LEAKED,
    checker=_check_leakage,
)

# ---- 3.2 which practices let the test split in --------------------------------------------

PRACTICES: dict[str, tuple[str, bool, str]] = {  # key -> (practice, leaks the test split?, why)
    "a": (
        "Standardise every column with the mean and standard deviation of all samples, then split.",
        True,
        "the statistics are computed with the test samples in them, so the test split shapes "
        "the inputs the model is trained on; split first, then fit the Transform on the "
        "training split",
    ),
    "b": (
        "Remove exact duplicates from the whole data set, then split.",
        False,
        "dropping copies learns nothing from the test samples (no statistic, no label); it is "
        "the fix for copies shared by training and test (exercise 3.1)",
    ),
    "c": (
        "Try three augmentation strengths and keep the one with the best test accuracy.",
        True,
        "choosing a setting by its test score tunes the pipeline to the test split, whose "
        "score then overstates how it does on unseen data; choose on the validation split and "
        "score the test split once, at the end",
    ),
    "d": (
        "Fill missing values with the training split's median, in training and at serving time.",
        False,
        "the median is a statistic of the training split, applied unchanged everywhere: the "
        "same rule as the fitted Transform",
    ),
    "e": (
        "Stop training at the epoch with the lowest validation loss.",
        False,
        "choosing settings such as the epoch is what the validation split is for; the test "
        "split stays unseen (the validation score itself becomes slightly optimistic, which is "
        "why the test split exists)",
    ),
}


def _check_practices(answer: Any) -> Feedback:
    given = expect_mapping(answer, PRACTICES, what="True or False per practice")
    wrong = {}
    for key, value in given.items():
        leaks = expect_bool(value, what=f"True or False for practice {key!r}")
        _, truth, why = PRACTICES[key]
        if leaks != truth:
            said = "leaks" if leaks else "does not leak"
            wrong[key] = f"{said}? No: {why}."
    if not wrong:
        return Feedback.right(
            "All right: "
            + "; ".join(
                f"({k}) {'leaks' if truth else 'does not leak'}: {why}"
                for k, (_, truth, why) in PRACTICES.items()
            )
            + ". Anything learned or chosen, a statistic or a setting, comes from training and "
            "validation data; the test split is only measured, once."
        )
    return Feedback.tally(
        list(PRACTICES),
        wrong,
        hint="For each practice ask: do the test samples, or their score, change anything the "
        "model is trained on or anything chosen for it?",
    )


LEAKY_PRACTICES = Exercise(
    id="3.2",
    title="which practices let the test split in",
    prompt="Which of these practices let the test split influence the model or its "
    "preparation, so that the test score no longer measures unseen data?\n"
    + "\n".join(f"({k}) {practice}" for k, (practice, _, _) in PRACTICES.items()),
    expects="a dict {practice: True if it leaks, else False}, e.g. {'a': False, ...}",
    solution={k: truth for k, (_, truth, _) in PRACTICES.items()},
    checker=_check_practices,
)

# ---- 3.3 an augmentation that breaks digits ------------------------------------------------

WRONG_AUGMENTATION = "horizontal flip"  # the one change here that does not keep a digit's label
_WHY_SAFE = {
    "small rotation": "a 2 tilted by a few degrees is still a 2: people write at a slant.",
    "small translation": "a digit shifted by a pixel or two is still the same digit: writing "
    "is rarely centred exactly.",
    "zoom": "a slightly larger or smaller digit is still the same digit: people write in "
    "different sizes.",
    "brightness change": "a lighter or darker stroke is still the same digit: pens, paper and "
    "scanners differ.",
    "pixel noise": "a little random noise on the pixels leaves the strokes, and so the digit, "
    "as they are.",
}
AUGMENTATIONS = (*_WHY_SAFE, WRONG_AUGMENTATION)


def _check_augmentation(answer: Any) -> Feedback:
    choice = expect_choice(
        answer,
        AUGMENTATIONS,
        what="an augmentation",
        aliases={
            "rotation": "small rotation",
            "translation": "small translation",
            "shift": "small translation",
            "brightness": "brightness change",
            "contrast": "brightness change",
            "noise": "pixel noise",
            "flip": "horizontal flip",
            "mirror": "horizontal flip",
        },
    )
    if choice == WRONG_AUGMENTATION:
        return Feedback.right(
            f"{choice}: a mirrored 2, 3 or 7 is not a digit anyone writes, yet it keeps its "
            "label, so the model learns from images it will never see. Flips suit photos of "
            "objects (a cat facing left is still a cat), not writing."
        )
    return Feedback.wrong(
        f"{choice!r} is safe for digits: {_WHY_SAFE[choice]}",
        hint="Augment only with changes that leave the label true. Picture each change applied "
        "to a 2, a 3 and a 7: which one gives something no one writes?",
    )


AUGMENTATION = Exercise(
    id="3.3",
    title="an augmentation that breaks digits",
    prompt="Augmentation changes training images at random so the model sees more variety. "
    f"Which of {list(AUGMENTATIONS)} is wrong for handwritten digits?",
    expects=f"one of {list(AUGMENTATIONS)}",
    solution=WRONG_AUGMENTATION,
    checker=_check_augmentation,
)

EXERCISES = (LEAKAGE, LEAKY_PRACTICES, AUGMENTATION)

# ---- 3.4 experiment: serving without the transform -----------------------------------------


def served_accuracy(
    source: str = "digits",
    *,
    transformed: bool = True,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> float:
    """Validation accuracy of a 1-nearest-neighbour classifier fitted on the transformed
    training images of `source`, its validation images served through the same fitted
    Transform (`transformed=True`) or raw, the transform skipped (`transformed=False`).

    The experiment of exercise 3.4 (training/serving skew): the split is drawn as `prepare`
    draws it, and the test split is left untouched.
    """
    from sklearn.neighbors import KNeighborsClassifier

    params.check_bool("transformed", transformed)
    raw = load_source(source)
    if raw.modality != "image":
        raise DataError(f"served_accuracy: expected an image source, got {source!r} (tabular).")
    train, val, _ = split_indices(raw, seed, val_fraction, test_fraction)
    x = to_channels_last(raw.x)  # (N, H, W, C) raw pixels
    transform = Transform.fit(x[train], kind="image", scale=raw.pixel_max)
    served = transform.apply(x[val]) if transformed else x[val].astype(np.float32)
    model = KNeighborsClassifier(n_neighbors=1).fit(
        transform.apply(x[train]).reshape(len(train), -1), raw.y[train]
    )
    return float(model.score(served.reshape(len(val), -1), raw.y[val]))


SKIPPED_TRANSFORM = Experiment(
    id="3.4",
    title="serving without the transform",
    prompt="A 1-nearest-neighbour classifier (scikit-learn) is fitted on the transformed "
    "training images (pixels divided by the pixel maximum, so in [0, 1]). Served through the "
    "same Transform, 0.97 of the validation images are classified right (smoke profile; 0.94 "
    "on the full one). The cell serves them raw instead, the transform skipped (pixels 0-16 "
    "for digits, 0-255 for MNIST): the skew that serve_batch rules out. Predict the share of "
    "validation images it still classifies right.",
    expects="a share of the validation images between 0 and 1, e.g. 0.5",
    tolerance=0.1,
    why="Nothing fails: raw images have the shape the classifier expects, so no error is "
    "raised; only the answers change. Raw pixels are s times the scaled ones (s = 16 for "
    "digits, 255 for MNIST), and the squared distance of a served image s*x to a training "
    "image t, s**2 |x|**2 - 2s x.t + |t|**2, is smallest for the t with the largest "
    "2s x.t - |t|**2: the overlap with x's ink counts 2s times as much as t's own ink, so the "
    "nearest one is, roughly, the training image with the most ink where x has ink, often not "
    "the one most alike. Two thirds to three quarters are still right (with seed 0: 0.77 on the "
    "smoke profile, 0.67 on the full one), down from 0.97 and 0.94. Other models go wrong in their "
    "own ways: none was trained on inputs this large. The remedy is the one the workbench "
    "builds in: one Transform, fitted on the training split, stored with the version and "
    "applied by the training feed and by serve_batch alike.",
    solution=0.75,
    minimum=0,
    maximum=1,
)

# ---- 3.5 imputing with zeros (experiment) --------------------------------------------------

TABLE_SPLIT = {"seed": 0, "val_fraction": 0.3, "test_fraction": 0.2}  # 53 validation wines


def imputed_accuracy(path: str | Path, *, fill: str = "median") -> float:
    """Validation accuracy of a logistic regression on the messy wine table at `path` (see
    `workbench.data.examples.messy_wine_csv`), its missing numbers filled by the Transform
    (`fill="median"`: the training median, plus a missing indicator) or with zeros first
    (`fill="zero"`, as `DataFrame.fillna(0)` does), then standardised and one-hot encoded.

    The experiment of exercise 3.5, on its own split (`TABLE_SPLIT`: 30 % validation, so that
    one wine is 2 %); the test split is left untouched.
    """
    from sklearn.linear_model import LogisticRegression

    params.check_choice("fill", fill, ("median", "zero"))
    raw = load_source(f"csv:{path}", target="cultivar")
    train, val, _ = split_indices(raw, **TABLE_SPLIT)
    x = raw.x.copy()
    if fill == "zero":
        numeric = [j for j, name in enumerate(raw.feature_names) if name not in raw.categories]
        x[:, numeric] = np.nan_to_num(x[:, numeric], nan=0.0)  # text columns keep "(missing)"
    transform = fit_transform(raw, x[train])
    model = LogisticRegression(max_iter=2000).fit(transform.apply(x[train]), raw.y[train])
    return float(model.score(transform.apply(x[val]), raw.y[val]))


ZERO_FILL = Experiment(
    id="3.5",
    title="filling missing values with zeros",
    prompt="A logistic regression (scikit-learn) learns the cultivar from the messy wine table "
    "after the Transform: each missing number filled with its column's training median (plus a "
    "0/1 'missing' column), standardised, text one-hot encoded. It classifies 0.98 of the 53 "
    "validation wines right (52 of them). The cell fills the missing numbers with zeros "
    "instead, as DataFrame.fillna(0) would, and trains the same model again. Two wines in five "
    "(38 %) miss at least one number. Predict the share of validation wines it classifies "
    "right.",
    expects="a share of the validation wines between 0 and 1, e.g. 0.9",
    tolerance=0.1,
    why="A zero is not 'no information': it is a measurement, and for these columns an "
    "impossible one (no wine has 0 mg/l of magnesium or of proline; the training values of "
    "proline run from 290 to 1,547). After standardisation such a cell sits several standard "
    "deviations below every real wine, and the linear model reads it as an extreme value; "
    "the zeros also pull the fitted means and standard deviations away from the real wines. "
    "With seed 0 the share drops from 0.98 to 0.77 (41 of 53). The training median sits in "
    "the middle of the real values and shifts no prediction by itself, and the missing "
    "indicator keeps the fact that a value was absent. Both are fitted on the training split "
    "only and applied unchanged to validation, test and served rows.",
    solution=0.8,
    minimum=0,
    maximum=1,
)

EXPERIMENTS = (SKIPPED_TRANSFORM, ZERO_FILL)

NOTES = """\
- **Analyze without splits.** `analyze(x, y)` reports duplicates but no leakage: leakage is a
  property of the split, so pass `splits=`.
- **Duplicates are not all leakage.** Two identical training images are harmless; a test image
  that is also in train inflates the test score.
- **"Fit on everything, it's only scaling."** For pixels divided by their known maximum it
  changes nothing; for standardised tabular columns the test values enter the means and
  standard deviations. The habit matters more than the size of the leak.
- **Tuning on test is leakage too** (3.2 c): a setting chosen by its test score makes that
  score optimistic. Choose on validation; score the test split once, at the end (stage 4).
- **Augmentations are label-preserving transformations of this data set**, not a fixed list:
  flips are fine for photos, wrong for writing; strong rotations turn a 6 into a 9.
- **Training/serving skew raises no error** (3.4): raw pixels fit the model's input shape, and
  the 1-nearest-neighbour classifier drops from 0.97 to 0.77 on the validation digits. One
  stored Transform, applied by the feed and by `serve_batch`, rules it out.
- **`fillna(0)` is the usual first move** (3.5): a zero is a measurement, and for magnesium or
  proline an impossible one; the logistic regression drops from 0.98 to 0.77 on the validation
  wines. The median fills without moving anything; the indicator column keeps "was missing",
  which matters when values are missing for a reason (a test not ordered, a sensor off).
- **Types are decided, not guessed silently**: a column of numbers with one `?` is reported with
  its rows (pass `na_values`); a decimal-comma column is refused (pass `decimal=","`); an
  identifier is left out; the target must be named.
"""
