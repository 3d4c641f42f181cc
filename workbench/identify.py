"""Stage 1: identify the type of model for the problem.

A `ProblemCard` records what the problem is (modality, task type, outputs, input shape) and
derives what the model's head must be (units, activation, loss, metrics) and the baseline a
model must beat. It also records the split (seed and fractions) drawn here, once: stage 3
prepares the data with it, and the baseline is learned on its training part and scored on its
test part. It takes plain arrays, never a loader: notebooks load labels with `workbench.data`,
draw the split there and hand the labels over.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench import params
from workbench.config import set_current
from workbench.errors import SpecError
from workbench.files import atomic_write_json, read_json, sha256_bytes, to_json
from workbench.task_types import MODALITIES, TASKS

CARD_FILE = Path("problem") / "card.json"
SPLIT_KEYS = ("seed", "val_fraction", "test_fraction")
DEFAULT_SPLIT = {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}  # also old cards' split
MAX_FRACTION = 0.9  # a validation or test share above this leaves too little to train on


@dataclass(frozen=True)
class Head:
    """What the last layer and the loss must be for a task type."""

    units: int  # output units of the last Dense layer
    activation: str  # activation applied to the logits
    loss: str  # Keras loss name
    metrics: tuple[str, ...]  # Keras metric names
    why: str  # the reasoning, in a sentence a student can read


def head_for(task: str, n: int) -> Head:
    """The head a task with `n` classes, labels or targets needs, and why."""
    if task == "binary":
        return Head(
            1,
            "sigmoid",
            "binary_crossentropy",
            ("accuracy",),
            "Two classes: one sigmoid unit gives P(positive | x), and the other class gets 1 "
            "minus it; binary cross-entropy scores it. Lying in [0, 1] does not make it "
            "calibrated: that is measured on held-out data.",
        )
    if task == "multiclass":
        return Head(
            n,
            "softmax",
            "sparse_categorical_crossentropy",
            ("accuracy",),
            f"One of {n} mutually exclusive classes: softmax turns {n} logits into one "
            "distribution P(class | x) that sums to 1; categorical cross-entropy scores the true "
            "class (the sparse variant takes integer labels). Calibration is measured on "
            "held-out data, not given by the softmax.",
        )
    if task == "multilabel":
        return Head(
            n,
            "sigmoid",
            "binary_crossentropy",
            ("binary_accuracy",),
            f"{n} yes/no labels that can be true together: one sigmoid per label gives each its "
            "own P(label | x), and they need not sum to 1; binary cross-entropy scores each "
            "label. Softmax would force the labels to compete. Calibration is measured on "
            "held-out data, not given by the sigmoid.",
        )
    return Head(
        n,
        "linear",
        "mean_squared_error",
        ("mae",),
        f"{n} real-valued output(s): no squashing activation (linear); mean squared error "
        "penalises large misses, mean absolute error reads in the target's units.",
    )


@dataclass(frozen=True)
class ProblemCard:
    """Stage 1's answer: what kind of problem this is and what head it needs."""

    modality: str  # "image" or "tabular"
    task: str  # "binary", "multiclass", "multilabel" or "regression"
    num_outputs: int  # classes (multiclass), labels (multilabel), 2 (binary), targets (regression)
    input_shape: tuple[int, ...]  # one example's shape, channels-last for images
    class_names: tuple[str, ...] = ()  # one name per class / label; empty for regression
    dataset: str = ""  # the data source the card was made from
    activation: str | None = None  # optional override of the head's activation (checked)
    baseline: dict[str, Any] = field(default_factory=dict, compare=False)  # what to beat
    split: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SPLIT))  # seed, fractions
    target: str | None = None  # a table's label column (csv: sources); None: the source's own
    source_options: dict[str, Any] = field(default_factory=dict)  # e.g. sep, na_values, image_size

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "split", check_split(self.split))
        object.__setattr__(self, "source_options", check_source_options(self.source_options))
        if self.target is not None:
            params.check_str("target", self.target, error=SpecError, owner="ProblemCard")
        _validate(self)

    @property
    def source_kwargs(self) -> dict[str, Any]:
        """How the card's data are read: `load_source(card.dataset, **card.source_kwargs)`."""
        return {**self.source_options, **({"target": self.target} if self.target else {})}

    @property
    def head(self) -> Head:
        """The head derived from the task type."""
        return head_for(self.task, self.num_outputs)

    def beats_baseline(self, value: float) -> bool:
        """Whether a score on the baseline's metric beats it (accuracies higher, errors lower)."""
        if not self.baseline:
            raise SpecError("ProblemCard: no baseline; make the card with identify(labels, ...).")
        lower_is_better = self.baseline["metric"] == "mae"
        best = self.baseline["value"]
        return value < best if lower_is_better else value > best

    def with_split(
        self, split: dict[str, Any], y_train: np.ndarray, y_test: np.ndarray | None = None
    ) -> ProblemCard:
        """This card with `split` recorded and its baseline learned on `y_train`, the split's
        training labels, and scored on `y_test`, its test labels."""
        baseline = compute_baseline(self.task, y_train, y_test, class_names=self.class_names)
        return dataclasses.replace(self, split=dict(split), baseline=baseline)

    def reasoning(self) -> str:
        """Why this head: the lines a student reads next to the card."""
        h = self.head
        lines = [
            f"Modality {self.modality!r} with input shape {self.input_shape}: "
            + (
                "a convolutional stem suits the image."
                if self.modality == "image"
                else "dense layers over standardized features suit the table."
            ),
            f"Task {self.task!r}: {h.why}",
            f"Head: Dense({h.units}) -> {h.activation}; loss {h.loss}; metrics {list(h.metrics)}.",
        ]
        if self.baseline:
            lines.append(f"Baseline to beat: {self.baseline['description']}.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as written to card.json."""
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProblemCard:
        """Build a card from plain data, refusing unknown or missing fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(
                f"ProblemCard: unknown field(s) {unknown}; expected only {sorted(names)}."
            )
        required = {"modality", "task", "num_outputs", "input_shape"}
        missing = sorted(required - set(data))
        if missing:
            raise SpecError(f"ProblemCard: missing field(s) {missing}.")
        return cls(**data)

    def __repr__(self) -> str:
        h = self.head
        names = ", ".join(self.class_names[:10]) + (" ..." if len(self.class_names) > 10 else "")
        base = f"\n  baseline:    {self.baseline['description']}" if self.baseline else ""
        sp = self.split
        return (
            f"ProblemCard({self.dataset or 'unnamed data'})\n"
            f"  modality:    {self.modality}, input shape {self.input_shape}\n"
            f"  task:        {self.task}, {self.num_outputs} output(s)"
            + (f" [{names}]" if names else "")
            + f"\n  head:        Dense({h.units}) -> {h.activation}\n"
            f"  loss:        {h.loss}\n"
            f"  metrics:     {', '.join(h.metrics)}\n"
            f"  split:       seed {sp['seed']}, validation {sp['val_fraction']}, "
            f"test {sp['test_fraction']}"
            + (f"\n  read with:   {self.source_kwargs}" if self.source_kwargs else "")
            + base
        )


def check_split(split: Any) -> dict[str, Any]:
    """`split` as plain data {seed: int, val_fraction: float, test_fraction: float}, checked."""
    owner = "ProblemCard split"
    if not isinstance(split, dict) or sorted(split) != sorted(SPLIT_KEYS):
        raise SpecError(
            f"{owner}: expected a dict with keys {list(SPLIT_KEYS)}, got {split!r}. "
            f"Example: {DEFAULT_SPLIT}."
        )
    seed = params.check_int("seed", split["seed"], minimum=0, error=SpecError, owner=owner)
    fractions = {
        name: params.check_number(
            name, split[name], minimum=0.0, maximum=MAX_FRACTION, error=SpecError, owner=owner
        )
        for name in ("val_fraction", "test_fraction")
    }
    if sum(fractions.values()) >= 1.0:
        raise SpecError(
            f"{owner}: val_fraction + test_fraction must be below 1 so that training data "
            f"remain, got {fractions['val_fraction']} + {fractions['test_fraction']}."
        )
    return {"seed": seed, **fractions}


def check_source_options(options: Any) -> dict[str, Any]:
    """`options` as a plain JSON dict of a source's keyword arguments (`target` is its own
    field); a string is read as JSON or YAML, so `-p source_options '{sep: ";"}'` works."""
    owner = "ProblemCard source_options"
    if isinstance(options, str):
        import yaml

        try:
            options = yaml.safe_load(options) if options.strip() else {}
        except yaml.YAMLError as e:
            raise SpecError(
                f"{owner}: cannot read {options!r} as a dict ({e}); expected e.g. "
                '\'{"sep": ";", "na_values": ["?"]}\'.'
            ) from e
    if options is None:
        options = {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise SpecError(
            f"{owner}: expected a dict of option names to values, e.g. "
            f'{{"sep": ";", "na_values": ["?"], "image_size": [28, 28]}}, got {options!r}.'
        )
    if "target" in options:
        raise SpecError(f"{owner}: give the target column as target=, not in source_options.")
    try:
        return json.loads(json.dumps(options))  # tuples -> lists: what card.json holds
    except TypeError as e:
        raise SpecError(f"{owner}: values must be plain JSON data ({e}), got {options!r}.") from e


def _validate(card: ProblemCard) -> None:
    params.check_choice("modality", card.modality, MODALITIES, error=SpecError, owner="ProblemCard")
    params.check_choice("task", card.task, TASKS, error=SpecError, owner="ProblemCard")
    n, names = card.num_outputs, card.class_names
    params.check_int("num_outputs", n, minimum=1, error=SpecError, owner="ProblemCard")
    if not card.input_shape or min(card.input_shape) < 1:
        raise SpecError(
            f"ProblemCard: input_shape must be non-empty positive sizes, got {card.input_shape}."
        )
    if card.modality == "image" and len(card.input_shape) != 3:
        raise SpecError(
            f"ProblemCard: an image input_shape is (height, width, channels), got "
            f"{card.input_shape}. Add the channel axis, e.g. (8, 8, 1)."
        )
    if card.modality == "tabular" and len(card.input_shape) != 1:
        raise SpecError(
            f"ProblemCard: a tabular input_shape is (n_features,), got {card.input_shape}."
        )
    if card.task == "binary" and (n != 2 or (names and len(names) != 2)):
        count = len(names) if names else n
        raise SpecError(
            f"ProblemCard: a binary task has exactly 2 classes, got {count}. "
            "Use task='multiclass' for one-of-N with N > 2."
        )
    if card.task == "multiclass" and n < 3:
        raise SpecError(
            f"ProblemCard: a multiclass task needs at least 3 classes, got {n}. "
            "Use task='binary' for two classes."
        )
    if card.task == "regression" and names:
        raise SpecError(
            f"ProblemCard: a regression task predicts numbers and has no class names, got "
            f"{list(names)[:5]}. Drop class_names, or use a classification task."
        )
    if card.task in ("multiclass", "multilabel") and names and len(names) != n:
        raise SpecError(
            f"ProblemCard: {len(names)} class names for num_outputs={n}; give one name per output."
        )
    allowed = card.head.activation
    if card.activation is not None and card.activation != allowed:
        raise SpecError(
            f"ProblemCard: activation {card.activation!r} does not fit task {card.task!r}; "
            f"expected {allowed!r}. {card.head.why}"
        )


def compute_baseline(
    task: str,
    y_train: np.ndarray,
    y_test: np.ndarray | None = None,
    *,
    class_names: Sequence[str] = (),
) -> dict:
    """What a model that ignores its input scores: the number every model must beat.

    The predictor is learned on `y_train` (the training split's labels) and scored on `y_test`
    (the test split's, where models are scored); without `y_test`, on `y_train` itself.
    Classification: the majority class (multilabel: each label's majority), its accuracy.
    Regression: the median, which minimises the reported MAE; the mean, which minimises MSE,
    is scored beside it.
    """
    held_out = y_test is not None
    y_train = np.asarray(y_train)
    y_test = np.asarray(y_test) if held_out else y_train
    if y_train.size == 0 or y_test.size == 0:
        which = ("training " if y_train.size == 0 else "test ") if held_out else ""
        fix = " (a test split needs test_fraction > 0)" if which == "test " else ""
        raise SpecError(
            f"compute_baseline: got no {which}labels; expected a non-empty label array{fix}."
        )
    learned = " in the training split" if held_out else ""
    scored = "on the test split" if held_out else "on these labels"
    if task in ("binary", "multiclass"):
        values, counts = np.unique(y_train, return_counts=True)
        label = values[int(np.argmax(counts))]
        name = class_names[int(label)] if len(class_names) > int(label) else str(label)
        acc = float(np.mean(y_test == label))
        return {
            "metric": "accuracy",
            "value": round(acc, 4),
            "predictor": f"majority class {name!r}{learned}",
            "description": f"always predicting class {name!r}, the majority{learned}, scores "
            f"accuracy {acc:.3f} {scored}",
        }
    if task == "multilabel":
        majority = y_train.reshape(len(y_train), -1).mean(axis=0) > 0.5  # one answer per label
        acc = float((y_test.reshape(len(y_test), -1) == majority).mean())
        return {
            "metric": "binary_accuracy",
            "value": round(acc, 4),
            "predictor": f"per-label majority{learned}",
            "description": f"predicting each label's majority{learned} scores binary accuracy "
            f"{acc:.3f} {scored}",
        }
    if task == "regression":
        fit = y_train.reshape(len(y_train), -1).astype(float)
        target = y_test.reshape(len(y_test), -1).astype(float)
        mae = float(np.abs(target - np.median(fit, axis=0)).mean())
        mse = float(((target - fit.mean(axis=0)) ** 2).mean())
        targets = "the training targets" if held_out else "the targets"
        return {
            "metric": "mae",
            "value": round(mae, 4),
            "mse": round(mse, 4),
            "predictor": f"median of {targets} (for MAE), their mean (for MSE)",
            "description": f"always predicting {targets}' median (which minimises MAE) scores "
            f"MAE {mae:.3f} {scored}; their mean (which minimises MSE) scores MSE {mse:.3f}",
        }
    raise SpecError(f"compute_baseline: unknown task {task!r}; expected one of {list(TASKS)}.")


def identify(
    y: np.ndarray,
    *,
    modality: str,
    task: str,
    input_shape: Sequence[int],
    class_names: Sequence[str] = (),
    dataset: str = "",
    split: dict[str, Any] | None = None,
    y_train: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    target: str | None = None,
    source_options: dict[str, Any] | None = None,
) -> ProblemCard:
    """Make a card from the labels `y`: count the outputs, record the split, compute the baseline.

    `y_train` and `y_test` are the training and test labels of `split` (drawn by the caller,
    e.g. with `workbench.data.split_targets`): the baseline is learned on the first and scored
    on the second. Without them it is learned and scored on `y` itself. `target` and
    `source_options` record how the data were read, for the later stages to read them alike.
    """
    y = np.asarray(y)
    if (y_train is None) != (y_test is None):
        raise SpecError(
            "identify: expected both y_train and y_test (the split's training and test labels) "
            f"or neither, got only {'y_train' if y_test is None else 'y_test'}."
        )
    if task in ("binary", "multiclass"):
        n = len(class_names) if class_names else int(np.unique(y).size)
        if y.ndim != 1:
            raise SpecError(
                f"identify: {task} labels are one integer per example (1-D), got shape {y.shape}."
                + (" For independent labels use task='multilabel'." if y.ndim == 2 else "")
            )
    elif task == "multilabel":
        if y.ndim != 2:
            raise SpecError(
                f"identify: multilabel targets are a 0/1 matrix (examples, labels), got shape "
                f"{y.shape}."
            )
        n = y.shape[1]
    else:
        n = 1 if y.ndim == 1 else y.shape[1]
    card = ProblemCard(
        modality,
        task,
        n,
        tuple(input_shape),
        tuple(class_names),
        dataset,
        target=target,
        source_options=dict(source_options or {}),
    )
    return card.with_split(split or DEFAULT_SPLIT, y if y_train is None else y_train, y_test)


def save_card(card: ProblemCard, run_dir: str | Path) -> Path:
    """Write the card to `<run_dir>/problem/card.json` and make it stage 1's current version."""
    path = atomic_write_json(Path(run_dir) / CARD_FILE, card.to_dict())
    set_current(run_dir, "identify", "card-" + sha256_bytes(to_json(card.to_dict()).encode())[:12])
    return path


def load_card(run_dir: str | Path) -> ProblemCard:
    """Read and validate the card of `run_dir` (a SpecError says what is wrong with it)."""
    path = Path(run_dir) / CARD_FILE
    if not path.is_file():
        raise SpecError(
            f"No problem card at {path}; run notebook 01_identify or save_card() first."
        )
    try:
        data = read_json(path)
    except ValueError as e:
        raise SpecError(f"Problem card {path} is not valid JSON ({e}).") from e
    if not isinstance(data, dict):
        raise SpecError(f"Problem card {path}: expected a JSON object, got {type(data).__name__}.")
    return ProblemCard.from_dict(data)
