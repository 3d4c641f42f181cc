"""Stage 4: train the model on the data version, on top of Keras' `model.fit`.

    config = TrainConfig.for_profile("smoke")
    result = train(spec, version, config, card=card, run_dir=run.dir)   # -> TrainResult
    model = load_trained(run.dir)                                       # the current model

What `train` adds to `fit`: the data feed, a learning-rate schedule with warmup, class weights,
a new regression head that starts at the training targets' mean, augmentation of training
batches only, early stopping, the best epoch kept as `best.keras`, resume after an interruption
(Keras' `BackupAndRestore`), the trained model and its metrics in `<run_dir>/train/<run_id>/`,
and (optionally) an MLflow run. Progress is Keras' own, one line per epoch; a notebook passes a
live plot in `callbacks`. This module imports no view.

One rule selects the model that is tested and saved as `model.keras`: with a validation split
and `checkpoint=True`, the best epoch by validation loss (its weights restored from
`best.keras`); otherwise the final weights. `metrics.json` and `TrainResult.selected` say which.

The Keras classes it uses live at module top level elsewhere: the schedule in
`workbench.schedules` (the module that registers what a saved model refers to), the callbacks in
`workbench.callbacks`, the feed in `workbench.data.serving`. The functions that need them import
them when called, so importing this module loads no Keras (`TrainConfig` needs no model).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params
from workbench.config import (
    current,
    get_profile,
    load_keras,
    resolve_run_dir,
    seed_everything,
    set_current,
)
from workbench.data import DatasetVersion, augmentation
from workbench.design import ModelSpec, build, check_model
from workbench.errors import ParameterError
from workbench.files import atomic_write_json, read_json, sha256_bytes, to_json

if TYPE_CHECKING:
    import keras

    from workbench.identify import ProblemCard

STAGE = "train"  # key of this stage in the run directory's index
TRAIN_DIR = "train"  # runs live in <run_dir>/train/<run_id>/
SCHEDULES = ("cosine", "constant")
OPTIMIZERS = ("adam",)
CLASS_WEIGHTS = ("balanced", None)  # or a {class index: weight} dict
# The validation numbers that rank runs (sweeps, run comparisons): the first one the runs
# measured chooses; True when higher is better. Test numbers never choose.
SELECTION_METRICS = {
    "val_accuracy": True,
    "val_binary_accuracy": True,
    "val_mae": False,
    "val_loss": False,
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: one value per knob, checked when the config is made."""

    epochs: int = 1  # passes over the training split
    batch_size: int = 64  # examples per gradient step
    learning_rate: float = 2e-3  # peak learning rate (reached at the end of the warmup)
    warmup_epochs: float = 0.0  # linear warmup from ~0 to learning_rate; 0 = start at the peak
    schedule: str = "constant"  # after warmup: "cosine" decays to 0 at the last step, "constant"
    optimizer: str = "adam"  # Adam: per-weight step sizes, forgiving of the learning rate
    patience: int = 0  # stop after this many epochs without a better val_loss (stop only); 0 = off
    class_weight: str | dict[int, float] | None = None  # "balanced" = n / (k * count) per class
    augment: bool = False  # random rotation/translation/zoom of training images (never at test)
    rotation: float = 0.05  # augmentation: fraction of a full turn
    translation: float = 0.1  # augmentation: fraction of the height and width
    zoom: float = 0.1  # augmentation: fraction of the size
    seed: int = 0  # seeds weights, shuffling and augmentation: same seed, same model
    checkpoint: bool = True  # keep the epoch with the lowest val_loss as best.keras, and select it

    def __post_init__(self) -> None:
        params.check_int("epochs", self.epochs, minimum=1)
        params.check_int("batch_size", self.batch_size, minimum=1)
        params.check_number(
            "learning_rate",
            self.learning_rate,
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            hint="Adam usually works with 1e-4 to 1e-2.",
        )
        params.check_number("warmup_epochs", self.warmup_epochs, minimum=0.0)
        params.check_choice("schedule", self.schedule, SCHEDULES)
        params.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        params.check_int("patience", self.patience, minimum=0)
        if not isinstance(self.class_weight, dict):
            params.check_choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        params.check_bool("augment", self.augment)
        for name in ("rotation", "translation", "zoom"):
            params.check_number(name, getattr(self, name), minimum=0.0, maximum=1.0)
        params.check_int("seed", self.seed, minimum=0)
        params.check_bool("checkpoint", self.checkpoint)

    @classmethod
    def for_profile(
        cls, profile: str, *, card: ProblemCard | None = None, **changes: Any
    ) -> TrainConfig:
        """The profile's recipe: `smoke` = 8 epochs on digits, `full` = the 98 % mnist5k recipe.
        With a `card` the recipe fits its modality (image augmentation only for images).
        A change given as None keeps the profile's value (a notebook parameter left unset)."""
        prof = get_profile(profile)
        recipe = {
            "epochs": prof.epochs,
            "batch_size": prof.batch_size,
            **PROFILE_CONFIGS[prof.name],
        }
        if card is not None and card.modality != "image":
            recipe["augment"] = False
        given = {k: v for k, v in changes.items() if v is not None}
        return cls(**{**recipe, **given})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (class_weight keys as strings, as JSON needs)."""
        d = dataclasses.asdict(self)
        if isinstance(self.class_weight, dict):
            d["class_weight"] = {str(k): float(v) for k, v in self.class_weight.items()}
        return d


PROFILE_CONFIGS: dict[str, dict[str, Any]] = {  # on top of the profile's epochs and batch size
    "smoke": {},  # 8 epochs (config.PROFILES), constant learning rate, no augmentation
    # compact_bn + augmentation + BN momentum 0.9 (in the spec) + cosine Adam 2e-3 with warmup,
    # 28 epochs: 98.6 % +- 0.5 test on mnist5k in ~96 s on 2 cores (seeds 0-2, selected epoch,
    # benchmarks/full_profile.py; a first measurement on a busier machine: 98.2 % in ~250 s).
    "full": {
        "warmup_epochs": 2.0,
        "schedule": "cosine",
        "augment": True,
        "rotation": 0.05,
        "translation": 0.1,
        "zoom": 0.1,
    },
}


@dataclass
class TrainResult:
    """What a training run produced: where it is, how it went, and the trained model."""

    run_id: str  # <model name>-<hash of model, data version and config>
    path: Path  # <run_dir>/train/<run_id>/
    history: dict[str, list[float]]  # per-epoch logs of the whole run (across resumes)
    metrics: dict[str, Any]  # what metrics.json holds
    model: Any = field(repr=False, default=None)  # the trained keras.Model
    mlflow_run_id: str | None = None  # the MLflow run, when tracked

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def epochs(self) -> int:
        return self.metrics["epochs_run"]

    @property
    def best_epoch(self) -> int:
        """Index (0-based) of the epoch with the lowest monitored loss."""
        return self.metrics["best_epoch"]

    @property
    def selected(self) -> str:
        """Which weights the model holds (tested, saved): "best epoch 6 of 8 by val_loss"."""
        return self.metrics["selected"]

    @property
    def test(self) -> dict[str, float]:
        return self.metrics["test"]

    @property
    def seconds(self) -> float:
        return self.metrics["seconds"]

    def __repr__(self) -> str:
        """What a committed notebook output may show: nothing machine-specific or random (no
        absolute path, time or MLflow id; those stay attributes and in metrics.json)."""
        val = ", ".join(f"{k} {v:.4f}" for k, v in self.metrics["validation"].items())
        test = ", ".join(f"{k} {v:.4f}" for k, v in self.test.items())
        return "\n".join(
            [
                f"TrainResult({self.run_id!r})",
                f"  epochs:  {self.epochs}",
                f"  weights: {self.selected}" + (f" ({val})" if val else ""),
                f"  test:    {test}",
                f"  model:   {TRAIN_DIR}/{self.run_id}/{self.model_path.name}",
            ]
        )


def learning_rate_schedule(
    config: TrainConfig, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The config's schedule over `epochs * steps_per_epoch` optimizer steps (a Keras
    `LearningRateSchedule`: saved with the optimizer, and callable on a step to plot it)."""
    from workbench.schedules import WarmupSchedule

    params.check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    return WarmupSchedule(
        config.learning_rate,
        total_steps=config.epochs * steps_per_epoch,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
        decay=config.schedule,
    )


