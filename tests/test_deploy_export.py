"""Stage 5, export: the inference model takes raw inputs, and every format agrees with it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from conftest import TINY, card_for_version, write_messy_csv

from workbench.data import prepare
from workbench.deploy import export as export_module
from workbench.deploy.export import (
    FORMATS,
    KerasRunner,
    OnnxRunner,
    SavedModelRunner,
    artifact_sha256,
    export_model,
    fastest_backend,
    folder_sha256,
    latency_table,
    load_onnx,
    open_runner,
    read_export,
    verify_export,
)
from workbench.deploy.inference import describe_input, inference_model, raw_inputs
from workbench.design import preset
from workbench.errors import ParameterError, ServingError
from workbench.tables import format_table
from workbench.train import TrainConfig, train

FAST = TrainConfig(epochs=2, learning_rate=1e-2, batch_size=32)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("export-digits")
    version = prepare("digits", run_dir=run_dir)
    card = card_for_version(version)
    result = train(TINY, version, FAST, card=card, run_dir=run_dir, track=False, verbose=0)
    out = run_dir / "exports" / "digits"
    return run_dir, version, result, out, export_model(result, out)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A messy CSV: NA and empty cells, a text column, a column name with a comma."""
    run_dir = tmp_path_factory.mktemp("export-table")
    csv = write_messy_csv(run_dir / "penguins.csv")
    version = prepare(f"csv:{csv}", run_dir=run_dir, target="species")
    card = card_for_version(version)
    spec = preset("tabular", card)
    result = train(spec, version, FAST, card=card, run_dir=run_dir, track=False, verbose=0)
    out = run_dir / "exports" / "penguins"
    return run_dir, version, result, out, export_model(run_dir, out)  # the current run


def test_export_json_follows_the_contract_and_its_hashes_match(digits):
    run_dir, version, result, out, export = digits
    assert sorted(p.name for p in out.iterdir()) == sorted([*FORMATS.values(), "export.json"])
    assert [p.name for p in out.parent.iterdir()] == ["digits"]  # no temporary folder left
    assert read_export(out) == export
    assert export["format_version"] == 1 and export["model_name"] == "digits"
    assert export["input"] == {
        "kind": "image",
        "name": "images",
        "dtype": "float32",
        "shape": [-1, 8, 8, 1],
        "range": [0, 16],
        "description": "raw pixels 0..16 (as the data source gives them)",
    }
    assert export["outputs"] == [{"name": "probabilities", "dtype": "float32", "shape": [-1, 10]}]
    assert export["class_names"] == [str(d) for d in range(10)]
    assert export["task"] == "multiclass"
    for fmt, path in FORMATS.items():
        entry = export["formats"][fmt]
        assert entry["path"] == path and entry["sha256"] == artifact_sha256(out / path)
        assert entry["max_abs_diff"] <= 1e-4
    assert export["formats"]["onnx"]["converter"] == 'model.export(format="onnx")'
    assert export["formats"]["saved_model"]["sha256"] == folder_sha256(out / "saved_model")
    checks = export["checks"]
    assert checks["batch"] == 64 and set(checks["max_abs_diff"]) == {"transform", *FORMATS}
    assert max(checks["max_abs_diff"].values()) <= 1e-4
    assert {fmt: sorted(ms) for fmt, ms in export["latency_ms"].items()} == {
        fmt: ["1", "256"] for fmt in FORMATS
    }
    assert np.asarray(export["example"]["images"]).shape == (8, 8, 1)
    lineage = export["lineage"]
    assert lineage["train_run"] == result.run_id and lineage["mlflow_run_id"] is None
    assert lineage["data_version"] == version.id == result.metrics["data_version"]
    assert lineage["data_sha256"] == version.manifest["content_sha256"]
    assert lineage["spec"] == TINY.version
    assert lineage["metrics"]["test"] == result.metrics["test"]
    assert lineage["metrics"]["selected"] == result.metrics["selected"]
    verify_export(out)

    rows = latency_table(export)
    assert [r["format"] for r in rows] == list(FORMATS)
    assert rows[0]["vs keras (batch 1)"] == "1.0x" and all(r["note"] == "" for r in rows)
    assert format_table(rows).splitlines()[0].split()[:3] == ["format", "path", "batch"]


