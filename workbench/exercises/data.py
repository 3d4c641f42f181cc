"""Stage 3 exercises: find planted leakage, fit the scaler on the right split, augment digits.

`planted_split` builds a small split of scikit-learn's digits with copies planted on purpose;
the leakage check counts them with `workbench.data.analyze`, the tool the notebook teaches. The
safe augmentations are the ones `workbench.data.augmentation` offers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence, Set
from typing import Any

import numpy as np

from workbench.data import analyze, augmentation
from workbench.exercises.base import (
    Exercise,
    Feedback,
    expect_choice,
    expect_int,
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

# ---- 3.2 which split the scaler is fitted on -----------------------------------------------

SPLITS = ("train", "validation", "test", "all")
_SPLIT_ALIASES = {
    "training": "train",
    "train split": "train",
    "val": "validation",
    "valid": "validation",
    "testing": "test",
    "everything": "all",
    "all data": "all",
    "whole dataset": "all",
}
_WRONG_SPLIT = {
    "validation": "Fitting on validation lets the data that chooses and stops the model also "
    "shape its inputs: validation should only be measured, never learned from.",
    "test": "Fitting on test leaks the test set into preparation: the test score would no "
    "longer measure data the pipeline has never seen.",
    "all": "Fitting on all data leaks validation and test statistics (means, ranges) into "
    "training: a mild leak, but the test set is no longer unseen.",
}


def _check_scaler_split(answer: Any) -> Feedback:
    split = expect_choice(answer, SPLITS, what="a split", aliases=_SPLIT_ALIASES)
    if split == "train":
        return Feedback.right(
            "train: Transform.fit(x_train, ...) learns the scale (or means and standard "
            "deviations) from training data only, and the same fitted Transform.apply then runs "
            "on validation, test and at serving time, as it will on new data."
        )
    return Feedback.wrong(
        _WRONG_SPLIT[split],
        hint="Validation and test stand in for data the model has never seen; new data at "
        "serving time arrives one sample at a time. Which split may the pipeline learn from?",
    )


SCALER_SPLIT = Exercise(
    id="3.2",
    title="fit the scaler on the right split",
    prompt="The Transform standardises tabular columns with means and standard deviations "
    "learned from data (images are divided by their known pixel maximum). Which split do you "
    "fit it on?",
    expects=f"one of {list(SPLITS)}",
    solution="train",
    checker=_check_scaler_split,
)

# ---- 3.3 an augmentation that breaks digits ------------------------------------------------

_OFFERED = tuple(  # the factors workbench.data.augmentation takes: rotation, translation, zoom
    p.name
    for p in inspect.signature(augmentation).parameters.values()
    if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
)
AUGMENTATIONS = ("small rotation", "small translation", "zoom", "horizontal flip")
WRONG_AUGMENTATION = next(a for a in AUGMENTATIONS if not any(o in a for o in _OFFERED))
_WHY_SAFE = {
    "small rotation": "a 2 tilted by a few degrees is still a 2: people write at a slant.",
    "small translation": "a digit shifted by a pixel or two is still the same digit: writing "
    "is rarely centred exactly.",
    "zoom": "a slightly larger or smaller digit is still the same digit: people write in "
    "different sizes.",
}


def _check_augmentation(answer: Any) -> Feedback:
    choice = expect_choice(
        answer,
        AUGMENTATIONS,
        what="an augmentation",
        aliases={
            "rotation": "small rotation",
            "translation": "small translation",
            "shift": "small translation",
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

EXERCISES = (LEAKAGE, SCALER_SPLIT, AUGMENTATION)

NOTES = """\
- **Analyze without splits.** `analyze(x, y)` reports duplicates but no leakage: leakage is a
  property of the split, so pass `splits=`.
- **Duplicates are not all leakage.** Two identical training images are harmless; a test image
  that is also in train inflates the test score.
- **"Fit on everything, it's only scaling."** For pixels divided by 16 it changes nothing; for
  standardised tabular columns the test means leak into training. The habit matters more than the
  size of the leak.
- **Augmentations are label-preserving transformations of this data set**, not a fixed list:
  flips are fine for photos, wrong for writing; strong rotations turn a 6 into a 9.
"""
