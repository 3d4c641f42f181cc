"""Stage 5, the REST service: TF Serving and KServe v2 clients work unchanged, every malformed
request gets a 4xx that says what was expected, labels hot-swap without a failed request, and
SIGTERM finishes the requests in flight.

One real uvicorn service (in a thread, on a free loopback port) serves real exports of a tiny
trained digits model from a folder in TF Serving's layout; the SIGTERM test starts
`workbench serve` as its own process, with the command line the Dockerfile runs.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import TINY, Service, card_for_version, wait_ready, write_messy_csv

from workbench.data import prepare
from workbench.deploy.export import KerasRunner, OnnxRunner, artifact_sha256, export_model
from workbench.deploy.models import ModelStore
from workbench.deploy.repositories import FolderRepository, RegistryRepository, parse_ref
from workbench.deploy.service import create_app
from workbench.design import preset
from workbench.errors import ParameterError, ServingError
from workbench.files import atomic_write_json
from workbench.train import TrainConfig, train

MAX_BATCH, QUEUE, TIMEOUT, MAX_BODY = 8, 4, 3.0, 64 * 1024
SETTINGS = dict(
    max_batch=MAX_BATCH,
    queue_size=QUEUE,
    request_timeout=TIMEOUT,
    max_body_bytes=MAX_BODY,
    poll_seconds=0,  # labels move when a test calls POST /admin/reload
)


def serve_argv(model_dir: str | Path, host: str, port: int) -> list[str]:
    """The `workbench serve` arguments the Dockerfile's ENTRYPOINT runs (with /models,
    0.0.0.0 and 8500; tests/test_dockerfile.py checks it) and the SIGTERM test starts."""
    return ["serve", "--model-dir", str(model_dir), "--host", host, "--port", str(port)]


def echo_export(folder: Path) -> None:
    """A plain Keras model with two outputs, y = 2x and z = -x on float32 [-1, 3], exported
    as .keras and ONNX with its export.json: it passes NaN and infinity through (no inference
    model with a transform does), and it has the several outputs of a multi-head model."""
    from workbench.config import load_keras

    keras = load_keras()
    x = keras.Input((3,), name="x")
    heads = {"y": keras.layers.Rescaling(2.0, name="y")(x), "z": keras.layers.Rescaling(-1.0)(x)}
    model = keras.Model({"x": x}, heads)
    model.predict_on_batch({"x": np.array([[1, 2, 3]], np.float32)})  # built before export
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    model.export(folder / "model.onnx", format="onnx", verbose=False)
    formats = {
        fmt: {"path": f"model.{fmt}", "sha256": artifact_sha256(folder / f"model.{fmt}")}
        for fmt in ("keras", "onnx")
    }
    sample = {"x": np.array([[0.5, -2, 1e6]], np.float32)}
    onnx = OnnxRunner(folder / "model.onnx")(sample)
    keras_answer = KerasRunner(folder / "model.keras")(sample)
    diff = max(float(np.abs(onnx[k] - keras_answer[k]).max()) for k in heads)  # the export check
    formats["onnx"]["max_abs_diff"] = diff
    atomic_write_json(
        folder / "export.json",
        {
            "format_version": 1,
            "model_name": "echo",
            "input": {"kind": "tensor", "name": "x", "dtype": "float32", "shape": [-1, 3]},
            "outputs": [{"name": k, "dtype": "float32", "shape": [-1, 3]} for k in heads],
            "class_names": [],
            "task": "regression",
            "formats": formats,
            "checks": {"batch": 1, "max_abs_diff": {"onnx": diff}},
        },
    )


def build_model_folder(base: Path, run_dir: Path) -> Path:
    """TF Serving's layout with real exports: digits 1 and 2 (one tiny trained model exported
    twice), 3 (its ONNX file damaged after export), 4 (another model's signature); echo 1;
    penguins 1 (a messy table: numbers with NaN, text columns); digits' champion is 1."""
    config = TrainConfig(epochs=1, learning_rate=1e-2, batch_size=32)
    csv = write_messy_csv(run_dir / "penguins.csv")
    table = prepare(f"csv:{csv}", run_dir=run_dir / "table", target="species")
    card = card_for_version(table)
    result = train(preset("tabular", card), table, config, card=card, run_dir=run_dir / "table",
                   track=False, verbose=0)  # fmt: skip
    export_model(result, base / "penguins" / "1")
    version = prepare("digits", run_dir=run_dir)
    result = train(TINY, version, config, card=card_for_version(version), run_dir=run_dir,
                   track=False, verbose=0)  # fmt: skip
    digits = base / "digits"
    export_model(result, digits / "1")
    shutil.copytree(digits / "1", digits / "2")
    shutil.copytree(digits / "1", digits / "3")
    onnx = digits / "3" / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-64] + bytes(64))  # damaged after export
    echo_export(base / "echo" / "1")
    shutil.copytree(base / "echo" / "1", digits / "4")
    atomic_write_json(digits / "labels.json", {"champion": "1"})
    return base


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return build_model_folder(
        tmp_path_factory.mktemp("models"), tmp_path_factory.mktemp("serve-run")
    )


