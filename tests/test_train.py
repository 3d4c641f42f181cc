"""Stage 4: training is reproducible, resumable, saves what it says, and refuses bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import TINY, card_for_version
from matplotlib.figure import Figure

from workbench.config import current
from workbench.data import prepare
from workbench.design import build, preset
from workbench.errors import ParameterError, SpecError
from workbench.identify import identify
from workbench.train import (
    TrainConfig,
    learning_rate_schedule,
    load_trained,
    make_run_id,
    train,
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train-digits")
    version = prepare("digits", run_dir=run_dir)
    return run_dir, version, card_for_version(version)


@pytest.fixture(scope="module")
def trained(digits):
    """One run with every option on: warmup + cosine, balanced classes, augmentation."""
    run_dir, version, card = digits
    config = TrainConfig(
        epochs=2, warmup_epochs=0.5, schedule="cosine", class_weight="balanced", augment=True
    )
    return train(TINY, version, config, card=card, run_dir=run_dir, track=False, verbose=0)


def weights(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def test_same_seed_gives_identical_weights_and_history(digits, tmp_path):
    _, version, card = digits
    config = TrainConfig.for_profile("smoke", seed=3, epochs=2)
    runs = [
        train(TINY, version, config, card=card, run_dir=tmp_path / d, track=False, verbose=0)
        for d in ("a", "b")
    ]
    assert runs[0].history == runs[1].history
    for w0, w1 in zip(weights(runs[0].model), weights(runs[1].model), strict=True):
        np.testing.assert_array_equal(w0, w1)
    assert runs[0].run_id == runs[1].run_id


def test_saves_model_checkpoint_metrics_and_makes_it_current(digits, trained):
    run_dir, version, _ = digits
    folder = run_dir / "train" / trained.run_id
    for name in ("model.keras", "best.keras", "metrics.json", "history.json"):
        assert (folder / name).is_file(), name
    assert not (folder / "backup").exists()  # BackupAndRestore cleans up after a full run
    assert current(run_dir, "train") == trained.run_id
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["data_version"] == version.id
    assert set(metrics["test"]) == {"loss", "accuracy"}
    assert list(folder.glob(".*.keras")) == []  # no temporary file left behind

    loaded = load_trained(run_dir)  # safe_mode=True
    x = version.transform.apply(version.split("test")[0][:16])
    np.testing.assert_allclose(
        loaded.predict_on_batch(x), trained.model.predict_on_batch(x), rtol=1e-5, atol=1e-6
    )
    assert "augmentation" not in [layer.name for layer in loaded.layers]
    assert loaded.get_layer("probabilities") is not None
    best = load_trained(run_dir, trained.run_id)
    assert best.name == "tiny"


def test_result_repr_is_readable_and_machine_independent(trained):
    text = repr(trained)
    assert text.startswith(f"TrainResult({trained.run_id!r})")
    assert "epochs:  2" in text and "test:    accuracy" in text
    assert f"weights: {trained.selected} (val_accuracy " in text
    assert f"model:   train/{trained.run_id}/model.keras" in text
    # nothing machine-specific or random: no absolute path, no seconds, no MLflow run id
    assert str(trained.path) not in text and " s\n" not in text and "mlflow" not in text
    assert trained.seconds > 0 and trained.metrics["seconds"] == trained.seconds
    assert len(trained.history["loss"]) == 2 and "val_accuracy" in trained.history


class Interrupted(Exception):
    pass


class InterruptAfter:
    """Raises at the end of epoch `epoch` (0-based), like a kernel interrupt."""

    def __new__(cls, epoch):
        import keras

        class _Interrupt(keras.callbacks.Callback):
            def on_epoch_end(self, e, logs=None):
                if e == epoch:
                    raise Interrupted(f"stopped after epoch {e + 1}")

        return _Interrupt()


def epoch_counter():
    import keras

    class Count(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(epoch)

    return Count()


def test_resume_after_interruption_continues_from_the_last_epoch(digits, tmp_path):
    _, version, card = digits
    config = TrainConfig(epochs=3)
    first = epoch_counter()
    with pytest.raises(Interrupted):
        train(TINY, version, config, card=card, run_dir=tmp_path, track=False, verbose=0,
              callbacks=[first, InterruptAfter(0)])  # fmt: skip
    run_id = make_run_id(TINY, version, config)
    assert first.epochs == [0]
    assert (tmp_path / "train" / run_id / "backup").is_dir()
    assert not (tmp_path / "train" / run_id / "model.keras").exists()
    interrupted_history = json.loads((tmp_path / "train" / run_id / "history.json").read_text())

    second = epoch_counter()
    result = train(TINY, version, config, card=card, run_dir=tmp_path, track=False, verbose=0,
                   callbacks=[second])  # fmt: skip
    assert second.epochs == [1, 2]  # only the missing epochs ran
    assert result.epochs == 3 and len(result.history["loss"]) == 3
    assert result.history["loss"][0] == interrupted_history[0]["loss"]  # the history continues
    assert result.run_id == run_id


class Scramble:
    """Adds large noise to every weight when epoch `epoch` (0-based) begins: that epoch and the
    ones after it validate worse than the epochs before."""

    def __new__(cls, epoch):
        import keras

        class _Scramble(keras.callbacks.Callback):
            def on_epoch_begin(self, e, logs=None):
                if e == epoch:
                    rng = np.random.default_rng(0)
                    noisy = [w + rng.normal(0, 5, w.shape) for w in self.model.get_weights()]
                    self.model.set_weights(noisy)

        return _Scramble()


def _evaluate(model, version, split):
    from workbench.data.serving import feed

    return model.evaluate(feed(version, split, batch_size=256), verbose=0, return_dict=True)


def test_the_best_epoch_by_val_loss_is_tested_and_saved(digits, tmp_path):
    _, version, card = digits
    config = TrainConfig(epochs=2, learning_rate=1e-2)
    result = train(TINY, version, config, card=card, run_dir=tmp_path, track=False, verbose=0,
                   callbacks=[Scramble(1)])  # fmt: skip
    val_loss = result.history["val_loss"]
    assert val_loss[1] > val_loss[0]  # the final weights are worse than epoch 1's
    assert result.selected == "best epoch 1 of 2 by val_loss"
    saved = json.loads((result.path / "metrics.json").read_text())
    assert saved["selected"] == result.selected and saved["selected_epoch"] == 0
    assert saved["validation"] == {k: v[0] for k, v in result.history.items() if "val_" in k}
    # the model in hand, the one tested and model.keras are epoch 1's
    assert _evaluate(result.model, version, "val")["loss"] == pytest.approx(val_loss[0], rel=1e-4)
    loaded = load_trained(tmp_path, result.run_id)
    assert _evaluate(loaded, version, "test")["loss"] == pytest.approx(result.test["loss"])

    off = train(TINY, version, config.replace(checkpoint=False), card=card, run_dir=tmp_path,
                track=False, verbose=0, callbacks=[Scramble(1)])  # fmt: skip
    assert off.selected == "final weights of epoch 2 (checkpoint=False)"
    assert off.metrics["selected_epoch"] == 1
    assert off.metrics["validation"]["val_loss"] == off.history["val_loss"][1]
    assert _evaluate(off.model, version, "test")["loss"] == pytest.approx(off.test["loss"])


def test_without_a_validation_split_the_final_weights_are_selected(tmp_path):
    version = prepare("digits", run_dir=tmp_path, val_fraction=0.0)
    card = card_for_version(version)
    result = train(TINY, version, TrainConfig(epochs=1), card=card, run_dir=tmp_path,
                   track=False, verbose=0)  # fmt: skip
    assert result.selected == "final weights of epoch 1 (no validation split)"
    assert result.metrics["validation"] == {} and "(val_" not in repr(result)


def test_a_resumed_run_selects_its_best_epoch_from_before_the_interruption(digits, tmp_path):
    _, version, card = digits
    config = TrainConfig(epochs=3, learning_rate=1e-2)
    with pytest.raises(Interrupted):
        train(TINY, version, config, card=card, run_dir=tmp_path, track=False, verbose=0,
              callbacks=[InterruptAfter(0)])  # fmt: skip
    result = train(TINY, version, config, card=card, run_dir=tmp_path, track=False, verbose=0,
                   callbacks=[Scramble(1)])  # fmt: skip
    assert result.selected == "best epoch 1 of 3 by val_loss"
    val_loss = result.history["val_loss"][0]
    assert _evaluate(result.model, version, "val")["loss"] == pytest.approx(val_loss, rel=1e-4)


def test_warmup_then_cosine_schedule_values():
    config = TrainConfig(epochs=4, learning_rate=0.01, warmup_epochs=1, schedule="cosine")
    schedule = learning_rate_schedule(config, steps_per_epoch=10)  # 40 steps, 10 of warmup
    lr = [float(schedule(s)) for s in (0, 4, 9, 10, 25, 40)]
    np.testing.assert_allclose(lr, [0.001, 0.005, 0.01, 0.01, 0.005, 0.0], atol=1e-7)
    constant = learning_rate_schedule(config.replace(schedule="constant"), steps_per_epoch=10)
    assert float(constant(39)) == pytest.approx(0.01)
    again = type(schedule).from_config(schedule.get_config())
    assert float(again(25)) == pytest.approx(0.005)


def test_profiles():
    smoke, full = TrainConfig.for_profile("smoke"), TrainConfig.for_profile("full")
    assert smoke.epochs == 8 and not smoke.augment  # real learning curves, in seconds
    assert (full.epochs, full.batch_size, full.learning_rate, full.schedule) == (
        28,
        64,
        2e-3,
        "cosine",
    )
    assert full.augment and (full.rotation, full.translation, full.zoom) == (0.05, 0.1, 0.1)
    assert TrainConfig.for_profile("full", epochs=3).epochs == 3
    assert TrainConfig.for_profile("full", epochs=None, seed=None) == full  # None: keep
    wine = identify(np.arange(30) % 3, modality="tabular", task="multiclass", input_shape=(13,))
    assert not TrainConfig.for_profile("full", card=wine).augment  # images only
    with pytest.raises(ParameterError, match="Parameter 'profile'"):
        TrainConfig.for_profile("huge")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"optimizer": "sgd"}, "Parameter 'optimizer': expected one of ['adam'], got 'sgd'."),
        ({"schedule": "step"}, "Parameter 'schedule': expected one of ['cosine', 'constant']"),
        ({"epochs": 0}, "Parameter 'epochs': expected an integer >= 1, got 0."),
        ({"learning_rate": -0.1}, "Parameter 'learning_rate': expected a number in (0, 1], got"),
        ({"class_weight": "auto"}, "Parameter 'class_weight': expected one of ['balanced', None]"),
        ({"patience": -1}, "Parameter 'patience': expected an integer >= 0, got -1."),
    ],
)
def test_bad_config_values_are_refused(changes, message):
    with pytest.raises(ParameterError) as err:
        TrainConfig(**changes)
    assert message in str(err.value)


def test_model_that_does_not_fit_the_card_is_refused(digits, tmp_path):
    _, version, card = digits
    three = identify(np.arange(30) % 3, modality="image", task="multiclass", input_shape=(8, 8, 1))
    model = build(TINY, three)
    with pytest.raises(SpecError, match=r"outputs shape \(3,\), but a multiclass card with 10"):
        train(model, version, card=card, run_dir=tmp_path, track=False)


def test_options_that_do_not_fit_the_task_are_refused(tmp_path):
    version = prepare("sklearn:diabetes", run_dir=tmp_path, task="regression")
    card, spec = card_for_version(version), None
    spec = preset("tabular", card)
    with pytest.raises(ParameterError, match="Parameter 'augment': expected False for a tabular"):
        train(spec, version, TrainConfig(augment=True), card=card, run_dir=tmp_path, track=False)
    with pytest.raises(ParameterError, match="'class_weight': expected None for a regression"):
        train(spec, version, TrainConfig(class_weight="balanced"), card=card, run_dir=tmp_path)
    with pytest.raises(ParameterError, match="Parameter 'run_id': no trained model None"):
        load_trained(tmp_path)


def test_class_weight_dict_is_checked(digits, tmp_path):
    _, version, card = digits
    config = TrainConfig(class_weight={0: 2.0, 12: 1.0})
    with pytest.raises(ParameterError, match=r"expected \{class index 0..9: weight > 0\}"):
        train(TINY, version, config, card=card, run_dir=tmp_path, track=False)


@pytest.mark.parametrize(
    "source, task, spec_name, metric",
    [
        ("sklearn:breast_cancer", "binary", "tabular", "accuracy"),
        ("sklearn:wine", "multiclass", "tabular", "accuracy"),
        ("sklearn:diabetes", "regression", "tabular", "mae"),
        ("digits", "multilabel", "tiny", "binary_accuracy"),
    ],
)
def test_every_task_trains_end_to_end(tmp_path, source, task, spec_name, metric):
    version = prepare(source, run_dir=tmp_path, task=task)
    card = card_for_version(version)
    spec = TINY if spec_name == "tiny" else preset(spec_name, card)
    epochs = 3 if card.modality == "image" else 8  # 40 or 2-13 steps per epoch
    config = TrainConfig(epochs=epochs, learning_rate=1e-2, batch_size=32)
    weight = {"class_weight": "balanced"} if task in ("binary", "multiclass") else {}
    result = train(spec, version, config.replace(**weight), card=card, run_dir=tmp_path,
                   track=False, verbose=0)  # fmt: skip
    assert result.epochs == epochs and metric in result.test
    baseline = card.baseline["value"]
    if metric == "mae":
        assert result.test["mae"] < baseline  # better than always predicting the mean
    else:
        assert result.test[metric] > baseline  # better than the majority class
    assert load_trained(tmp_path).output_shape == (None, card.head.units)


def test_live_plot_updates_headless_and_as_a_callback(digits, tmp_path):
    from workbench.widgets.train import LivePlot

    live = LivePlot()
    assert live.figure is None and live.png == b""
    live.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.4})
    first = live.png
    live.on_epoch_end(1, {"loss": 0.5, "accuracy": 0.8, "val_loss": 0.7, "val_accuracy": 0.7})
    assert isinstance(live.figure, Figure)
    assert live.png and live.png != first and bytes(live.widget.children[1].value) == live.png
    assert live.history["val_accuracy"] == [0.4, 0.7]
    assert "epoch 2" in live.status
    assert [ax.get_xlabel() for ax in live.figure.axes] == ["epoch", "epoch"]

    _, version, card = digits
    live = LivePlot()
    train(TINY, version, TrainConfig(epochs=1), card=card, run_dir=tmp_path, track=False,
          verbose=0, callbacks=[live])  # fmt: skip
    assert sorted(live.rows) == [0] and live.png
    assert repr(live) == "LivePlot(1 epochs seen, every=1)"


def test_a_new_regression_head_starts_at_the_training_mean():
    from workbench.train import _start_at_mean

    card = identify(np.array([140.0, 160.0, 150.0]), modality="tabular", task="regression",
                    input_shape=(4,))  # fmt: skip
    model = build(preset("tabular", card), card)
    _start_at_mean(model, np.array([140.0, 160.0, 150.0], np.float32))
    np.testing.assert_allclose(model.get_layer("logits").get_weights()[1], [150.0])


LOAD_IN_A_FRESH_PROCESS = """
import json, sys
from pathlib import Path

