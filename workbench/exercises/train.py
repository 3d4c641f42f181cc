"""Stage 4 exercises: an attribute head's threshold, learning curves, BatchNorm's momentum,
and an experiment with a ten times smaller learning rate.

The classic three are pure numbers, no training: `threshold_curve` makes seeded synthetic scores
of one attribute, the learning curves are a fixed history as `model.fit` returns it, and the
momentum exercise uses the spec's default `bn_momentum` and the arithmetic of a moving average.
The experiment (4.4) trains: `smaller_learning_rate` reruns the notebook's training with the
learning rate divided by ten, in a temporary run directory, seeded like the notebook's run.
"""

from __future__ import annotations

import functools
import math
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params
from workbench.design import ModelSpec
from workbench.exercises.base import (
    Exercise,
    Experiment,
    Feedback,
    expect_choice,
    expect_int,
    expect_number,
    expect_pair,
)
from workbench.train import TrainConfig, train

if TYPE_CHECKING:
    from workbench.data import DatasetVersion
    from workbench.identify import ProblemCard

# ---- 4.1 the threshold of an attribute head ------------------------------------------------

N_SCORES = 1000  # validation examples of the synthetic attribute
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)  # the curve's grid, 0.05 ... 0.95
F1_TOLERANCE = 0.01  # a threshold whose F1 is this close to the best counts as right