def test_the_three_formats_agree_on_raw_pixels(digits):
    _, version, result, out, export = digits
    x = version.split("test")[0][:50]
    assert x.max() == 16  # raw pixels, as the source gives them
    raw = {"images": x.astype(np.float32)}
    keras_out = KerasRunner(out / "model.keras")(raw)["probabilities"]
    expected = result.model.predict_on_batch(version.transform.apply(x))  # the training path
    np.testing.assert_allclose(keras_out, expected, rtol=0, atol=1e-6)
    assert keras_out.argmax(1).tolist() == expected.argmax(1).tolist()
    for runner in (SavedModelRunner(out / "saved_model"), load_onnx(out, threads=1)):
        assert runner.input_names == ["images"] and runner.output_names == ["probabilities"]
        runner.warm()
        np.testing.assert_allclose(runner(raw)["probabilities"], keras_out, rtol=0, atol=1e-4)

    best = fastest_backend(export)
    runner = open_runner(out)
    assert best in ("onnx", "keras") and isinstance(
        runner, OnnxRunner if best == "onnx" else KerasRunner
    )
    with pytest.raises(ServingError, match=r"expected a dict with the inputs \['images'\], got"):
        runner({"pixels": x})
    assert runner.predicted_classes(x).tolist() == expected.argmax(1).tolist()


def test_inference_model_is_the_transform_before_the_network(digits):
    _, version, result, _, _ = digits
    model = inference_model(result.model, version.transform, class_names=version.class_names)
    assert not model.compiled and "augmentation" not in [la.name for la in model.layers]
    assert model.get_layer("transform_scale").get_config()["scale"] == 1 / 16
    x = version.split("val")[0][:8]
    np.testing.assert_array_equal(
        model.predict_on_batch(raw_inputs(version.transform, x))["probabilities"],
        result.model.predict_on_batch(version.transform.apply(x)),
    )
    with pytest.raises(ServingError, match=r"3 class names \['a', 'b', 'c'\] for a multiclass"):
        inference_model(result.model, version.transform, class_names=["a", "b", "c"])
    with pytest.raises(ServingError, match="task='ranking'; expected one of"):
        inference_model(result.model, version.transform, task="ranking")


def test_a_changed_artifact_changes_its_hash_and_is_refused(digits, tmp_path):
    *_, out, export = digits
    copy = shutil.copytree(out, tmp_path / "copy")
    saved = copy / "saved_model"
    before = folder_sha256(saved)
    assert before == export["formats"]["saved_model"]["sha256"]  # the folder's name is not hashed
    variables = sorted((saved / "variables").glob("variables.data*"))[0]
    data = bytearray(variables.read_bytes())
    data[-1] ^= 1
    variables.write_bytes(bytes(data))
    assert folder_sha256(saved) != before
    variables.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))  # restored
    assert folder_sha256(saved) == before
    (saved / "assets" / "extra.txt").write_text("")  # an added empty file counts too
    assert folder_sha256(saved) != before
    (saved / "assets" / "extra.txt").unlink()
    verify_export(copy)
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(
        ServingError,
        match=r"model.onnx \(onnx\) does not match the sha256 export.json records \(found",
    ):
        verify_export(copy)