import keras
import numpy as np

import workbench.schedules  # the one workbench import a saved model needs

folder = Path(sys.argv[1])
x = np.load(folder / "x.npy")
schedules = []
for i, path in enumerate(sys.argv[2:]):
    model = keras.saving.load_model(path, safe_mode=True)
    np.save(folder / f"predicted{i}.npy", np.asarray(model.predict_on_batch(x)))
    schedules.append(model.optimizer.get_config()["learning_rate"]["registered_name"])
others = ("workbench.train", "workbench.data", "workbench.callbacks")
print(json.dumps({"schedules": schedules, "imported": [m for m in others if m in sys.modules]}))
"""


def test_saved_model_loads_in_a_fresh_process_that_imports_only_schedules(
    digits, trained, tmp_path
):
    _, version, _ = digits
    x = version.transform.apply(version.split("test")[0][:8])
    np.save(tmp_path / "x.npy", x)
    # A model saved before the schedule moved to workbench.schedules names workbench.train as
    # its module; Keras finds the class by its registered name, workbench>WarmupSchedule.
    before = tmp_path / "saved_before.keras"
    with zipfile.ZipFile(trained.model_path) as src, zipfile.ZipFile(before, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                assert b'"module": "workbench.schedules"' in data
                data = data.replace(b'"workbench.schedules"', b'"workbench.train"')
            dst.writestr(item, data)

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = [str(tmp_path), str(trained.model_path), str(before)]
    out = subprocess.run([sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, *args], env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"schedules": ["workbench>WarmupSchedule"] * 2, "imported": []}
    expected = trained.model.predict_on_batch(x)
    for i in range(2):
        predicted = np.load(tmp_path / f"predicted{i}.npy")
        np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-6)


def test_epoch_lines_carry_metrics_and_no_timings(digits, tmp_path, capsys):
    _, version, card = digits
    train(TINY, version, TrainConfig(epochs=2), card=card, run_dir=tmp_path, track=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert [line.split(":")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert "val_accuracy" in lines[0] and "ms/step" not in lines[0] and " s " not in lines[0]