# ---- checks ------------------------------------------------------------------------------


def _check_config(card: ProblemCard, config: TrainConfig) -> None:
    if config.augment and card.modality != "image":
        raise ParameterError(
            f"Parameter 'augment': expected False for a {card.modality} card, got True. "
            "Rotation, translation and zoom only make sense for images."
        )
    if config.class_weight is not None and card.task not in ("binary", "multiclass"):
        raise ParameterError(
            f"Parameter 'class_weight': expected None for a {card.task} task, got "
            f"{config.class_weight!r}. Class weights apply to binary and multiclass tasks."
        )


def class_weights(config: TrainConfig, y_train: np.ndarray, n_classes: int) -> dict | None:
    """Keras' `class_weight` dict: "balanced" weighs class c by n / (k * count_c)."""
    cw = config.class_weight
    if cw is None:
        return None
    if cw == "balanced":
        counts = np.bincount(np.asarray(y_train).astype(int), minlength=n_classes)
        return {c: float(len(y_train) / (n_classes * max(n, 1))) for c, n in enumerate(counts)}
    bad = [k for k in cw if not params.is_integer(k) or not 0 <= k < n_classes]
    if bad or any(not params.is_number(v) or v <= 0 for v in cw.values()):
        raise ParameterError(
            f"Parameter 'class_weight': expected {{class index 0..{n_classes - 1}: weight > 0}}, "
            f"got {cw!r}."
        )
    return {c: float(cw.get(c, 1.0)) for c in range(n_classes)}