def test_model_keras_loads_with_safe_mode_in_a_process_without_workbench(digits, table, tmp_path):
    cases = {}
    for name, (_, version, result, out, _) in {"digits": digits, "table": table}.items():
        x = version.split("val")[0][:16]
        inputs = raw_inputs(version.transform, x)
        expected = result.model.predict_on_batch(version.transform.apply(x))
        np.savez(
            tmp_path / f"{name}.npz", expected=expected, **{f"in_{k}": v for k, v in inputs.items()}
        )
        cases[name] = str(out / "model.keras")
        config = zipfile.ZipFile(out / "model.keras").read("config.json").decode()
        for word in ("workbench", "Lambda", '"optimizer"'):  # no training-only class or state
            assert word not in config, word
        assert re.search(r'"compile_config": \{[^}]', config) is None
    script = f"""
import sys, numpy as np, keras
for name, path in {cases!r}.items():
    model = keras.saving.load_model(path, safe_mode=True)
    with np.load(name + ".npz") as data:
        inputs = {{k[3:]: data[k] for k in data.files if k.startswith("in_")}}
        got = model.predict_on_batch(inputs)["probabilities"]
        np.testing.assert_allclose(got, data["expected"], rtol=0, atol=1e-5)
assert "workbench" not in sys.modules, "workbench was imported"
print("loaded", sorted({cases!r}))
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded ['digits', 'table']" in done.stdout


def test_table_model_takes_rows_as_read(table):
    _, version, result, out, export = table
    transform = version.transform
    rows = [
        {"bill, mm": None, "mass_g": 3600, "island": "Atlantis", "comment": "seen, 1 times"},
        {"bill, mm": 44.0, "mass_g": float("nan"), "island": None, "comment": "seen, 3 times"},
        {"bill, mm": 39.5, "mass_g": 4700, "island": "Dream", "comment": "never seen"},
        {"bill, mm": 51.0},  # columns left out are missing
    ]
    inputs = raw_inputs(transform, rows)
    assert inputs["island"].tolist() == ["Atlantis", "", "Dream", ""]
    assert np.isnan(inputs["bill_mm"][0]) and np.isnan(inputs["mass_g"][3])

    keras = KerasRunner(out / "model.keras")
    features = transform.apply(rows)  # (4, 12): the training path's features
    names = transform.feature_names
    assert features[0, [j for j, n in enumerate(names) if n.startswith("island=")]].sum() == 0
    assert features[1, names.index("island=(missing)")] == 1.0  # missing text is a category
    assert features[0, names.index("bill, mm missing")] == 1.0
    transformed = keras.model.get_layer("transform_features").output
    layers = keras.model.__class__(keras.model.input, transformed)  # the transform's layers only
    np.testing.assert_allclose(layers.predict_on_batch(inputs), features, rtol=0, atol=1e-5)
    expected = result.model.predict_on_batch(features)
    np.testing.assert_allclose(keras(inputs)["probabilities"], expected, rtol=0, atol=1e-5)
    for runner in (SavedModelRunner(out / "saved_model"), OnnxRunner(out / "model.onnx")):
        assert sorted(runner.input_names) == ["bill_mm", "comment", "island", "mass_g"]
        np.testing.assert_allclose(runner(inputs)["probabilities"], expected, rtol=0, atol=1e-4)
    with pytest.raises(ServingError, match=r"has the inputs \[.*\]; call the runner with a dict"):
        keras.predicted_classes(features)

    assert export["model_name"] == "penguins" and export["input"] == describe_input(transform)
    columns = {c["name"]: c for c in export["input"]["columns"]}
    assert columns["bill_mm"] == {
        "name": "bill_mm", "column": "bill, mm", "shape": [-1], "dtype": "float32",
        "missing": "NaN",
    }  # fmt: skip
    assert columns["island"]["dtype"] == "string" and columns["island"]["missing"] == ""
    assert columns["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]
    assert export["formats"]["onnx"]["converter"] == "tf2onnx on the SavedModel"
    assert export["lineage"]["train_run"] == result.run_id
    assert max(export["checks"]["max_abs_diff"].values()) <= 1e-4


def test_an_onnx_conversion_that_fails_is_recorded_not_fatal(table, tmp_path):
    run_dir, *_ = table
    export = export_model(run_dir, tmp_path / "x", onnx="export", repeats=1)
    onnx = export["formats"]["onnx"]
    assert (
        set(onnx) == {"path", "error", "converter"} and not (tmp_path / "x" / "model.onnx").exists()
    )
    assert "could not convert the graph" in onnx["error"] and "LookupTableFindV2" in onnx["error"]
    assert set(export["latency_ms"]) == {"keras", "saved_model"}
    assert fastest_backend(export) == "keras"
    assert latency_table(export)[2]["note"].startswith("not exported: model.export")
    verify_export(tmp_path / "x")
    with pytest.raises(ServingError, match="has no usable onnx model .*; use backend='keras'"):
        open_runner(tmp_path / "x", "onnx")
    with pytest.raises(ServingError, match="OnnxRunner: no such path .*model.onnx'; expected"):
        load_onnx(tmp_path / "x")


def test_without_the_saved_model_the_onnx_export_still_passes_and_serves(digits, tmp_path):
    run_dir, version, result, _, _ = digits
    out = tmp_path / "no-saved-model"
    export = export_model(result, out, saved_model=False, repeats=1)
    assert not (out / "saved_model").exists()
    skipped = {"path": "saved_model", "skipped": "saved_model=False"}
    assert export["formats"]["saved_model"] == skipped
    assert set(export["checks"]["max_abs_diff"]) == {"transform", "keras", "onnx"}
    assert max(export["checks"]["max_abs_diff"].values()) <= 1e-4
    runner, images = open_runner(out, "onnx"), version.split("val")[0][:8].astype(np.float32)
    assert isinstance(runner, OnnxRunner)
    both = [
        r({"images": images})["probabilities"] for r in (runner, open_runner(digits[3], "onnx"))
    ]
    assert np.abs(both[0] - both[1]).max() < 1e-6  # the same network as with the SavedModel
    verify_export(out)
    note = {r["format"]: r["note"] for r in latency_table(export)}["saved_model"]
    assert note == "not exported: saved_model=False"
    with pytest.raises(ParameterError, match="saved_model"):
        export_model(result, tmp_path / "x", saved_model="no")


def test_an_interrupted_export_leaves_the_old_one_and_no_half_folder(digits, monkeypatch):
    run_dir, _, result, _, _ = digits
    first = export_model(result, repeats=1)  # to <run_dir>/deploy/<run_id> by default
    target = run_dir / "deploy" / result.run_id
    assert read_export(target) == first

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # as a kernel interrupt in the middle of the export

    with monkeypatch.context() as patch:
        patch.setattr(export_module, "_latency", interrupt)
        with pytest.raises(KeyboardInterrupt):
            export_model(result, target, overwrite=True)
    assert read_export(target) == first
    assert [p.name for p in target.parent.iterdir()] == [result.run_id]  # no half folder
    verify_export(target)
    assert export_model(result) == first  # the same run again: reused, not exported twice
    with pytest.raises(ServingError, match=r"holds the export of run .* as 'digits', not of"):
        export_model(result, name="other")
    replaced = export_model(result, target, overwrite=True, repeats=1, name="digits-v2")
    assert read_export(target) == replaced and replaced["model_name"] == "digits-v2"
    assert [p.name for p in target.parent.iterdir()] == [result.run_id]


def test_bad_runs_are_refused_with_clear_messages(digits, tmp_path):
    run_dir, _, result, _, _ = digits
    with pytest.raises(ServingError, match="no trained run at .*nowhere'; expected a training run"):
        export_model(tmp_path / "nowhere")
    half = tmp_path / "train" / "tiny-123"
    half.mkdir(parents=True)
    (half / "history.json").write_text("[]")
    with pytest.raises(
        ServingError, match=r"has no model.keras \(files there: \['history.json'\]\); the training"
    ):
        export_model(half)
    (half / "model.keras").write_bytes(b"")
    with pytest.raises(ServingError, match="has no metrics.json"):
        export_model(half)
    with pytest.raises(ServingError, match=r"neither a training run folder .*\(trained runs there"):
        export_model(tmp_path / "train")
    with pytest.raises(ServingError, match="run must be a training run folder, a run directory"):
        export_model(42)
    with pytest.raises(ServingError, match="Parameter 'name': expected letters, digits"):
        export_model(result, tmp_path / "n", name="my model")
    with pytest.raises(ParameterError, match="Parameter 'check_batch': expected an integer >= 1"):
        export_model(result, check_batch=0)
    with pytest.raises(ParameterError, match="Parameter 'onnx': expected one of"):
        export_model(result, onnx="tflite")
    with pytest.raises(ServingError, match="No export.json in .*not an export folder"):
        read_export(tmp_path)
    with pytest.raises(ServingError, match="is not a folder"):
        folder_sha256(tmp_path / "nowhere")
    assert not list(tmp_path.glob(".*"))  # nothing half-made beside the refused outputs
    assert json.loads((run_dir / "index.json").read_text())["train"] == result.run_id


def test_mlflow_models_serve_answers_like_the_inference_model(digits, tmp_path):
    """MLflow's own server loads the registered inference model (raw pixels in) and answers as
    the exported model.keras does: the export needs nothing of the workbench to be served."""
    import httpx

    from workbench.deploy import launch, registry

    _, version, _, out, _ = digits
    registered = registry.resolve(registry.register(out, name="digits-mlflow", alias=None).ref)
    uri = registry.mlflow_model(registered)
    port = launch.free_port()
    bin_dir = os.path.dirname(sys.executable)
    command = [f"{bin_dir}/mlflow", "models", "serve", "-m", uri, "--env-manager", "local"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tmp_path / "mlflow-serve.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # mlflow runs uvicorn as a child: stop the whole group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(720):  # up to 3 minutes on a busy machine
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        x = version.split("test")[0][:4].astype(np.float32)
        answer = httpx.post(f"{url}/invocations", json={"inputs": x.tolist()}, timeout=60)
        assert answer.status_code == 200, answer.text[:500]
        outputs = answer.json()["predictions"]  # {output name: rows}: the model's dict output
        served = np.asarray(outputs["probabilities"], dtype=np.float32)
        expected = KerasRunner(out / "model.keras")({"images": x})["probabilities"]
        np.testing.assert_allclose(served, expected, atol=1e-5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(60)
