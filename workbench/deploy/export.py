"""Export a trained run: the inference model as .keras, SavedModel and ONNX, checked and timed.

    export = export_model(run_dir)               # the current training run of a run directory
    export = export_model(run_dir / "train" / run_id, "runs/deploy/digits")
    print(format_table(latency_table(export)))

The export folder (model.keras, saved_model/, model.onnx and export.json: the
model's name, input and outputs, class names, lineage, each format's hash, the checks and the
latencies) is built in a hidden temporary folder beside `out_dir` and renamed into place with
export.json written last, so a folder with export.json is complete and a killed export leaves
none. Each format is loaded back and compared with the Keras inference model on real raw
inputs from the version's validation split (max abs difference <= 1e-4), and its latency at
batch 1 and 256 is measured in this process.

ONNX: `model.export(format="onnx")` (tf2onnx on the model's call) for numeric inputs. It cannot
carry the lookup tables of text columns (tf2onnx writes an invalid graph with an unconverted
`LookupTableFindV2`), so a model with string inputs is converted from its SavedModel, where
tf2onnx finds the tables and maps them to ONNX-ML `CategoryMapper`. A format that still fails
is recorded under `formats.onnx.error` with the reason; the export goes on without it.

The runners (`KerasRunner`, `SavedModelRunner`, `OnnxRunner`) are what the service calls:
`runner(inputs: dict[str, ndarray]) -> dict[str, ndarray]`, with `.input_names`,
`.output_names` and `.warm()`. None of them calls `model.predict` or eager `model(x)`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from workbench import params
from workbench.config import current, display_path, load_keras, quiet_logger, read_index
from workbench.data import DatasetVersion, load_version
from workbench.deploy.inference import (
    describe_input,
    inference_model,
    output_name,
    raw_inputs,
)
from workbench.errors import ServingError
from workbench.files import atomic_write_json, read_json, sha256_file
from workbench.train import TRAIN_DIR, load_trained

FORMAT_VERSION = 1
EXPORT_FILE = "export.json"
DEPLOY_DIR = "deploy"  # default exports: <run_dir>/deploy/<train run id>/
FORMATS = {"keras": "model.keras", "saved_model": "saved_model", "onnx": "model.onnx"}
TOLERANCE = 1e-4  # max abs difference allowed between a format and the Keras inference model
LATENCY_BATCHES = (1, 256)
ONNX_CONVERTERS = {  # export_model(onnx=...): how model.onnx is made ("auto": by the inputs)
    "export": 'model.export(format="onnx")',
    "saved_model": "tf2onnx on the SavedModel",
}
BACKENDS = ("onnx", "keras")  # what the service may run, fastest first by default
LINEAGE_METRICS = ("selected", "epochs_run", "validation", "test")  # of metrics.json
PACKAGES = ("keras", "tensorflow-cpu", "tensorflow", "tf2onnx", "onnx", "onnxruntime")


# ---- hashes ----------------------------------------------------------------------------------


def folder_sha256(path: str | Path) -> str:
    """Hex sha256 of a folder's content: for every file in sorted relative-path order, its
    POSIX relative path, a NUL byte, its size, a NUL byte and its bytes. Renaming, editing,
    adding or removing a file changes it; the folder's own name and timestamps do not."""
    root = Path(path)
    if not root.is_dir():
        raise ServingError(f"folder_sha256: {str(root)!r} is not a folder.")
    h = hashlib.sha256()
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    for rel in sorted(files):
        h.update(f"{rel}\0{files[rel].stat().st_size}\0".encode())
        with open(files[rel], "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def artifact_sha256(path: str | Path) -> str:
    """The hash export.json records for an artifact: `sha256_file` of a file, `folder_sha256`
    of a folder (the SavedModel)."""
    path = Path(path)
    return folder_sha256(path) if path.is_dir() else sha256_file(path)


def read_export(folder: str | Path) -> dict[str, Any]:
    """The export.json of an export folder (ServingError if there is none: not an export, or
    an export that did not finish)."""
    path = Path(folder) / EXPORT_FILE
    if not path.is_file():
        raise ServingError(
            f"No {EXPORT_FILE} in {str(folder)!r}: not an export folder, or an export that did "
            "not finish. Export a trained run with workbench.deploy.export.export_model(...)."
        )
    return read_json(path)


def verify_export(folder: str | Path, export: dict[str, Any] | None = None) -> None:
    """ServingError unless every artifact in `folder` has the hash `export` (default: the
    folder's export.json) records for it."""
    folder = Path(folder)
    export = read_export(folder) if export is None else export
    for fmt, entry in export["formats"].items():
        if "sha256" not in entry:
            continue  # a format that could not be exported
        path = folder / entry["path"]
        actual = artifact_sha256(path) if path.exists() else "missing"
        if actual != entry["sha256"]:
            raise ServingError(
                f"Export {display_path(folder)!r}: {entry['path']} ({fmt}) does not match the "
                f"sha256 export.json records (found {actual[:16]}..., recorded "
                f"{entry['sha256'][:16]}...); the artifact was changed or damaged after export. "
                "Export the run again."
            )


# ---- runners ---------------------------------------------------------------------------------


class _Runner:
    """Shared checks of the runners: named inputs in, named float outputs out."""

    input_names: list[str]
    output_names: list[str]
    _dtypes: dict[str, str]  # input name -> "float32" or "string"
    _shapes: dict[str, tuple[int, ...]]  # input name -> shape of one sample

    def _check(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        if not isinstance(inputs, dict) or set(inputs) != set(self.input_names):
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ServingError(
                f"{type(self).__name__}: expected a dict with the inputs {self.input_names}, "
                f"got {got}."
            )
        out = {}
        for name in self.input_names:
            dtype = np.float32 if self._dtypes[name] == "float32" else str
            out[name] = np.asarray(inputs[name], dtype)
        return out

    def warm(self) -> None:
        """Run batches of 1 and 2 zero (or empty-text) samples: graphs are traced, for any
        batch size from the second call on (TensorFlow relaxes the traced shape), and memory
        is allocated before the first real request."""
        for rows in (1, 2):
            self(
                {
                    name: np.zeros((rows, *self._shapes[name]), np.float32)
                    if self._dtypes[name] == "float32"
                    else np.full((rows, *self._shapes[name]), "")
                    for name in self.input_names
                }
            )

    def predicted_classes(self, x: Any) -> np.ndarray:
        """The class index per row of `x`, the raw rows of the one input: the argmax of the
        probabilities (the output of that name, else the first), or a 0.5 threshold of a
        single binary column."""
        if len(self.input_names) != 1:
            raise ServingError(
                f"{type(self).__name__}.predicted_classes: the model has the inputs "
                f"{self.input_names}; call the runner with a dict of them instead."
            )
        out = self({self.input_names[0]: x})
        p = np.asarray(out.get("probabilities", next(iter(out.values()))))
        p = p.reshape(len(p), -1)
        return (p[:, 0] >= 0.5).astype(int) if p.shape[1] == 1 else p.argmax(axis=1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(inputs={self.input_names}, outputs={self.output_names})"


def _existing(path: str | Path, owner: str, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise ServingError(f"{owner}: no such path {str(path)!r}; expected {what} of an export.")
    return path


def _dtype_name(dtype: Any) -> str:
    return "string" if "string" in str(dtype) or "str" in str(dtype) else "float32"


class KerasRunner(_Runner):
    """model.keras loaded with `safe_mode=True`, called with `predict_on_batch` (one compiled
    predict function; no per-call `predict` overhead and no eager call)."""

    def __init__(self, path: str | Path):
        keras = load_keras()
        self.path = _existing(path, "KerasRunner", "a model.keras file")
        self.model = keras.saving.load_model(self.path, safe_mode=True, compile=False)
        specs = self.model.input if isinstance(self.model.input, dict) else {}
        if not specs:
            raise ServingError(
                f"KerasRunner: {str(path)!r} is not an inference model with named inputs; "
                "export it with workbench.deploy.export.export_model(...)."
            )
        self.input_names = list(specs)
        self._dtypes = {k: _dtype_name(t.dtype) for k, t in specs.items()}
        self._shapes = {k: tuple(t.shape[1:]) for k, t in specs.items()}
        self.output_names = list(self.model.output)

    def __call__(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        out = self.model.predict_on_batch(self._check(inputs))
        return {k: np.asarray(out[k]) for k in self.output_names}


class SavedModelRunner(_Runner):
    """The SavedModel loaded with `tf.saved_model.load`, called through its `serve` endpoint."""

    def __init__(self, path: str | Path):
        import tensorflow as tf

        self.path = _existing(path, "SavedModelRunner", "a SavedModel folder")
        self._tf = tf
        self.loaded = tf.saved_model.load(str(self.path))
        signature = self.loaded.signatures["serving_default"]
        specs = signature.structured_input_signature[1]
        self.input_names = list(specs)
        self._dtypes = {k: _dtype_name(s.dtype.name) for k, s in specs.items()}
        self._shapes = {k: tuple(s.shape[1:]) for k, s in specs.items()}
        self.output_names = list(signature.structured_outputs)

    def __call__(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        tf = self._tf
        out = self.loaded.serve({k: tf.constant(v) for k, v in self._check(inputs).items()})
        return {k: out[k].numpy() for k in self.output_names}


class OnnxRunner(_Runner):
    """An onnxruntime session on model.onnx (CPU); `threads` sets its intra-op threads (default:
    onnxruntime's, one per core)."""

    def __init__(self, path: str | Path, *, threads: int | None = None):
        import onnxruntime as ort

        self.path = _existing(path, "OnnxRunner", "a model.onnx file")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = params.check_int("threads", threads, minimum=1)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        specs = self.session.get_inputs()
        self.input_names = [s.name for s in specs]
        self._dtypes = {s.name: _dtype_name(s.type) for s in specs}
        self._shapes = {s.name: tuple(d if isinstance(d, int) else 1 for d in s.shape[1:])
                        for s in specs}  # fmt: skip
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        feed = {k: v if v.dtype == np.float32 else v.astype(object)
                for k, v in self._check(inputs).items()}  # fmt: skip
        return dict(zip(self.output_names, self.session.run(self.output_names, feed), strict=True))


def load_onnx(path: str | Path, *, threads: int | None = None) -> OnnxRunner:
    """An `OnnxRunner` on `path` (a model.onnx file or an export folder holding one)."""
    path = Path(path)
    return OnnxRunner(path / FORMATS["onnx"] if path.is_dir() else path, threads=threads)


def fastest_backend(export: dict[str, Any]) -> str:
    """The backend the service should use: the one of BACKENDS that passed the export check
    with the lowest batch-1 latency ("keras" when ONNX is missing)."""
    usable = [b for b in BACKENDS if "sha256" in export["formats"].get(b, {})]
    timed = export.get("latency_ms", {})
    return min(usable, key=lambda b: timed.get(b, {}).get("1", float("inf")))


def open_runner(folder: str | Path, backend: str = "auto", *, threads: int | None = None) -> Any:
    """The runner for an export folder: `backend` "onnx", "keras" or "auto" (the faster one
    that passed the export check). A pipeline's folder (export.json of kind "pipeline") opens
    as `workbench.amalgam.pipeline.Pipeline`, each component in its own format (`backend`
    "pipeline" or any other is not used; `threads` goes to its ONNX components)."""
    params.check_choice("backend", backend, ("auto", "pipeline", *BACKENDS))
    folder = Path(folder)
    export = read_export(folder)
    if export.get("kind") == "pipeline":
        from workbench.amalgam.pipeline import open_pipeline

        return open_pipeline(folder, threads=threads)
    if backend == "pipeline":
        raise ServingError(
            f"Export {str(folder)!r} is not a pipeline (its export.json has no kind "
            "'pipeline'); use backend 'auto', 'onnx' or 'keras'."
        )
    backend = fastest_backend(export) if backend == "auto" else backend
    entry = export["formats"].get(backend, {})
    if "sha256" not in entry:
        raise ServingError(
            f"Export {str(folder)!r} has no usable {backend} model ({entry.get('error', 'absent')}"
            f"); use backend='keras'."
        )
    if backend == "onnx":
        return OnnxRunner(folder / entry["path"], threads=threads)
    return KerasRunner(folder / entry["path"])


# ---- the export ------------------------------------------------------------------------------


def time_calls(runner: Any, inputs: dict, repeats: int, *, warmup: int = 1) -> list[float]:
    """Seconds per call of `runner(inputs)`, `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        runner(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(inputs)
        times.append(time.perf_counter() - start)
    return times


def _reused(out: Path, run_folder: Path, name: str) -> dict[str, Any]:
    """The export already at `out` if it is a complete, intact export of this run and name."""
    try:
        existing = read_export(out)
        verify_export(out, existing)
    except ServingError as e:
        raise ServingError(
            f"export_model: {str(out)!r} already exists and is not a complete export ({e}); "
            "pass overwrite=True to replace it, or another out_dir."
        ) from e
    same = (existing.get("lineage", {}).get("train_run"), existing.get("model_name")) == (
        run_folder.name,
        name,
    )
    if not same:
        raise ServingError(
            f"export_model: {str(out)!r} holds the export of run "
            f"{existing.get('lineage', {}).get('train_run')!r} as {existing.get('model_name')!r}, "
            f"not of {run_folder.name!r} as {name!r}; pass overwrite=True or another out_dir."
        )
    return existing


def export_model(
    run: Any,
    out_dir: str | Path | None = None,
    *,
    name: str | None = None,
    check_batch: int = 64,
    repeats: int = 5,
    overwrite: bool = False,
    onnx: str = "auto",
    saved_model: bool = True,
) -> dict[str, Any]:
    """Export a trained run and return its export.json.

    `run` is a training run folder `<run_dir>/train/<run_id>` (or a `TrainResult`), or a run
    directory (its current training run). `out_dir` defaults to `<run_dir>/deploy/<run_id>`;
    a complete export of the same run and name there is reused (its hashes checked: running a
    notebook again exports nothing twice), anything else there is refused unless `overwrite`.
    `name` is the registry name (default: the data source's, e.g. "digits"). `check_batch`
    validation samples are compared across formats; latencies are medians of `repeats` calls
    after a warm-up.
    `onnx` chooses the ONNX conversion: "auto" (`model.export` for numeric inputs, the
    SavedModel for text inputs), "export" (always `model.export`) or "saved_model".
    `saved_model=False` leaves the SavedModel out (TensorFlow Serving's format; the workbench
    service runs ONNX or Keras), unless the ONNX conversion reads it: the production loop's
    candidates are exported so, ~1 s and one more load back each on the smoke profile.
    """
    check_batch = params.check_int("check_batch", check_batch, minimum=1)
    repeats = params.check_int("repeats", repeats, minimum=1)
    overwrite = params.check_bool("overwrite", overwrite)
    onnx = params.check_choice("onnx", onnx, ("auto", *ONNX_CONVERTERS))
    saved_model = params.check_bool("saved_model", saved_model)
    folder, run_dir = _run_folder(run)
    metrics = read_json(folder / "metrics.json")
    version = _data_version(run_dir, folder, metrics)
    name = model_name(version) if name is None else _check_name(name)
    out = Path(out_dir) if out_dir is not None else run_dir / DEPLOY_DIR / folder.name
    if out.exists() and not overwrite:
        return _reused(out, folder, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        with quiet_logger("tensorflow"):
            export = _build(
                tmp,
                folder,
                run_dir,
                metrics,
                version,
                name,
                check_batch,
                repeats,
                onnx,
                saved_model,
            )
        atomic_write_json(tmp / EXPORT_FILE, export)  # last: its presence means complete
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return export


def _run_folder(run: Any) -> tuple[Path, Path]:
    """(training run folder, run directory) of `run`, with clear errors for what is missing."""
    path = getattr(run, "path", run)  # a TrainResult knows its folder
    if not isinstance(path, str | os.PathLike):
        raise ServingError(
            f"export_model: run must be a training run folder, a run directory or a "
            f"TrainResult, got {type(run).__name__}."
        )
    path = Path(path).expanduser()
    expected = (
        "expected a training run folder <run_dir>/train/<run_id> (with model.keras and "
        "metrics.json) or a run directory with a current training run"
    )
    if not path.is_dir():
        raise ServingError(
            f"export_model: no trained run at {str(path)!r}; {expected}. Train a model first "
            "(notebook 04_train or workbench.train.train)."
        )
    is_run = path.parent.name == TRAIN_DIR or (path / "metrics.json").is_file()
    if not is_run:  # a run directory: its current training run
        run_id = current(path, TRAIN_DIR)
        if run_id is None:
            found = sorted(p.parent.name for p in path.glob(f"{TRAIN_DIR}/*/model.keras"))
            raise ServingError(
                f"export_model: {str(path)!r} is neither a training run folder nor a run "
                f"directory with a current training run (trained runs there: {found}); "
                f"{expected}."
            )
        path = path / TRAIN_DIR / run_id
    for required in ("model.keras", "metrics.json"):
        if not (path / required).is_file():
            present = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
            raise ServingError(
                f"export_model: the training run {str(path)!r} has no {required} (files there: "
                f"{present}); the training did not finish. Run the same train() call again: it "
                "resumes and saves the model."
            )
    return path, path.parent.parent


def _data_version(run_dir: Path, folder: Path, metrics: dict[str, Any]) -> DatasetVersion:
    """The data version the run trained on, checked against the content hash it recorded."""
    if "data_version" not in metrics:
        raise ServingError(
            f"export_model: {str(folder / 'metrics.json')!r} names no data_version; expected "
            "the metrics.json that workbench.train.train writes."
        )
    version = load_version(run_dir, metrics["data_version"])
    recorded = metrics.get("data_content_sha256")
    actual = version.manifest.get("content_sha256")
    if recorded and recorded != actual:
        raise ServingError(
            f"export_model: run {folder.name!r} trained on data with content sha256 "
            f"{recorded[:16]}..., but data version {version.id!r} now holds {str(actual)[:16]}"
            "...; prepare the data again or train again on this version."
        )
    return version


def model_name(version: DatasetVersion) -> str:
    """A registry name from the data source: "digits", "sklearn:wine" -> "wine",
    "csv:data/penguins.csv" -> "penguins"."""
    kind, _, arg = version.source.partition(":")
    stem = Path(arg).stem if kind in ("csv", "folder") else (arg or kind)
    return re.sub(r"[^a-z0-9_-]+", "-", stem.lower()).strip("-_") or "model"


def _check_name(name: Any) -> str:
    params.check_str("name", name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ServingError(
            f"Parameter 'name': expected letters, digits, '_', '-' or '.' (a registry name), "
            f"got {name!r}."
        )
    return name


def _build(
    tmp, folder, run_dir, metrics, version, name, check_batch, repeats, onnx, saved_model
) -> dict[str, Any]:
    """Write the formats into `tmp`, check and time them; the export.json content."""
    transform, task = version.transform, version.task
    trained = load_trained(run_dir, folder.name)
    model = inference_model(trained, transform, class_names=version.class_names, task=task)
    x = _check_samples(version, check_batch)
    batch = raw_inputs(transform, x)
    # the reference outputs; calling the model first is also what model.export(format="onnx")
    # requires of it (without the SavedModel export, nothing else would have called it)
    reference = {k: np.asarray(v) for k, v in model.predict_on_batch(batch).items()}
    seconds, converter, onnx_error = _write_formats(model, tmp, onnx, saved_model)
    written = [fmt for fmt in FORMATS if fmt != "saved_model" or "saved_model" in seconds]
    diffs = {"transform": _max_abs_diff(reference, _network_outputs(trained, transform, x, task))}
    runners: dict[str, Any] = {"keras": KerasRunner(tmp / FORMATS["keras"])}
    if "saved_model" in written:
        runners["saved_model"] = SavedModelRunner(tmp / FORMATS["saved_model"])
    for fmt, runner in runners.items():
        diffs[fmt] = _max_abs_diff(reference, runner(batch))
    for fmt in ("transform", *runners):
        if not diffs[fmt] <= TOLERANCE:
            what = "Transform.apply + the network" if fmt == "transform" else f"the {fmt} export"
            raise ServingError(
                f"export_model: {what} differs from the Keras inference model by "
                f"{diffs[fmt]:.3g} (max abs) on {len(x)} validation samples; expected at most "
                f"{TOLERANCE:g}. This is a bug in the export: report it with the data version."
            )
    if onnx_error is None:
        onnx_error = _check_onnx(tmp / FORMATS["onnx"], batch, reference, runners, diffs)
    if onnx_error is not None:
        (tmp / FORMATS["onnx"]).unlink(missing_ok=True)
    latency = {fmt: _latency(runner, batch, repeats) for fmt, runner in runners.items()}
    del runners  # release the sessions before the folder is renamed

    formats: dict[str, dict[str, Any]] = {}
    for fmt, path in FORMATS.items():
        if fmt not in written:
            formats[fmt] = {"path": path, "skipped": "saved_model=False"}
        elif fmt == "onnx" and onnx_error is not None:
            formats[fmt] = {"path": path, "error": onnx_error}
        else:
            formats[fmt] = {"path": path, "sha256": artifact_sha256(tmp / path)}
            formats[fmt]["max_abs_diff"] = diffs[fmt]
    formats["onnx"]["converter"] = ONNX_CONVERTERS[converter]
    return {
        "format_version": FORMAT_VERSION,
        "model_name": name,
        "input": describe_input(transform),
        "outputs": [
            {"name": k, "dtype": "float32", "shape": [-1, *v.shape[1:]]}
            for k, v in reference.items()
        ],
        "class_names": list(version.class_names),
        "task": task,
        "formats": formats,
        "checks": {"batch": len(x), "tolerance": TOLERANCE, "max_abs_diff": diffs},
        "latency_ms": latency,
        "export_seconds": seconds,
        "example": _example(batch),
        "lineage": _lineage(folder, run_dir, metrics, version),
        "environment": _environment(),
    }


def _write_formats(
    model: Any, tmp: Path, onnx: str, saved_model: bool = True
) -> tuple[dict[str, float], str, str | None]:
    """Save model.keras, saved_model/ (unless not `saved_model` and ONNX does not need it) and
    model.onnx into `tmp`: (seconds per written format, the ONNX converter used, None or why
    ONNX could not be exported)."""
    seconds = {}
    start = time.perf_counter()
    model.save(tmp / FORMATS["keras"])
    seconds["keras"] = time.perf_counter() - start
    strings = any(_dtype_name(t.dtype) == "string" for t in model.inputs)
    converter = "saved_model" if onnx == "saved_model" or (onnx == "auto" and strings) else "export"
    if saved_model or converter == "saved_model":
        start = time.perf_counter()
        model.export(str(tmp / FORMATS["saved_model"]), format="tf_saved_model", verbose=False)
        seconds["saved_model"] = time.perf_counter() - start
    start = time.perf_counter()
    error = _export_onnx(model, tmp / FORMATS["saved_model"], tmp / FORMATS["onnx"], converter)
    seconds["onnx"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in seconds.items()}, converter, error


@contextmanager
def _tf2onnx_errors() -> Iterator[list[str]]:
    """tf2onnx's error log records, collected instead of printed (they become the reason)."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("tf2onnx")
    handler, level, propagate = Collect(logging.ERROR), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _export_onnx(model: Any, saved_model: Path, path: Path, converter: str) -> str | None:
    """Write model.onnx with `converter`; None, or why it could not be exported (the file is
    then removed)."""
    with _tf2onnx_errors() as logged, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Keras' numpy-2 patch of tf2onnx
        try:
            if converter == "saved_model":
                _onnx_from_saved_model(saved_model, path)
            else:
                model.export(str(path), format="onnx", verbose=False)
        except Exception as e:
            path.unlink(missing_ok=True)
            return f"{ONNX_CONVERTERS[converter]} failed: {_first_line(e)}"
    if logged:  # tf2onnx continues past nodes it cannot convert and writes a broken graph
        path.unlink(missing_ok=True)
        return f"{ONNX_CONVERTERS[converter]} could not convert the graph: {_first_line(logged[0])}"
    return None


def _onnx_from_saved_model(saved_model: Path, path: Path) -> None:
    """tf2onnx's `--saved-model` conversion (which carries lookup tables) in this process."""
    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader, utils
    from tf2onnx.tfonnx import process_tf_graph

    graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
        str(saved_model),
        None,
        None,
        signatures=["serving_default"],
        return_initialized_tables=True,
        return_tensors_to_rename=True,
    )
    with tf.device("/cpu:0"), tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        onnx_graph = process_tf_graph(
            graph,
            input_names=inputs,
            output_names=outputs,
            initialized_tables=tables,
            tensors_to_rename=renames,
        )
        proto = optimizer.optimize_graph(onnx_graph).make_model(f"converted from {saved_model}")
    utils.save_protobuf(str(path), proto)


def _check_onnx(
    path: Path,
    batch: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    runners: dict[str, Any],
    diffs: dict[str, float],
) -> str | None:
    """Load model.onnx in onnxruntime and compare it on `batch`: None (its runner added to
    `runners`, its difference to `diffs`), or why it is not usable."""
    try:
        runner = OnnxRunner(path)
    except Exception as e:  # onnxruntime refuses the graph
        return f"onnxruntime cannot load the converted model: {_first_line(e)}"
    if sorted(runner.input_names) != sorted(batch):
        return f"the ONNX graph takes the inputs {runner.input_names}, expected {sorted(batch)}"
    try:
        outputs = runner(batch)
    except Exception as e:
        return f"onnxruntime fails on the validation samples: {_first_line(e)}"
    diffs["onnx"] = _max_abs_diff(reference, outputs)
    if not diffs["onnx"] <= TOLERANCE:
        return (
            f"differs from the Keras inference model by {diffs['onnx']:.3g} (max abs) on the "
            f"validation samples; expected at most {TOLERANCE:g}"
        )
    runners["onnx"] = runner
    return None


def _first_line(error: Any) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _check_samples(version: DatasetVersion, n: int) -> np.ndarray:
    """Up to `n` raw samples of the validation split (else test, else train)."""
    for split in ("val", "test", "train"):
        x = version.split(split)[0]
        if len(x):
            return x[:n]
    raise ServingError(f"export_model: data version {version.id!r} holds no samples.")


def _network_outputs(trained: Any, transform: Any, x: np.ndarray, task: str) -> dict[str, Any]:
    """The trained network on `Transform.apply(x)`: what the inference model must reproduce."""
    y = trained.predict_on_batch(transform.apply(x))
    if isinstance(y, dict):
        return y
    if isinstance(y, list | tuple):
        return dict(zip(trained.output_names, y, strict=True))
    return {output_name(task): y}


def _max_abs_diff(expected: dict[str, Any], actual: dict[str, Any]) -> float:
    """Largest absolute difference over all outputs (NaN in the same places counts as equal;
    a missing output or a NaN in one only is infinite)."""
    worst = 0.0
    for key, want in expected.items():
        if key not in actual:
            return float("inf")
        a, b = np.asarray(want, np.float64), np.asarray(actual[key], np.float64)
        if a.shape != b.shape:
            return float("inf")
        both = np.isnan(a) & np.isnan(b)
        diff = np.where(both, 0.0, np.abs(a - b))
        if diff.size:
            worst = max(worst, float(np.nan_to_num(diff, nan=np.inf).max()))
    return worst


def _latency(runner: _Runner, batch: dict[str, np.ndarray], repeats: int) -> dict[str, float]:
    """{"1": ms, "256": ms}: the median of `repeats` calls after one warm-up call."""
    n = len(next(iter(batch.values())))
    out = {}
    for size in LATENCY_BATCHES:
        rows = np.arange(size) % n
        inputs = {k: v[rows] for k, v in batch.items()}
        times = time_calls(runner, inputs, repeats)
        out[str(size)] = round(1000 * statistics.median(times), 3)
    return out


def _example(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    """The first check sample as one TF Serving row-format instance (missing numbers: null)."""
    example = {}
    for k, v in batch.items():
        value = v[0]
        if value.dtype.kind == "f":
            value = np.where(np.isnan(value), None, value.astype(object))
            example[k] = value.tolist() if value.ndim else value.item()
        else:
            example[k] = value.tolist()
    return example


def _lineage(
    folder: Path, run_dir: Path, metrics: dict[str, Any], version: DatasetVersion
) -> dict[str, Any]:
    """Where the exported model came from: training run, MLflow run, data, spec, metrics."""
    from workbench.design import ModelSpec

    mlflow_file = folder / "mlflow_run_id"
    spec = metrics.get("spec")
    return {
        "train_run": folder.name,
        "mlflow_run_id": mlflow_file.read_text().strip() if mlflow_file.is_file() else None,
        "data_source": version.source,
        "data_version": version.id,
        "data_sha256": version.manifest.get("content_sha256"),
        "spec": ModelSpec.from_dict(spec).version if spec else read_index(run_dir).get("design"),
        "metrics": {k: metrics[k] for k in LINEAGE_METRICS if k in metrics},
    }


def _environment() -> dict[str, str]:
    """Versions of the packages that wrote and checked the formats."""
    found = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder to `out`; an old export there is moved aside first and
    removed after, so `out` is never a mix of two exports."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    os.replace(out, old / out.name)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


# ---- reports ---------------------------------------------------------------------------------


def latency_table(export: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for `workbench.tables.format_table`: per format its latency at batch 1 and 256
    (ms, in-process), the speed-up over Keras at batch 1, and its check against Keras."""
    timed = export.get("latency_ms", {})
    keras_1 = timed.get("keras", {}).get("1")
    rows = []
    for fmt, entry in export["formats"].items():
        ms = timed.get(fmt, {})
        row: dict[str, Any] = {"format": fmt, "path": entry["path"]}
        for size in LATENCY_BATCHES:
            row[f"batch {size} (ms)"] = ms.get(str(size), "-")
        one = ms.get("1")
        row["vs keras (batch 1)"] = f"{keras_1 / one:.1f}x" if one and keras_1 else "-"
        diff = entry.get("max_abs_diff")
        row["max abs diff"] = f"{diff:.1e}" if diff is not None else "-"
        why = entry.get("error", entry.get("skipped"))
        row["note"] = f"not exported: {why}" if why else ""
        rows.append(row)
    return rows