@pytest.fixture(scope="module")
def service(models):
    with Service(create_app(FolderRepository(models), **SETTINGS)) as running:
        yield running


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def digit():
    """A real test digit (raw pixels 0..16) as one row of the image input, and its label."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images[-1].reshape(8, 8, 1).tolist(), int(data.target[-1])


@contextmanager
def champion(models: Path, client: httpx.Client, version: str):
    """Move digits' champion label to `version` (reload at once); put it back on 1 after."""
    atomic_write_json(models / "digits" / "labels.json", {"champion": version})
    try:
        yield client.post("/admin/reload").json()["changes"]
    finally:
        atomic_write_json(models / "digits" / "labels.json", {"champion": "1"})
        client.post("/admin/reload")


def v2_body(image, **extra):
    return {
        "inputs": [{"name": "images", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": [image]}],
        **extra,
    }


# -- TF Serving REST --------------------------------------------------------------------------
def test_tf_status_lists_versions_with_their_state(client):
    status = client.get("/v1/models/digits").json()["model_version_status"]
    assert [s["version"] for s in status] == ["1", "2", "3", "4"]
    assert status[0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    assert (
        client.get("/v1/models/digits/labels/champion").json()["model_version_status"][0]["version"]
        == "1"
    )
    only = client.get("/v1/models/digits/versions/2").json()["model_version_status"]
    assert [s["version"] for s in only] == ["2"]


def test_tf_metadata_has_the_signature_def_shape(client):
    meta = client.get("/v1/models/digits/metadata").json()
    assert meta["model_spec"] == {"name": "digits", "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    images = sig["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "8", "8", "1"]
    assert [d["size"] for d in sig["outputs"]["probabilities"]["tensor_shape"]["dim"]] == [
        "-1",
        "10",
    ]
    assert (
        client.get("/v1/models/digits/versions/2/metadata").json()["model_spec"]["version"] == "2"
    )


def test_tf_predict_row_and_columnar_formats(client, digit):
    image, _ = digit
    rows = client.post("/v1/models/digits:predict", json={"instances": [image, image]})
    assert rows.status_code == 200, rows.text
    predictions = np.array(rows.json()["predictions"])
    assert predictions.shape == (2, 10)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
    columns = client.post(
        "/v1/models/digits:predict", json={"inputs": {"images": [image]}, "signature_name": ""}
    )
    np.testing.assert_allclose(columns.json()["outputs"], predictions[:1], atol=1e-6)
    plain = client.post("/v1/models/digits:predict", json={"inputs": [image]}).json()["outputs"]
    np.testing.assert_allclose(plain, predictions[:1], atol=1e-6)
    named = client.post("/v1/models/digits:predict", json={"instances": [{"images": image}]})
    np.testing.assert_allclose(named.json()["predictions"], predictions[:1], atol=1e-6)


def test_tf_version_and_label_routes_answer_like_the_default(client, digit):
    image, _ = digit
    body = {"instances": [image], "signature_name": "serving_default"}
    answers = [
        client.post(path, json=body)
        for path in (
            "/v1/models/digits:predict",
            "/v1/models/digits/versions/2:predict",  # loaded on first use
            "/v1/models/digits/labels/champion:predict",
        )
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    for a in answers[1:]:
        np.testing.assert_allclose(a.json()["predictions"], answers[0].json()["predictions"])
    assert (
        client.get("/v1/models/digits/versions/2").json()["model_version_status"][0]["state"]
        == "AVAILABLE"
    )


def test_nan_and_infinity_pass_through_as_tf_serving_writes_them(client):
    nan = b"[[1.5, NaN, -Infinity]]"
    r = client.post("/v1/models/echo:predict", content=b'{"instances": %s}' % nan)
    assert r.status_code == 200
    assert r.text == '{"predictions":[{"y":[3.0,NaN,-Infinity],"z":[-1.5,NaN,Infinity]}]}'
    v2 = client.post(
        "/v2/models/echo/infer",
        content=b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",'
        b' "data": [Infinity, 0, NaN]}], "outputs": [{"name": "z"}]}',
    )
    [out] = json.loads(v2.text)["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("z", "FP32", [1, 3])
    assert out["data"][0] == -float("inf") and out["data"][1] == 0 and np.isnan(out["data"][2])


def test_several_outputs_come_back_named_and_each_is_a_signature(client):
    rows = {"instances": [[1, 2, 3], [4, 5, 6]]}
    both = client.post("/v1/models/echo:predict", json=rows).json()["predictions"]
    assert both == [{"y": [2, 4, 6], "z": [-1, -2, -3]}, {"y": [8, 10, 12], "z": [-4, -5, -6]}]
    one = client.post("/v1/models/echo:predict", json={**rows, "signature_name": "z"}).json()
    assert one == {"predictions": [[-1, -2, -3], [-4, -5, -6]]}  # one output loses its name
    columns = client.post("/v1/models/echo:predict", json={"inputs": {"x": [[1, 2, 3]]}}).json()
    assert columns == {"outputs": {"y": [[2, 4, 6]], "z": [[-1, -2, -3]]}}
    defs = client.get("/v1/models/echo/metadata").json()["metadata"]["signature_def"]
    signatures = {k: sorted(v["outputs"]) for k, v in defs["signature_def"].items()}
    assert signatures == {"serving_default": ["y", "z"], "y": ["y"], "z": ["z"]}


def test_table_rows_with_missing_values_and_text_categories(client):
    """Raw table rows as the CSV holds them: NaN for a missing number, '' for missing text,
    a category never seen in training (all zeros in its one-hot block)."""
    rows = (
        b'{"instances": [{"bill_mm": 44.0, "mass_g": NaN, "island": "Dream", "comment": ""},'
        b' {"bill_mm": 38, "mass_g": 3500, "island": "Atlantis", "comment": "seen, 1 times"}]}'
    )
    r = client.post("/v1/models/penguins:predict", content=rows)
    assert r.status_code == 200, r.text
    predictions = np.array(r.json()["predictions"])
    assert predictions.shape == (2, 3)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
    columns = {
        "bill_mm": [38],
        "mass_g": [3500],
        "island": ["Atlantis"],
        "comment": ["seen, 1 times"],
    }
    one = client.post("/v1/models/penguins:predict", json={"inputs": columns}).json()["outputs"]
    np.testing.assert_allclose(one, predictions[1:], atol=1e-6)
    dream = {**columns, "island": ["Dream"]}
    padded = {**columns, "island": [" Dream "], "comment": [" seen, 1 times\t"]}
    answers = [
        client.post("/v1/models/penguins:predict", json={"inputs": c}).json()["outputs"]
        for c in (dream, padded)
    ]
    np.testing.assert_allclose(answers[1], answers[0], atol=1e-6)  # stripped, as read from CSV
    assert np.abs(np.array(answers[0]) - one).max() > 1e-4  # "Dream" is a seen category
    datatypes = ["FP32", "INT64", "BYTES", "BYTES"]
    tensors = [
        {"name": name, "shape": [1], "datatype": datatype, "data": values}
        for (name, values), datatype in zip(columns.items(), datatypes, strict=True)
    ]
    v2 = client.post("/v2/models/penguins/infer", json={"inputs": tensors})
    assert v2.status_code == 200, v2.text
    np.testing.assert_allclose(v2.json()["outputs"][0]["data"], predictions[1], atol=1e-6)
    meta = client.get("/v2/models/penguins").json()["inputs"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta] == [
        ("bill_mm", "FP32", [-1]),
        ("mass_g", "FP32", [-1]),
        ("island", "BYTES", [-1]),
        ("comment", "BYTES", [-1]),
    ]


# -- Open Inference Protocol v2 -----------------------------------------------------------------
def test_v2_server_health_and_model_metadata(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    server = client.get("/v2").json()
    assert server["name"] == "workbench" and server["extensions"] == []
    meta = client.get("/v2/models/digits").json()
    assert meta == {
        "name": "digits",
        "versions": ["1", "2", "3", "4"],
        "platform": "onnx_onnxv1",
        "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 8, 8, 1]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
    }
    assert client.get("/v2/models/digits/versions/2").json()["inputs"] == meta["inputs"]
    assert client.get("/v2/models/digits/ready").json() == {"name": "digits", "ready": True}
    assert client.get("/v2/models/digits/versions/1/ready").status_code == 200


def test_v2_ready_is_false_with_a_4xx_for_a_version_not_loaded(client):
    r = client.get("/v2/models/digits/versions/4/ready")
    assert r.status_code == 400 and r.json()["ready"] is False
    assert client.get("/v2/models/nope/ready").status_code == 404


def test_v2_infer_nested_and_flat_data_and_output_selection(client, digit):
    image, _ = digit
    nested = client.post("/v2/models/digits/infer", json=v2_body(image, id="42"))
    assert nested.status_code == 200, nested.text
    body = nested.json()
    assert body["model_name"] == "digits" and body["model_version"] == "1" and body["id"] == "42"
    [out] = body["outputs"]
    assert out["name"] == "probabilities" and out["datatype"] == "FP32"
    assert out["shape"] == [1, 10] and len(out["data"]) == 10
    flat = v2_body(np.ravel(image).astype(int).tolist(), parameters={"content_type": "np"})
    flat["inputs"][0].update(datatype="INT64", parameters={"binary_data": False})
    flat["outputs"] = [{"name": "probabilities", "parameters": {}}]
    r = client.post("/v2/models/digits/versions/2/infer", json=flat)
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "2" and r.json()["id"]
    np.testing.assert_allclose(r.json()["outputs"][0]["data"], out["data"], atol=1e-6)
    tf = client.post("/v1/models/digits:predict", json={"instances": [image]}).json()
    np.testing.assert_allclose(tf["predictions"][0], out["data"], atol=1e-6)


# -- errors -----------------------------------------------------------------------------------
def _image():
    return np.zeros((8, 8, 1)).tolist()


def _with(value, where=(0, 0, 0)):
    image = _image()
    image[where[0]][where[1]][where[2]] = value
    return image


def _v2(**tensor):
    base = {"name": "images", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": _image()}
    return {"inputs": [{**base, **tensor}]}


PREDICT = "/v1/models/digits:predict"
INFER = "/v2/models/digits/infer"
TABLE = "/v1/models/penguins:predict"
ROW = {"bill_mm": 40.0, "mass_g": 3600, "island": "Dream", "comment": ""}
MALFORMED = [  # (what, method, path, request arguments, status, part of the message)
    ("wrong shape", "POST", PREDICT, {"json": {"instances": [[1, 2, 3]]}}, 400,
     "has shape [1, 3]; the model takes [-1, 8, 8, 1] (-1: any size), i.e. rows of shape "
     "[8, 8, 1]"),
    ("missing channel", "POST", PREDICT, {"json": {"instances": [np.zeros((8, 8)).tolist()]}},
     400, "has shape [1, 8, 8]"),
    ("strings", "POST", PREDICT, {"json": {"instances": [_with("a")]}}, 400,
     "must hold numbers (float32); it holds strings, e.g. 'a'"),
    ("booleans", "POST", PREDICT, {"json": {"instances": [[[[True]] * 8] * 8]}}, 400,
     "it holds booleans"),
    ("null", "POST", PREDICT, {"json": {"instances": [_with(None)]}}, 400, "e.g. None"),
    ("ragged", "POST", PREDICT, {"json": {"instances": [_image(), [[0]]]}}, 400,
     "ragged nested list"),
    ("NaN pixel", "POST", PREDICT, {"content": b'{"instances": [[[[NaN]]]]}'}, 400,
     "has shape [1, 1, 1, 1]"),
    ("NaN in an image", "POST", PREDICT, {"content": json.dumps({"instances": [_with(
     float("nan"))]}).encode()}, 400, "holds 1 NaN or infinite value(s) (first at index "
     "[0, 0, 0, 0]); the model takes raw pixels 0..16"),
    ("infinity in an image", "POST", PREDICT, {"content": json.dumps({"instances": [_with(
     float("inf"), (1, 2, 0))]}).encode()}, 400, "first at index [0, 1, 2, 0]"),
    ("pixels 0..255", "POST", PREDICT, {"json": {"instances": [_with(255)]}}, 400,
     "holds values outside [0, 16] (min 0, max 255); the model takes raw pixels 0..16"),
    ("empty instances", "POST", PREDICT, {"json": {"instances": []}}, 400,
     "'instances' is an empty list"),
    ("instances not a list", "POST", PREDICT, {"json": {"instances": {"images": 1}}}, 400,
     "'instances' must be a list with one item per row; got a JSON object"),
    ("too many instances", "POST", PREDICT, {"json": {"instances": [_image()] * (MAX_BATCH + 1)}},
     400, f"has {MAX_BATCH + 1} rows; this service takes at most {MAX_BATCH} per request"),
    ("too many columnar rows", "POST", PREDICT, {"json": {"inputs": [_image()] * (MAX_BATCH + 1)}},
     400, "--max-batch"),
    ("both formats", "POST", PREDICT, {"json": {"instances": [_image()], "inputs": [_image()]}},
     400, "has both 'instances' (row format) and 'inputs' (columnar format)"),
    ("neither format", "POST", PREDICT, {"json": {"rows": []}}, 400,
     "neither 'instances' nor 'inputs' (its keys: ['rows'])"),
    ("wrong input name", "POST", PREDICT, {"json": {"instances": [{"pixels": _image()}]}}, 400,
     "Row 0 of 'instances' has keys ['pixels']; every row must be an object with exactly the "
     "keys ['images']"),
    ("unknown signature", "POST", PREDICT, {"json": {"instances": [_image()],
     "signature_name": "top"}}, 400, 'Serving signature name: "top" not found'),
    ("signature not a string", "POST", PREDICT, {"json": {"instances": [_image()],
     "signature_name": 3}}, 400, "'signature_name' must be a string"),
    ("v2 body on v1", "POST", PREDICT, {"json": _v2()}, 400, "Open Inference Protocol v2"),
    ("invalid JSON", "POST", PREDICT, {"content": b'{"instances": [1,}'}, 400,
     "not valid JSON: Expecting value at line 1 column 18"),
    ("wrong Content-Type", "POST", PREDICT, {"content": b"1,2,3\n4,5,6",
     "headers": {"Content-Type": "text/csv"}}, 400,
     "(the request said Content-Type 'text/csv'). Send a JSON object"),
    ("a JSON array", "POST", PREDICT, {"json": [[1, 2]]}, 400,
     "must be a JSON object; got a JSON array"),
    ("empty body", "POST", PREDICT, {"content": b""}, 400, "Request body is empty"),
    ("not UTF-8", "POST", PREDICT, {"content": b'{"instances": "\xff"}'}, 400, "not UTF-8"),
    ("nested too deeply", "POST", PREDICT, {"content": b"[" * 20_000}, 400, "too deeply"),
    ("body over the limit", "POST", PREDICT, {"content": b" " * (MAX_BODY + 1)}, 413,
     f"{MAX_BODY + 1:,} bytes; this service takes at most {MAX_BODY:,} (--max-body-bytes)"),
    ("unknown model", "POST", "/v1/models/digitz:predict", {"json": {"instances": [_image()]}},
     404, "Model 'digitz' not found; this service serves ['digits', 'echo', 'penguins']"),
    ("unknown version", "POST", "/v1/models/digits/versions/9:predict",
     {"json": {"instances": [_image()]}}, 404,
     "Model 'digits' has no version '9'; its versions are ['1', '2', '3', '4']"),
    ("unknown label", "POST", "/v1/models/digits/labels/canary:predict",
     {"json": {"instances": [_image()]}}, 404,
     "Model 'digits' has no label 'canary'; its labels are {'champion': '1'}"),
    ("unknown label status", "GET", "/v1/models/digits/labels/canary", {}, 404, "no label"),
    ("unknown model status", "GET", "/v1/models/digitz", {}, 404, "not found"),
    ("unknown version metadata", "GET", "/v1/models/digits/versions/9/metadata", {}, 404,
     "no version '9'"),
    ("classify", "POST", "/v1/models/digits:classify", {"json": {}}, 501,
     "The classify API is not implemented"),
    ("GET on predict", "GET", PREDICT, {}, 405,
     "GET on :predict: Method Not Allowed; send POST with a JSON body"),
    ("GET on infer", "GET", INFER, {}, 405, "GET /v2/models/digits/infer: Method Not Allowed"),
    ("unknown route", "GET", "/v1/predict", {}, 404, "No route GET /v1/predict"),
    ("a number in a text column", "POST", TABLE, {"json": {"instances": [{**ROW, "island": 3}]}},
     400, "Input 'island' must hold strings ('' where missing); it holds 3"),
    ("infinity in a table", "POST", TABLE, {"content": b'{"instances": [{"bill_mm": Infinity, '
     b'"mass_g": 1, "island": "", "comment": ""}]}'}, 400, "Input 'bill_mm' holds 1 infinite "
     "value(s) (first at index [0]); the model takes column 'bill, mm' as the table holds it; "
     "NaN marks a missing value"),
    ("a column left out", "POST", TABLE, {"json": {"instances": [{"bill_mm": 40.0}]}}, 400,
     "missing ['mass_g', 'island', 'comment'], unknown []; send a missing value as NaN "
     "(numbers) or '' (text)"),
    ("a table row as a list", "POST", TABLE, {"json": {"instances": [[40.0, 1, "", ""]]}}, 400,
     "'instances' is a plain list, but the model takes the named inputs"),
    ("columns of different lengths", "POST", TABLE, {"json": {"inputs": {"bill_mm": [1, 2],
     "mass_g": [1], "island": [""], "comment": [""]}}}, 400,
     "The inputs have different numbers of rows [1, 2]"),
    ("v2 no inputs", "POST", INFER, {"json": {"outputs": []}}, 400,
     "'inputs' must be a non-empty list of tensors"),
    ("v2 TF body", "POST", INFER, {"json": {"instances": [_image()]}}, 400,
     "This is a TF Serving request"),
    ("v2 tensor not an object", "POST", INFER, {"json": {"inputs": [[1]]}}, 400,
     "inputs[0] must be an object"),
    ("v2 missing datatype", "POST", INFER, {"json": {"inputs": [{"name": "images", "shape": [1],
     "data": [1]}]}}, 400, "inputs[0] lacks ['datatype']"),
    ("v2 unknown input", "POST", INFER, {"json": _v2(name="pixels")}, 400,
     "The request's inputs are ['pixels']; the model takes ['images'] (missing ['images'], "
     "unknown ['pixels'])"),
    ("v2 BOOL", "POST", INFER, {"json": _v2(datatype="BOOL")}, 400,
     "has datatype 'BOOL'; the model takes FP32"),
    ("v2 BYTES", "POST", INFER, {"json": _v2(datatype="BYTES")}, 400, "datatype 'BYTES'"),
    ("v2 shape not ints", "POST", INFER, {"json": _v2(shape=[1, 8, 8, "1"])}, 400,
     "'shape' must be a list of non-negative integers"),
    ("v2 negative shape", "POST", INFER, {"json": _v2(shape=[-1, 8, 8, 1])}, 400,
     "non-negative"),
    ("v2 data size", "POST", INFER, {"json": _v2(shape=[2, 8, 8, 1])}, 400,
     "'data' holds 64 values, but shape [2, 8, 8, 1] needs 128"),
    ("v2 wrong shape", "POST", INFER, {"json": _v2(shape=[1, 64], data=[0] * 64)}, 400,
     "has shape [1, 64]; the model takes [-1, 8, 8, 1]"),
    ("v2 data not a list", "POST", INFER, {"json": _v2(data=3)}, 400,
     "'data' must be a list (nested or flat, row-major); got a JSON number"),
    ("v2 non-integers as INT64", "POST", INFER, {"json": _v2(datatype="INT64", data=[0.5] * 64)},
     400, "has datatype INT64, but 'data' holds non-integer numbers"),
    ("v2 NaN", "POST", INFER, {"content": json.dumps(_v2(data=[float("nan")] * 64)).encode()},
     400, "holds 64 NaN or infinite value(s)"),
    ("v2 unknown output", "POST", INFER, {"json": {**_v2(), "outputs": [{"name": "logits"}]}},
     400, "Unknown output(s) ['logits'] in 'outputs'; the model gives ['probabilities']"),
    ("v2 outputs not objects", "POST", INFER, {"json": {**_v2(), "outputs": ["probabilities"]}},
     400, "'outputs' must be a list of objects"),
    ("v2 id not a string", "POST", INFER, {"json": {**_v2(), "id": 7}}, 400,
     "'id' must be a string"),
    ("v2 parameters not an object", "POST", INFER, {"json": {**_v2(), "parameters": [1]}}, 400,
     "'parameters' must be an object"),
    ("v2 duplicate input", "POST", INFER, {"json": {"inputs": _v2()["inputs"] * 2}}, 400,
     "a duplicate"),
    ("v2 binary extension", "POST", INFER, {"content": b"{}", "headers": {
     "Inference-Header-Content-Length": "2"}}, 501, "binary tensor data extension"),
    ("v2 unknown model", "POST", "/v2/models/digitz/infer", {"json": _v2()}, 404, "not found"),
    ("v2 unknown version", "GET", "/v2/models/digits/versions/9", {}, 404, "no version '9'"),
]  # fmt: skip


@pytest.mark.parametrize(
    "what, method, path, kwargs, status, message", MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_requests_get_a_4xx_that_says_what_was_expected(
    client, what, method, path, kwargs, status, message
):
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"error"}
    assert message in r.json()["error"]


def test_admin_calls_answer_loopback_clients_only(service, client):
    assert client.get("/admin/status").status_code == 200
    scope_client = ("172.17.0.1", 40000)  # what a container's published port shows

    async def call():
        transport = httpx.ASGITransport(app=service.app, client=scope_client)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as c:
            return await c.post("/admin/reload")

    import asyncio

    r = asyncio.run(call())
    assert r.status_code == 403
    assert "loopback clients only; this request came from 172.17.0.1" in r.json()["error"]


# -- batching, queue and timeout --------------------------------------------------------------
@contextmanager
def blocked(service, name: str, version: str):
    """Hold the version's next model call until `release` is set (a real call afterwards)."""
    [loaded] = [v for v in service.app.state.store.loaded() if v.key == (name, version)]
    batcher = loaded.batcher
    entered, release = threading.Event(), threading.Event()
    real = batcher.run

    def run(inputs):
        entered.set()
        release.wait(30)
        return real(inputs)

    batcher.run = run
    try:
        yield batcher, entered, release
    finally:
        batcher.run = real
        release.set()


def wait_for(condition, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.005)


def test_a_full_queue_answers_429_and_the_queued_requests_complete(service, client):
    body = {"instances": [[1.0, 2.0, 3.0]]}

    def post():
        with httpx.Client(base_url=service.url, timeout=30) as c:
            return c.post("/v1/models/echo:predict", json=body)

    with blocked(service, "echo", "1") as (batcher, entered, release):
        with ThreadPoolExecutor(QUEUE + 1) as pool:
            first = pool.submit(post)
            assert entered.wait(20)  # the worker holds the first request in its model call
            queued = [pool.submit(post) for _ in range(QUEUE)]
            wait_for(lambda: batcher.queued == QUEUE, "filled the queue")
            full = client.post("/v1/models/echo:predict", json=body)
            release.set()
            answers = [first.result(), *(f.result() for f in queued)]
    assert full.status_code == 429
    assert full.json()["error"].startswith(
        f"Queue full: {QUEUE} requests are waiting for model 'echo' version 1 (the limit is "
        f"{QUEUE}, --queue)"
    )
    assert [a.status_code for a in answers] == [200] * (QUEUE + 1)
    assert answers[-1].json() == {"predictions": [{"y": [2, 4, 6], "z": [-1, -2, -3]}]}
    assert QUEUE in batcher.stats.sizes  # the queued requests ran as one batch


def test_a_request_past_the_timeout_gets_504_and_the_service_recovers(service, client):
    body = {"instances": [[1.0, 2.0, 3.0]]}
    with blocked(service, "echo", "1") as (_, entered, release):
        late = client.post("/v1/models/echo:predict", json=body)
        release.set()
    assert late.status_code == 504
    assert late.json()["error"].startswith(
        f"Request timed out: no answer from model 'echo' version 1 within {TIMEOUT:g} s "
        "(--request-timeout"
    )
    assert client.post("/v1/models/echo:predict", json=body).status_code == 200


# -- hot swap -----------------------------------------------------------------------------------
def test_hot_swap_under_concurrent_requests_fails_no_request(service, client, models, digit):
    image, _ = digit
    stop, answers, ready = threading.Event(), [], []

    def load(i: int) -> None:
        with httpx.Client(base_url=service.url, timeout=30) as c:
            while not stop.is_set():
                started = time.monotonic()
                r = c.post("/v2/models/digits/infer", json=v2_body(image))
                version = r.json().get("model_version") if r.status_code == 200 else None
                answers.append((started, r.status_code, version))

    def probe() -> None:
        with httpx.Client(base_url=service.url, timeout=30) as c:
            while not stop.is_set():
                ready.append(c.get("/v2/health/ready").status_code)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    threads.append(threading.Thread(target=probe))
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(answers) >= 20, "answered before the swap")
        with champion(models, client, "2") as changes:
            swapped = time.monotonic()
            wait_for(lambda: sum(a[0] > swapped for a in answers) >= 20, "answered after")
            status = client.get("/v1/models/digits").json()["model_version_status"]
            stop.set()  # before the label goes back
            for t in threads:
                t.join(30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert changes == [
        {"model": "digits", "label": "champion", "from": "1", "to": "2", "result": "swapped"}
    ]
    assert {code for _, code, _ in answers} == {200}  # no request failed
    assert set(ready) == {200}  # readiness never dropped
    assert {v for started, _, v in answers if started < swapped} >= {"1"}
    assert {v for started, _, v in answers if started > swapped} == {"2"}
    states = {s["version"]: s for s in status}
    assert states["2"]["state"] == "AVAILABLE"
    assert states["1"]["state"] == "END"  # unloaded once version 2 served
    assert "unloaded: digits@champion moved to version 2" in states["1"]["status"]["error_message"]


@pytest.mark.parametrize(
    "version, reason",
    [
        ("3", "model.onnx (onnx)"),  # damaged after export: refused when loading
        (
            "4",
            "it does not fit version 1's signature: inputs x float32 [-1, 3] instead of "
            "images float32 [-1, 8, 8, 1]",
        ),
    ],  # fmt: skip
    ids=["damaged artifact", "other signature"],
)
def test_a_version_that_cannot_serve_is_refused_and_the_old_keeps_serving(
    client, models, digit, version, reason
):
    image, _ = digit
    with champion(models, client, version) as changes:
        [change] = changes
        answer = client.post("/v2/models/digits/infer", json=v2_body(image))
        label = client.get("/v1/models/digits/labels/champion").json()
        status = client.get("/v1/models/digits").json()["model_version_status"]
        admin = client.get("/admin/status").json()["models"]["digits"]
    assert change["result"] == "refused" and change["to"] == version
    assert change["reason"].startswith(f"digits@champion -> version {version} refused: ")
    assert reason in change["reason"]
    assert change["reason"].endswith("; version 1 keeps serving.")
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    assert label["model_version_status"][0]["version"] == "1"
    [refused] = [s for s in status if s["version"] == version]
    assert refused["state"] == "END" and reason in refused["status"]["error_message"]
    assert admin["labels"]["champion"]["serves"] == "1"
    assert reason in admin["labels"]["champion"]["refused"][version]


def test_a_damaged_version_asked_for_by_number_answers_503_with_the_reason(client):
    r = client.post("/v1/models/digits/versions/3:predict", json={"instances": [_image()]})
    assert r.status_code == 503
    assert r.json()["error"].startswith("Version 3 of 'digits' could not be loaded: Export ")
    assert "the artifact was changed or damaged after export" in r.json()["error"]


def test_without_a_champion_the_latest_version_serves_and_a_new_one_swaps_in(client, models):
    body = {"instances": [[1.0, 2.0, 3.0]]}
    shutil.copytree(models / "echo" / "1", models / "echo" / "2")
    try:
        [change] = client.post("/admin/reload").json()["changes"]
        answer = client.post("/v2/models/echo/infer", json={"inputs": [
            {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]})  # fmt: skip
    finally:
        shutil.rmtree(models / "echo" / "2")
        [back] = client.post("/admin/reload").json()["changes"]
    assert change == {"model": "echo", "label": "latest", "from": "1", "to": "2",
                      "result": "swapped"}  # fmt: skip
    assert answer.json()["model_version"] == "2"
    assert back["to"] == "1" and back["result"] == "swapped"
    assert client.post("/v1/models/echo:predict", json=body).status_code == 200


# -- the store and its set-up ----------------------------------------------------------------------
def test_model_references_and_bad_settings_fail_with_clear_messages(models):
    assert parse_ref("digits") == ("digits", None, None)
    assert parse_ref("digits@champion") == ("digits", "champion", None)
    assert parse_ref("digits/3") == ("digits", None, "3")
    with pytest.raises(ServingError, match=r"'digits@' is not NAME, NAME@LABEL or NAME/VERSION"):
        parse_ref("digits@")
    repository = FolderRepository(models)
    with pytest.raises(ServingError, match=r"Model 'nope' not found in FolderRepository"):
        ModelStore(repository, models=["nope"])
    with pytest.raises(ServingError, match=r"no label 'canary'; its labels are"):
        ModelStore(repository, models=["digits@canary"])
    with pytest.raises(ServingError, match=r"Model folder '/no/such' does not exist"):
        FolderRepository("/no/such")
    with pytest.raises(ParameterError, match=r"'queue_size': expected an integer >= 1, got 0"):
        create_app(repository, queue_size=0)


def test_keras_backend_serves_the_same_answers(models, digit):
    """The store on Keras' predict_on_batch (the fallback when ONNX did not pass its check)."""
    import asyncio

    image, _ = digit
    x = np.array([image], np.float32)

    async def both():
        answers = []
        for backend in ("keras", "onnx"):
            store = ModelStore(FolderRepository(models), models=["digits/2"], backend=backend)
            await store.start()
            loaded = await store.served("digits")
            answers.append((loaded.backend, await loaded.batcher.infer([x], timeout=30)))
            await store.close()
        return answers

    (keras, [k]), (onnx, [o]) = asyncio.run(both())
    assert (keras, onnx) == ("keras", "onnx")
    np.testing.assert_allclose(k, o, atol=1e-5)


def test_the_registry_repository_serves_an_alias_and_refuses_a_champion_that_does_not_fit(
    models, digit
):
    """The same store on MLflow's model registry (the session's temporary tracking store)."""
    import asyncio

    from workbench.deploy import registry

    image, _ = digit
    name = "served-digits"
    first = registry.register(models / "digits" / "1", name=name, alias="champion")
    repository = RegistryRepository([name])
    assert repository.versions(name) == [first.version]
    assert repository.labels(name) == {"champion": first.version}

    async def swap():
        store = ModelStore(repository, models=[name])
        await store.start()
        loaded = await store.served(name)
        before = await loaded.batcher.infer([np.array([image], np.float32)], timeout=30)
        other = await asyncio.to_thread(
            registry.register, models / "echo" / "1", name=name, alias="champion"
        )
        changes = await store.refresh()
        still = await store.served(name)
        await store.close()
        return loaded, before, other, changes, still

    loaded, [before], other, [change], still = asyncio.run(swap())
    assert loaded.version == first.version and before.shape == (1, 10)
    assert Path(repository.folder(name, first.version), "export.json").is_file()
    assert change["result"] == "refused" and change["to"] == other.version
    assert f"does not fit version {first.version}'s signature" in change["reason"]
    assert still.version == first.version


# -- SIGTERM ------------------------------------------------------------------------------------
def test_sigterm_finishes_the_request_in_flight_then_exits_0(models, digit, tmp_path):
    """`workbench serve` in its own process, on Keras: every model of the folder loads at
    start-up in a process that imports Keras for the first time."""
    image, _ = digit
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    # The batch waits 1.5 s for more rows, so the request is in flight when SIGTERM comes.
    extra = [
        "--backend",
        "keras",
        "--max-wait-ms",
        "1500",
        "--request-timeout",
        "20",
        "--poll",
        "0",
    ]
    command = [sys.executable, "-m", "workbench", *serve_argv(models, "127.0.0.1", port), *extra]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, lambda: process.poll() is None)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(
                httpx.post, f"{url}/v1/models/digits:predict", json={"instances": [image]},
                timeout=30,
            )  # fmt: skip

            def in_flight() -> bool:
                loaded = httpx.get(f"{url}/admin/status").json()["models"]["digits"]["loaded"]
                return loaded["1"]["running"] + loaded["1"]["queued"] == 1

            wait_for(in_flight, "saw the request in flight")
            process.send_signal(signal.SIGTERM)
            wait_for(lambda: b"Shutting down" in log.read_bytes(), "started shutting down")
            wait_for(lambda: _refused(port), "stopped accepting connections")
            r = answer.result()
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert r.status_code == 200 and len(r.json()["predictions"][0]) == 10
    assert "stopped on SIGTERM after finishing the requests in flight" in log.read_text()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False