@functools.lru_cache(maxsize=4)
def _scores_labels(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated sigmoid scores of a rare attribute (~22 % positive) and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    scores = 1 / (1 + np.exp(-rng.normal(-2.0, 2.0, N_SCORES)))  # sigmoid of the logits
    labels = (rng.random(N_SCORES) < scores).astype(np.int64)  # P(label = 1) = score
    return scores, labels


def _prf(
    scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 at each threshold (precision 1 where nothing is predicted)."""
    predicted = scores[np.newaxis, :] >= thresholds[:, np.newaxis]  # (T, N)
    tp = (predicted & (labels == 1)).sum(axis=1)
    n_predicted = predicted.sum(axis=1)
    precision = np.where(n_predicted > 0, tp / np.maximum(n_predicted, 1), 1.0)
    recall = tp / max(int(labels.sum()), 1)
    total = precision + recall
    f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    return precision, recall, f1


def threshold_curve(seed: int = 0) -> dict[str, np.ndarray]:
    """Precision, recall and F1 of one attribute's sigmoid scores at thresholds 0.05 ... 0.95.

    Returns {"threshold", "precision", "recall", "f1"}, arrays of the same length; the scores
    are synthetic (seeded), like a trained multilabel head's output for a rare attribute.
    """
    precision, recall, f1 = _prf(*_scores_labels(seed), THRESHOLDS)
    return {"threshold": THRESHOLDS.copy(), "precision": precision, "recall": recall, "f1": f1}


CURVE = threshold_curve()
BEST = int(np.argmax(CURVE["f1"]))
BEST_THRESHOLD, BEST_F1 = float(THRESHOLDS[BEST]), float(CURVE["f1"][BEST])


def _check_threshold(answer: Any) -> Feedback:
    t = expect_number(answer, what="a threshold", minimum=0, maximum=1)
    precision, recall, f1 = (float(v[0]) for v in _prf(*_scores_labels(0), np.array([t])))
    at = f"At {t:g}: precision {precision:.2f}, recall {recall:.2f}, F1 {f1:.3f}"
    if f1 >= BEST_F1 - F1_TOLERANCE:
        return Feedback.right(
            f"{at}; the best on the curve is F1 {BEST_F1:.3f} at {BEST_THRESHOLD:g}. For a rare "
            "attribute F1 peaks below 0.5: down to the peak, a lower threshold gains more recall "
            "than it costs precision. Pick it on validation data, never on test."
        )
    if abs(t - BEST_F1) < 0.005:
        return Feedback.wrong(
            f"{t:g} is the best F1 on the curve, not the threshold that reaches it.",
            hint="Read the threshold at which the F1 curve peaks.",
        )
    if t > BEST_THRESHOLD:
        move = "Lower the threshold toward the peak of the F1 curve: here precision is high but "
        move += "many positives are missed (low recall)."
    else:
        move = "Raise the threshold toward the peak of the F1 curve: here most positives are "
        move += "found but too many negatives pass (low precision)."
    default = " 0.5 is only the default, not the best threshold here." if t == 0.5 else ""
    return Feedback.wrong(
        f"{at}, {BEST_F1 - f1:.3f} below the best F1 ({BEST_F1:.3f}).{default}", hint=move
    )


THRESHOLD = Exercise(
    id="4.1",
    title="the threshold of an attribute head",
    prompt="curve = threshold_curve() gives the precision, recall and F1 of one attribute's "
    "sigmoid scores on validation data at thresholds 0.05 to 0.95. Which threshold should the "
    "head use to predict the attribute?",
    expects="a threshold between 0 and 1",
    solution=BEST_THRESHOLD,
    checker=_check_threshold,
)

# ---- 4.2 read the learning curves ----------------------------------------------------------

HISTORY = {  # history.history of a 12-epoch run: epoch n is index n - 1
    "loss": [2.10, 1.20, 0.80, 0.58, 0.45, 0.36, 0.29, 0.23, 0.18, 0.14, 0.11, 0.09],
    "val_loss": [2.00, 1.25, 0.90, 0.72, 0.65, 0.63, 0.66, 0.71, 0.78, 0.86, 0.95, 1.05],
}
DIAGNOSES = ("overfitting", "underfitting", "good fit")
STOP_EPOCH = int(np.argmin(HISTORY["val_loss"])) + 1  # Keras counts epochs from 1
_DIAGNOSIS_ALIASES = {
    "overfit": "overfitting",
    "over-fitting": "overfitting",
    "underfit": "underfitting",
    "good": "good fit",
    "fit": "good fit",
    "just right": "good fit",
}
_WRONG_DIAGNOSIS = {
    "underfitting": "Underfitting shows as a training loss that stays high; here it falls to "
    f"{HISTORY['loss'][-1]} and keeps falling.",
    "good fit": f"val_loss rises from epoch {STOP_EPOCH + 1} on while the training loss keeps "
    "falling: the gap between them widens, which a good fit does not do.",
}


def _check_curves(answer: Any) -> Feedback:
    diagnosis, epoch = expect_pair(answer, ("diagnosis", "epoch"), what="the reading of the curves")
    diagnosis = expect_choice(diagnosis, DIAGNOSES, what="a diagnosis", aliases=_DIAGNOSIS_ALIASES)
    n = len(HISTORY["loss"])
    epoch = expect_int(epoch, what="an epoch number", minimum=1, maximum=n)
    good_diagnosis, good_epoch = diagnosis == "overfitting", epoch == STOP_EPOCH
    best_val = HISTORY["val_loss"][STOP_EPOCH - 1]
    if good_diagnosis and good_epoch:
        return Feedback.right(
            f"overfitting, stop at epoch {epoch}: val_loss is lowest there ({best_val}) and "
            "rises afterwards while the training loss keeps falling: the model starts to "
            "memorise the training set. The workbench keeps that epoch's weights: it selects "
            "the epoch with the lowest val_loss (kept as best.keras) and tests and saves those. "
            "Early stopping (patience) only ends the run sooner; it does not choose the weights."
        )
    problems, right = [], []
    if good_diagnosis:
        right.append("the diagnosis: overfitting.")
    else:
        problems.append(_WRONG_DIAGNOSIS[diagnosis])
    if good_epoch:
        right.append(f"epoch {epoch}, where val_loss is lowest.")
    elif epoch == STOP_EPOCH - 1:
        problems.append(
            f"Epoch {epoch} is one early: Keras counts epochs from 1, so "
            f"val_loss[{epoch}] belongs to epoch {epoch + 1}."
        )
    elif epoch == n:
        problems.append(
            f"Epoch {n} has the lowest training loss, but the worst val_loss since epoch 1."
        )
    else:
        problems.append(
            f"At epoch {epoch} val_loss is {HISTORY['val_loss'][epoch - 1]}; it gets lower "
            "elsewhere."
        )
    return Feedback.wrong(
        "\n".join(problems),
        right=" ".join(right),
        hint="Judge by the validation loss: it measures data the model does not train on. "
        "Compare it with the training loss, and stop where it is lowest.",
    )


CURVES = Exercise(
    id="4.2",
    title="read the learning curves",
    prompt="A run's history (epoch 1 first):\n"
    + "\n".join(f"{k:>8}: {v}" for k, v in HISTORY.items())
    + f"\nIs this {', '.join(DIAGNOSES[:-1])} or a {DIAGNOSES[-1]}, and at which epoch should "
    "training have stopped?",
    expects="a pair (diagnosis, epoch), e.g. ('underfitting', 3), or a dict "
    "{'diagnosis': ..., 'epoch': ...}",
    solution=("overfitting", STOP_EPOCH),
    checker=_check_curves,
)

# ---- 4.3 BatchNorm's momentum --------------------------------------------------------------

STEPS_PER_EPOCH = 55  # the full profile: 3,500 mnist5k training images / batches of 64
LONG_RUN_STEPS = 500  # "a few hundred steps": after these, Keras' default 0.99 is fine too
BN_MOMENTUM = ModelSpec().bn_momentum  # what the workbench's specs use: 0.9
MOMENTA = (0.99, BN_MOMENTUM)  # Keras' default, the workbench's


def _left(momentum: float, steps: int = STEPS_PER_EPOCH) -> float:
    """The share of the initial moving statistics left after `steps` (default: one epoch)."""
    return momentum**steps


_SHORT_RUN = (
    f"This is a short-run effect: after a few hundred steps {MOMENTA[0]} works as well "
    f"({MOMENTA[0]}**{LONG_RUN_STEPS} = {_left(MOMENTA[0], LONG_RUN_STEPS):.1g} of the start "
    "values left)."
)


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, abs_tol=1e-6)  # 0.9 typed as float32 is 0.89999998


def _check_momentum(answer: Any) -> Feedback:
    m = expect_number(answer, what="a momentum", minimum=0, maximum=1)
    left = f"{m:g}**{STEPS_PER_EPOCH} = {_left(m):.2g}"
    if _near(m, BN_MOMENTUM):
        return Feedback.right(
            f"{m:g}: each step keeps {m:.0%} of the old moving mean and variance, so after one "
            f"epoch {left} of the initial values (mean 0, variance 1) is left: the statistics "
            f"used at inference describe the data. With {MOMENTA[0]}, {_left(MOMENTA[0]):.0%} "
            "would still be the start values after that epoch, and a model tested then can "
            "score near chance while training looks fine (training normalises with each "
            f"batch's own statistics). {_SHORT_RUN} The workbench uses {m:g} because its runs "
            "are short and it validates, and picks the best epoch, from the first epoch on."
        )
    if any(_near(1 - m, c) for c in MOMENTA):
        return Feedback.wrong(
            f"{m:g} is the weight of the NEW batch statistics, PyTorch's convention. Keras' "
            "momentum is the weight of the old value: moving = momentum * moving + "
            "(1 - momentum) * batch.",
            hint=f"Translate to Keras' convention (1 - {m:g}), then compute momentum**"
            f"{STEPS_PER_EPOCH} for each choice.",
        )
    if any(_near(m, c) for c in MOMENTA):
        return Feedback.wrong(
            f"{left}: after one epoch {_left(m):.0%} of the moving statistics is still the "
            "start value (mean 0, variance 1), so a model tested after that epoch normalises "
            "with the wrong numbers at inference. Training looks fine (it uses each batch's own "
            "statistics); test accuracy can collapse toward chance. Only a short run suffers: "
            f"after a few hundred steps {m:g} works too ({m:g}**{LONG_RUN_STEPS} = "
            f"{_left(m, LONG_RUN_STEPS):.1g}), but one epoch of {STEPS_PER_EPOCH} steps is not "
            "enough.",
            hint=f"Compute momentum**{STEPS_PER_EPOCH} for both choices: the share of the "
            "start value that survives one epoch should be close to 0.",
        )
    return Feedback.wrong(
        f"{m:g} is not one of the choices {list(MOMENTA)} (for it, {left} of the start value "
        "would be left after one epoch).",
        hint=f"Compute momentum**{STEPS_PER_EPOCH} for {MOMENTA[0]} and {MOMENTA[1]}.",
    )


MOMENTUM = Exercise(
    id="4.3",
    title="BatchNorm's momentum",
    prompt=f"On the full profile an epoch has {STEPS_PER_EPOCH} steps (3,500 images in batches "
    "of 64). BatchNormalization updates its moving mean and variance each step as moving = "
    "momentum * moving + (1 - momentum) * batch, starting from mean 0 and variance 1, and "
    "inference uses them. A model is trained for one epoch and then tested. Which momentum, "
    f"{MOMENTA[0]} (Keras' default) or {MOMENTA[1]}, leaves moving statistics that describe the "
    "data after that one epoch?",
    expects=f"one of the numbers {MOMENTA[0]} or {MOMENTA[1]}",
    solution=BN_MOMENTUM,
    checker=_check_momentum,
)

EXERCISES = (THRESHOLD, CURVES, MOMENTUM)

# ---- 4.4 experiment: a ten times smaller learning rate -------------------------------------

RATE_FACTOR = 10  # the experiment divides the run's learning rate by this


def smaller_learning_rate(
    spec: ModelSpec,
    version: DatasetVersion,
    config: TrainConfig,
    *,
    card: ProblemCard,
    factor: float = RATE_FACTOR,
) -> float:
    """The validation metric of the card (accuracy for classification) of the weights `train`
    selects when `config` runs with its learning rate divided by `factor`: same spec, data,
    epochs, schedule and seed. The experiment of exercise 4.4.

    It trains in a temporary run directory, untracked and silent, so it never becomes the run's
    current model.
    """
    params.check_number("factor", factor, minimum=1)
    slower = config.replace(learning_rate=config.learning_rate / factor)
    with tempfile.TemporaryDirectory(prefix="workbench-experiment-") as folder:
        result = train(spec, version, slower, card=card, run_dir=folder, track=False, verbose=0)
    return float(result.metrics["validation"][f"val_{card.baseline['metric']}"])


SMALLER_RATE = Experiment(
    id="4.4",
    title="a learning rate ten times smaller",
    prompt="The cell trains the same spec on the same data, with the same seed, epochs and "
    f"schedule as the run above, but with its learning rate divided by {RATE_FACTOR} (on the "
    "profiles, 2e-4 instead of 2e-3), and reports the validation accuracy of the weights it "
    "selects (the epoch with the lowest val_loss). Predict that validation accuracy.",
    expects="a validation accuracy between 0 and 1, e.g. 0.8",
    tolerance=0.05,
    why="Adam moves each weight by roughly the learning rate or less per step (it divides the "
    f"gradient by a running estimate of its size), so a rate {RATE_FACTOR} times smaller means "
    "steps about ten times shorter: in the same number of steps the weights travel much less "
    "far, and the run ends still underfitting, behind the notebook's run (on the smoke profile "
    "the slower run's validation loss is still falling at its last epoch, which is the one it "
    "selects). Yet it is not the same as training a tenth as long: small steps waste less on "
    "overshooting and on the noise of single batches, so it ends well above where the "
    "notebook's run stood after its first epoch. Too small a rate underfits within a fixed "
    "budget of epochs (more epochs would close the gap); too large a rate overshoots, and the "
    "loss can stall or diverge.",
    solution=0.91,
    minimum=0,
    maximum=1,
)

EXPERIMENTS = (SMALLER_RATE,)

NOTES = """\
- **0.5 is not a law.** A sigmoid's 0.5 is only right for balanced, calibrated labels and
  symmetric costs; a rare attribute's best F1 sits lower. Tune thresholds on validation data.
- **Stop at the last epoch.** Students keep the final model; the best epoch is the one with the
  lowest val_loss (the workbench keeps it as best.keras).
- **Overfitting needs a widening gap**, not just a val_loss above the training loss: that gap
  exists in every healthy run.
- **Early stopping is not model selection.** `patience` only stops the run; the weights tested
  are the best epoch by val_loss (best.keras), whether or not the run stopped early.
- **BatchNorm fine in training, broken at test.** The symptom of a slow momentum on short runs is
  a good training accuracy and a near-chance test accuracy; after a few hundred steps Keras'
  default 0.99 is fine. PyTorch's `momentum=0.1` is Keras' `0.9` (the weights are swapped).
- **A smaller learning rate is not "the same, only slower" (4.4).** Students expect a ten times
  smaller rate to land where the run stood after a tenth of its steps; Adam's shorter steps
  overshoot less, so it ends higher than that, but below the run at the full rate.
"""