# ---- training ----------------------------------------------------------------------------


def make_run_id(model_or_spec, version: DatasetVersion, config: TrainConfig) -> str:
    """`<name>-<12 hex>` from the model (spec or architecture), data version and config: the
    same call gives the same id, which is how a re-run finds its backup and resumes."""
    if isinstance(model_or_spec, ModelSpec):
        name, arch = model_or_spec.name, model_or_spec.to_dict()
    else:
        name, arch = model_or_spec.name, model_or_spec.to_json()
    key = {"model": arch, "data": version.id, "config": config.to_dict()}
    return f"{name}-{sha256_bytes(to_json(key).encode())[:12]}"


def train(
    model_or_spec: keras.Model | ModelSpec,
    version: DatasetVersion,
    config: TrainConfig | None = None,
    *,
    card: ProblemCard,
    run_dir: str | Path,
    callbacks: tuple | list = (),
    track: bool = True,
    run_id: str | None = None,
    verbose: int = 2,
    test: bool = True,
) -> TrainResult:
    """Fit a model (built from a spec, or given) on `version`, save it and make it current.

    Re-running an interrupted call (same model, data and config) resumes after the last
    finished epoch. `callbacks` are extra Keras callbacks, e.g. `widgets.train.LivePlot()`.
    `verbose=2` prints one line per epoch with its metrics (good in notebooks and logs; no
    timings, so committed outputs stay machine-independent), 1 Keras' progress bar, 0 nothing.
    `test=False` leaves the test split unscored (metrics["test"] is empty): a loop that trains
    many candidates scores only the one it keeps, once, at the end.
    """
    from workbench.callbacks import BestCheckpoint, EpochLine, EpochLog
    from workbench.data.serving import feed

    params.check_choice("verbose", verbose, (0, 1, 2))
    test = params.check_bool("test", test)

    keras = load_keras()
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ParameterError(f"Parameter 'config': expected a TrainConfig, got {config!r}.")
    run_dir = resolve_run_dir(run_dir)
    start = time.perf_counter()
    seed_everything(config.seed)
    spec = model_or_spec if isinstance(model_or_spec, ModelSpec) else None
    model = build(spec, card) if spec else model_or_spec
    if not isinstance(model, keras.Model):
        raise ParameterError(
            f"train: expected a keras.Model or a ModelSpec, got {type(model_or_spec).__name__}."
        )
    check_model(model, card, version)
    _check_config(card, config)
    y_train = version.split("train")[1]
    if spec and card.task == "regression":
        _start_at_mean(model, y_train)
    weights = class_weights(config, y_train, card.num_outputs)
    run_id = run_id or make_run_id(model_or_spec, version, config)
    out = run_dir / TRAIN_DIR / run_id
    out.mkdir(parents=True, exist_ok=True)

    train_feed = feed(version, "train", batch_size=config.batch_size, seed=config.seed)
    val_feed = feed(version, "val", batch_size=config.batch_size)
    has_val = len(val_feed.x) > 0
    monitor = "val_loss" if has_val else "loss"
    fit_model = _with_augmentation(model, config) if config.augment else model
    optimizer = keras.optimizers.Adam(learning_rate_schedule(config, len(train_feed)))
    for m in {id(model): model, id(fit_model): fit_model}.values():
        m.compile(optimizer=optimizer, loss=card.head.loss, metrics=list(card.head.metrics))

    history_path = out / "history.json"
    backup_dir = out / "backup"
    resuming = backup_dir.is_dir()
    rows = read_json(history_path) if resuming and history_path.is_file() else []
    cbs = [
        keras.callbacks.BackupAndRestore(backup_dir=str(backup_dir)),
        EpochLog(history_path, rows),
    ]
    if config.checkpoint:
        cbs.append(
            BestCheckpoint(out / "best.keras", inner=model, prior=list(rows), monitor=monitor)
        )
    if verbose == 2:
        cbs.append(EpochLine(config.epochs))
    if config.patience:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience))
    tracker = None
    if track:
        from workbench import tracking

        tracker = tracking.start_tracking(
            run_id,
            params={"config": config.to_dict(), "spec": spec.to_dict() if spec else {}},
            tags=tracking.lineage_tags(version, card, model_name=model.name),
            resume=out / "mlflow_run_id",
        )
        cbs.append(tracker.epoch_callback())
    try:
        fit_model.fit(
            train_feed,
            validation_data=val_feed if has_val else None,
            epochs=config.epochs,
            class_weight=weights,
            callbacks=[*cbs, *callbacks],
            verbose=1 if verbose == 1 else 0,
        )
        history = history_from_rows(rows)
        selected_epoch, selected = _selection(history, has_val and config.checkpoint, has_val)
        if selected_epoch < len(history["loss"]) - 1:
            model.load_weights(out / "best.keras")  # the selected epoch's weights
        test = (
            model.evaluate(feed(version, "test", batch_size=256), verbose=0, return_dict=True)
            if test
            else {}
        )
        _save_model(model, out / "model.keras")
        selection = (selected_epoch, selected)
        metrics = _metrics(run_id, version, config, spec, history, test, monitor, start, selection)
        atomic_write_json(out / "metrics.json", metrics)
        set_current(run_dir, STAGE, run_id)
        if tracker:
            tracker.log_result(metrics, out, model=model, example=train_feed[0][0][:4])
    except BaseException:
        if tracker:
            tracker.end("KILLED")  # the backup remains: the same call resumes
        raise
    if tracker:
        tracker.end("FINISHED")
    return TrainResult(run_id, out, history, metrics, model, tracker.run_id if tracker else None)


def _start_at_mean(model, y_train: np.ndarray) -> None:
    """Set a new regression head's biases to the training targets' mean, so training starts
    at the mean-predictor baseline instead of 0 (diabetes progression is ~150: from 0 it takes
    many epochs just to find the targets' level)."""
    head = model.get_layer("logits")
    kernel, bias = head.get_weights()
    mean = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1).mean(axis=0)
    head.set_weights([kernel, mean.astype(bias.dtype)])


def _with_augmentation(model, config: TrainConfig):
    """`model` behind random augmentation layers (active in fit only, shared weights), so the
    saved `model` itself holds no augmentation."""
    keras = load_keras()
    inputs = keras.Input(shape=model.input_shape[1:], name="images")
    aug = augmentation(config.rotation, config.translation, config.zoom, seed=config.seed)
    return keras.Model(inputs, model(aug(inputs)), name=f"{model.name}_augmented")


def history_from_rows(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    """Per-epoch logs (one dict per epoch) -> Keras' History layout {metric: [value per epoch]},
    without the learning rate (the schedule, not a result)."""
    keys = list(rows[0]) if rows else []
    return {k: [r.get(k, float("nan")) for r in rows] for k in keys if k != "learning_rate"}


def _selection(history: dict[str, list[float]], best: bool, has_val: bool) -> tuple[int, str]:
    """(0-based epoch, description) of the weights the model keeps: with `best`, the epoch with
    the lowest val_loss; otherwise the last one."""
    n = len(history["loss"])
    if best:
        epoch = int(np.nanargmin(history["val_loss"]))
        return epoch, f"best epoch {epoch + 1} of {n} by val_loss"
    why = "checkpoint=False" if has_val else "no validation split"
    return n - 1, f"final weights of epoch {n} ({why})"


def _metrics(
    run_id, version, config, spec, history, test, monitor, start, selection
) -> dict[str, Any]:
    """What metrics.json holds; `selection` is (0-based epoch, description) of the weights
    that were tested and saved."""
    selected_epoch, selected = selection
    best_epoch = int(np.nanargmin(history[monitor]))
    prefix = "val_" if monitor.startswith("val_") else ""
    best = {k: v[best_epoch] for k, v in history.items() if k.startswith(prefix)}
    if not prefix:
        best = {k: v for k, v in best.items() if not k.startswith("val_")}
    return {
        "run_id": run_id,
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": best_epoch,
        "monitor": monitor,
        "best": best,
        "selected": selected,
        "selected_epoch": selected_epoch,
        "validation": {k: v[selected_epoch] for k, v in history.items() if k.startswith("val_")},
        "test": {k: float(v) for k, v in test.items()},
        "seconds": round(time.perf_counter() - start, 2),
        "data_version": version.id,
        "data_content_sha256": version.manifest.get("content_sha256"),
        "config": config.to_dict(),
        "spec": spec.to_dict() if spec else None,
    }


def _save_model(model, path: Path) -> Path:
    """`model.save` to a temporary .keras file next to `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_trained(run_dir: str | Path, run_id: str | None = None) -> keras.Model:
    """The trained model `run_id` (default: the current one) of `run_dir`, loaded with
    `safe_mode=True` (no arbitrary code from the file)."""
    import workbench.schedules  # noqa: F401 - registers the classes model.keras refers to

    keras = load_keras()
    run_dir = resolve_run_dir(run_dir)
    run_id = run_id or current(run_dir, STAGE)
    root = run_dir / TRAIN_DIR
    path = root / str(run_id) / "model.keras"
    if run_id is None or not path.is_file():
        found = sorted(p.parent.name for p in root.glob("*/model.keras")) if root.is_dir() else []
        raise ParameterError(
            f"Parameter 'run_id': no trained model {run_id!r} in {str(root)!r}; trained runs "
            f"there: {found}. Run notebook 04_train or train() first."
        )
    return keras.saving.load_model(path, safe_mode=True)
