"""Figure 3's serving pipeline: versioned, reconfigurable components named by a config file.

    images -> representations (preprocess -> bottom -> four heads) -> tasks (with postprocess)

A component is a folder `<store>/<name>@<version>/`: component.json (name, kind, declared
input and output tensors, its artifact's sha256) and one artifact: a Keras model (model.keras,
safe mode), an ONNX graph (model.onnx) or fitted numbers (numbers.npz, applied with NumPy).
Its version is a content hash. The representations component holds the preprocessing (the
transform's rescaling) and the shared bottom with its four heads; a task component does its
task and its postprocessing. The config (JSON) names the components by name@version and the
representation each task is fed (a "pair" task is fed it for two images, "a" and "b"):

    {"components": "components", "representations": "representations@3f2a9c1b0d4e",
     "tasks": {"classes": {"component": "classes@c7f31a0e9d2b", "input": "logits"},
               "pair": {"component": "pair@e41d07b5c6a8", "input": "low_latent"}}}

    reps = save_representations(store, amalgam, version)
    classes = save_component(store, "classes", "calibrate", numbers={"temperature": 1.6},
                             inputs={"logits": [10]})
    config = write_config(run_dir / "pipeline.json", reps, {"classes": (classes, "logits")})
    pipeline = load_pipeline(config)        # wiring checked; pipeline({"images": x}) -> outputs
    publish_pipeline(config, "models", "amalgam", label="champion")   # models/amalgam/<n>/

Replacing a component: save the new one, edit its name@version in the config (by hand or with
`replace_component`), publish: the
next version folder in TF Serving's layout (export.json of kind "pipeline", the config, copies
of the components), the label moved; the service swaps it in at its next alias check. Each
component loads once per process (a cache by name@version): what versions share is shared.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench import params
from workbench.config import display_path, quiet_logger
from workbench.deploy.export import KerasRunner, OnnxRunner, folder_sha256, read_export
from workbench.deploy.repositories import EXPORT_FILE, LABELS_FILE, FolderRepository
from workbench.deploy.signatures import DEFAULT_SIGNATURE, TensorSpec
from workbench.errors import ParameterError, ServingError
from workbench.files import atomic_write_json, atomic_write_text, read_json, sha256_file

log = logging.getLogger("workbench.serve")

MANIFEST, CONFIG, NUMBERS = "component.json", "pipeline.json", "numbers.npz"
MODELS = {"keras": "model.keras", "onnx": "model.onnx"}
PAIR_INPUTS = ("a", "b")  # a pair task's inputs: two raw images
MODEL_KINDS = ("representations", "pair")  # the other kinds hold numbers
# number kind -> (the numbers it needs, the one whose last axis is its input width, its input)
NUMBER_KINDS = {
    "search": (("index", "labels", "k"), "index", "high_latent"),
    "ood": (("means", "precision", "threshold"), "means", "low_latent"),
    "calibrate": (("temperature",), None, "logits"),
    "tags": (("thresholds",), "thresholds", "attributes"),
}
KEYS = ["component", "input"]  # of a task in the config
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LOADED: weakref.WeakValueDictionary[str, Component] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


# ---- what the number kinds compute ------------------------------------------------------------


def _search(n: Mapping[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Labels and cosine distances of the k nearest training vectors (`unit`: the index as
    unit columns, one contiguous (D, N) matrix)."""
    dist = 1.0 - (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)) @ n["unit"]
    idx = np.argpartition(dist, int(n["k"]) - 1, axis=1)[:, : int(n["k"])]
    idx = np.take_along_axis(idx, np.argsort(np.take_along_axis(dist, idx, 1), axis=1), 1)
    return {
        "neighbor_labels": n["labels"][idx].astype(np.int64),
        "neighbor_distances": np.take_along_axis(dist, idx, 1).astype(np.float32),
    }


def _ood(n: Mapping[str, np.ndarray], z: np.ndarray) -> dict[str, np.ndarray]:
    """Mahalanobis distance to the nearest class mean, and 1 where it passes `threshold`."""
    diff = z[:, None, :] - n["means"][None]
    d2 = np.einsum("nkd,de,nke->nk", diff, n["precision"], diff).min(axis=1)
    score = np.sqrt(np.maximum(d2, 0.0))
    return {"ood_score": score.astype(np.float32), "ood": (score > n["threshold"]).astype(np.int64)}


def _calibrate(n: Mapping[str, np.ndarray], logits: np.ndarray) -> dict[str, np.ndarray]:
    """softmax(logits / temperature) and the most likely class (no temperature changes it)."""
    z = logits / n["temperature"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    probabilities = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return {"probabilities": probabilities, "predicted_class": logits.argmax(1).astype(np.int64)}


def _tags(n: Mapping[str, np.ndarray], p: np.ndarray) -> dict[str, np.ndarray]:
    """1 where an attribute's probability reaches its threshold (fitted on validation)."""
    return {"tags": (p >= n["thresholds"]).astype(np.int64)}


APPLY = {"search": _search, "ood": _ood, "calibrate": _calibrate, "tags": _tags}


# ---- components -------------------------------------------------------------------------------


@dataclass(eq=False)
class Component:
    """A loaded component: its declared tensors and `call({input: array}) -> {output: array}`
    (a Keras or ONNX runner, or a number kind's function)."""

    name: str
    kind: str
    version: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    call: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.call(inputs)


def _spec(block: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec(block["name"], block["dtype"], tuple(block["shape"]))


def _version(manifest: Mapping[str, Any]) -> str:
    """The content hash of the declared tensors and the artifact's sha256 (12 hex digits)."""
    keys = ("name", "kind", "inputs", "outputs", "artifacts")
    text = json.dumps({k: manifest[k] for k in keys}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """A component's component.json, with its artifact's hash and its version checked."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise ServingError(f"{display_path(folder)!r} is not a component: it has no {MANIFEST}.")
    manifest = read_json(folder / MANIFEST)
    for file, recorded in manifest["artifacts"].items():
        found = sha256_file(folder / file) if (folder / file).is_file() else "missing"
        if found != recorded or _version(manifest) != manifest["version"]:
            raise ServingError(
                f"Component {display_path(folder)!r}: {file} has sha256 {found[:12]}... and "
                f"version {_version(manifest)}, but {MANIFEST} records {recorded[:12]}... and "
                f"{manifest['version']}: it changed after it was saved. Save it again."
            )
    return manifest


def _open(folder: Path, manifest: Mapping[str, Any], threads: int | None) -> Callable:
    """The call of a component's artifact (not yet compared with its declared outputs)."""
    [file] = manifest["artifacts"]
    if file == MODELS["keras"]:
        return KerasRunner(folder / file)
    if file == MODELS["onnx"]:
        return OnnxRunner(folder / file, threads=threads)
    kind = manifest["kind"]
    with np.load(folder / file, allow_pickle=False) as stored:
        numbers = {k: stored[k] for k in stored.files}
    missing = [k for k in NUMBER_KINDS[kind][0] if k not in numbers]
    if missing:
        raise ServingError(f"Component {manifest['name']!r} ({kind}) lacks the numbers {missing}.")
    if kind == "search":  # once, not at every call
        index = numbers["index"]
        numbers["unit"] = np.ascontiguousarray((index / np.linalg.norm(index, axis=1)[:, None]).T)
    return lambda inputs: APPLY[kind](numbers, next(iter(inputs.values())))


def _trial(name: str, call: Callable, inputs: Sequence[TensorSpec]) -> list[dict[str, Any]]:
    """The output blocks that two zero rows of the declared inputs give."""
    try:
        out = call({t.name: np.zeros((2, *t.shape[1:]), t.dtype) for t in inputs})
    except Exception as e:
        takes = [f"{t.name} {t.dtype} {list(t.shape)}" for t in inputs]
        raise ServingError(f"Component {name!r} fails on its declared inputs {takes}: {e}") from e
    out = {k: np.asarray(v) for k, v in out.items()}
    return [{"name": k, "dtype": str(v.dtype), "shape": [-1, *v.shape[1:]]} for k, v in out.items()]


def _cached(folder: str | Path, threads: int | None = None) -> tuple[Component, bool]:
    """(the component in `folder`, whether this call loaded it rather than found it loaded)."""
    manifest = read_manifest(folder)
    ref = f"{manifest['name']}@{manifest['version']}"
    with _LOCK:
        if (found := _LOADED.get(ref)) is not None:
            return found, False
        inputs = tuple(_spec(b) for b in manifest["inputs"])
        call = _open(Path(folder), manifest, threads)
        if (gives := _trial(ref, call, inputs)) != manifest["outputs"]:
            raise ServingError(
                f"Component {ref} gives {gives}; {MANIFEST} declares {manifest['outputs']}."
            )
        outputs = tuple(_spec(b) for b in manifest["outputs"])
        _LOADED[ref] = component = Component(
            manifest["name"], manifest["kind"], manifest["version"], inputs, outputs, call
        )
    log.info("component %s loaded from %s", ref, display_path(folder))
    return component, True


def load_component(folder: str | Path, *, threads: int | None = None) -> Component:
    """The component saved in `folder`, checked (hashes, declared outputs): one loaded object
    per name@version in this process. `threads`: intra-op threads of an ONNX component."""
    return _cached(folder, threads)[0]


def _save(store: str | Path, name: str, kind: str, inputs: list[dict], write: Callable) -> Path:
    """Write the artifact with `write(folder) -> file name`, declare what it gives on a trial
    batch, and move it to `<store>/<name>@<version>` (kept if already there)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParameterError(f"Parameter 'name': expected letters, digits, _-. , got {name!r}.")
    Path(store).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=store, prefix=f".{name}."))
    try:
        with quiet_logger("tensorflow"), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Keras' numpy-2 patch of tf2onnx
            file = write(tmp)  # new models trace new graphs: expected, not worth a warning
        manifest = {"format_version": 1, "name": name, "kind": kind, "inputs": inputs,
                    "artifacts": {file: sha256_file(tmp / file)}}  # fmt: skip
        manifest["outputs"] = _trial(name, _open(tmp, manifest, None), [_spec(b) for b in inputs])
        manifest["version"] = _version(manifest)
        atomic_write_json(tmp / MANIFEST, manifest)
        out = Path(store) / f"{name}@{manifest['version']}"
        shutil.rmtree(tmp) if out.exists() else os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _model_writer(model: Any, fmt: str) -> Callable[[Path], str]:
    params.check_choice("fmt", fmt, tuple(MODELS))

    def write(folder: Path) -> str:
        if fmt == "onnx":  # Keras exports only a model that has run
            model.predict_on_batch(
                {k: np.zeros((1, *t.shape[1:]), "float32") for k, t in model.input.items()}
            )
            model.export(str(folder / MODELS[fmt]), format="onnx", verbose=False)
        else:
            model.save(folder / MODELS[fmt])
        return MODELS[fmt]

    return write


def save_representations(
    store: str | Path, model: Any, version: Any, *, name: str = "representations",
    fmt: str = "keras",
) -> Path:  # fmt: skip
    """Save an amalgam's serving view (`serving_model`: the data version's raw input in, the
    four representations out) as a component of `store`, as model.keras or (`fmt` "onnx")
    model.onnx; returns its folder `<store>/<name>@<version>`."""
    from workbench.amalgam.model import serving_model
    from workbench.deploy.inference import describe_input

    served, inputs = serving_model(model, version), [describe_input(version.transform)]
    return _save(store, name, "representations", inputs, _model_writer(served, fmt))


def save_component(
    store: str | Path, name: str, kind: str, *, model: Any = None,
    numbers: Mapping[str, Any] | None = None, inputs: Mapping[str, Sequence[int]] | None = None,
    fmt: str = "keras",
) -> Path:  # fmt: skip
    """Save a task head as a component of `store`; returns its folder `<store>/<name>@<version>`.

    Model kinds (a "pair" head, a "representations" model) take a Keras `model` with named
    inputs (a pair head: "a" and "b"); number kinds take the `numbers` NUMBER_KINDS lists.
    `inputs` ({name: shape of one row}) declares the input; by default the model's, or the
    kind's usual representation as wide as its numbers ("calibrate" cannot tell: give it).
    """
    params.check_choice("kind", kind, (*MODEL_KINDS, *NUMBER_KINDS))
    if (model is None) == (kind in MODEL_KINDS) or (numbers is None) == (kind in NUMBER_KINDS):
        what = "model= (a Keras model)" if kind in MODEL_KINDS else "numbers="
        raise ParameterError(f"A {kind!r} component is saved from {what} alone.")
    if model is not None:
        if not all(isinstance(getattr(model, a, None), dict) for a in ("input", "output")):
            raise ParameterError("A model component needs named inputs and outputs: "
                                 "keras.Model({name: Input}, {name: output}).")  # fmt: skip
        inputs = inputs or {k: t.shape[1:] for k, t in model.input.items()}
        if kind == "pair" and sorted(inputs) != list(PAIR_INPUTS):
            raise ParameterError(f"A pair head takes the inputs {PAIR_INPUTS}; got {list(inputs)}.")
        write = _model_writer(model, fmt)
    else:
        _, width, usual = NUMBER_KINDS[kind]
        arrays = {k: np.asarray(v) for k, v in numbers.items()}
        if inputs is None and width not in arrays:
            raise ParameterError(f"A {kind!r} component needs inputs={{{usual!r}: [width]}}.")
        inputs = inputs or {usual: [arrays[width].shape[-1]]}
        if len(inputs) != 1:
            raise ParameterError(f"A {kind!r} component takes one input; got {list(inputs)}.")

        def write(folder: Path) -> str:
            np.savez(folder / NUMBERS, **arrays)
            return NUMBERS

    blocks = [{"name": k, "dtype": "float32", "shape": [-1, *s]} for k, s in inputs.items()]
    return _save(store, name, kind, blocks, write)


# ---- the pipeline -----------------------------------------------------------------------------


def read_config(path: str | Path) -> dict[str, Any]:
    """A pipeline config (JSON) with its keys checked."""
    path = Path(params.check_path("config_path", path))
    where = f"Pipeline config {display_path(path)!r}"
    try:
        config = read_json(path)
    except ValueError as e:
        raise ServingError(f"{where} is not valid JSON: {e}.") from None
    tasks = config.get("tasks") if isinstance(config, dict) else None
    keys = {"components", "representations", "tasks"}
    if not isinstance(tasks, dict) or set(config) - keys or "representations" not in config:
        raise ServingError(
            f'{where} holds {str(config)[:80]!r}; expected "representations", '
            '"tasks" and optionally "components".'
        )
    for task, entry in tasks.items():
        entry_keys = sorted(entry) if isinstance(entry, dict) else entry
        if not _NAME.fullmatch(task) or task == DEFAULT_SIGNATURE or entry_keys != KEYS:
            raise ServingError(
                f"{where}: task {task!r} is {entry!r}; expected a name of letters, digits, _-. "
                f'(not {DEFAULT_SIGNATURE!r}) and {{"component": "name@version", "input": '
                '"<representation>"}.'
            )
    return {"components": config.get("components", "components"), **config}


def _manifests(path: Path, config: Mapping[str, Any]) -> dict[str, tuple[Path, dict]]:
    """{"representations" or a task: (its component's folder, its manifest)}."""
    store = path.parent / config["components"]
    refs = {"representations": config["representations"]}
    refs.update({task: entry["component"] for task, entry in config["tasks"].items()})
    for role, ref in refs.items():
        if not isinstance(ref, str) or not (store / ref / MANIFEST).is_file():
            have = sorted(p.name for p in store.glob("*@*")) if store.is_dir() else []
            raise ServingError(
                f"Pipeline config {display_path(path)!r} names the {role} "
                f"component {ref!r}; {display_path(store)!r} has {have}."
            )
    return {role: (store / ref, read_manifest(store / ref)) for role, ref in refs.items()}


def _fits(want: Mapping[str, Any], given: Mapping[str, Any]) -> bool:
    a, b = want["shape"], given["shape"]
    same = len(a) == len(b) and all(x == y or -1 in (x, y) for x, y in zip(a, b, strict=False))
    return same and want["dtype"] == given["dtype"]


def _wiring(path: Path, config: Mapping, found: Mapping, *, check: bool = True) -> dict:
    """export.json's "input", "outputs" and "signatures" (one per task) of a pipeline. With
    `check`, ServingError unless every task's declared inputs fit what it is fed (dtype and
    shape) and the tasks' outputs have distinct names."""
    where, reps = f"Pipeline config {display_path(path)!r}", found["representations"][1]
    if check and (reps["kind"] != "representations" or len(reps["inputs"]) != 1):
        raise ServingError(
            f"{where}: {config['representations']} is a {reps['kind']!r} "
            "component; a pipeline starts with a 'representations' one."
        )
    given, image = {o["name"]: o for o in reps["outputs"]}, reps["inputs"][0]
    outputs, signatures, seen = [], {}, {}
    for task, entry in config["tasks"].items():
        m = found[task][1]
        ref, fed = f"{m['name']}@{m['version']}", given.get(entry["input"])
        if check and (fed is None or m["kind"] == "representations"):
            raise ServingError(
                f"{where}: task {task!r} ({ref}, kind {m['kind']}) is fed "
                f"{entry['input']!r}; expected a task fed one of {list(given)}."
            )
        for want in m["inputs"] if check else ():
            if not _fits(want, fed):
                raise ServingError(
                    f"{where}: task {task!r} component {ref} (kind {m['kind']}) takes input "
                    f"{want['name']!r} {want['dtype']} {want['shape']}, but it is fed "
                    f"{entry['input']!r} of {config['representations']}, {fed['dtype']} "
                    f"{fed['shape']}. Wire it to a representation of that shape and dtype, or "
                    "fit the component on this one."
                )
        for out in m["outputs"]:
            if check and out["name"] in seen:
                raise ServingError(
                    f"{where}: tasks {seen[out['name']]!r} and {task!r} both "
                    f"give the output {out['name']!r}; rename one."
                )
            seen[out["name"]] = task
        if m["kind"] == "pair":
            ins = [{**image, "name": n} for n in PAIR_INPUTS]
            signatures[task] = {"inputs": ins, "outputs": m["outputs"]}
        else:
            outputs += m["outputs"]
            signatures[task] = {"outputs": [o["name"] for o in m["outputs"]]}
    if not outputs:
        raise ServingError(f"{where}: a pipeline needs a task that takes one image.")
    return {"input": image, "outputs": outputs, "signatures": signatures}


class Pipeline:
    """A loaded pipeline, as `export.open_runner` gives it to the service: `pipeline({"images":
    x})` -> every single-image task's outputs; `pipeline.functions[task]({"a": x, "b": y})` ->
    a pair task's; `about`: its components, which this load read from disk, which it shared."""

    def __init__(self, components: dict[str, Component], config: Mapping, about: dict) -> None:
        self.components, self.about = components, about
        self.representations = reps = components["representations"]
        self.input_names = [t.name for t in reps.inputs]
        tasks = {t: (components[t], e["input"]) for t, e in config["tasks"].items()}
        self._single = [(c, rep) for c, rep in tasks.values() if c.kind != "pair"]
        self.output_names = [o.name for c, _ in self._single for o in c.outputs]
        self.functions = {
            t: _Pair(reps, c, rep) for t, (c, rep) in tasks.items() if c.kind == "pair"
        }

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        reps, out = self.representations(inputs), {}
        for component, rep in self._single:
            out.update(component({component.inputs[0].name: reps[rep]}))
        return out


class _Pair:
    """A pair task as a function of its own: images "a" and "b" through the representations
    in one call, then the pair head on the representation the task is fed."""

    input_names = list(PAIR_INPUTS)

    def __init__(self, representations: Component, head: Component, rep: str) -> None:
        self.representations, self.head, self.rep = representations, head, rep
        self.output_names = [t.name for t in head.outputs]

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        a, n = np.asarray(inputs["a"]), len(inputs["a"])
        both = np.concatenate([a, np.asarray(inputs["b"])])
        z = self.representations({self.representations.inputs[0].name: both})[self.rep]
        return self.head({"a": z[:n], "b": z[n:]})


def load_pipeline(config_path: str | Path, *, threads: int | None = None) -> Pipeline:
    """Load the pipeline a config describes: the wiring checked first (a ServingError names
    the component, the input it declares and what it is fed), then the components."""
    path = Path(config_path)
    config = read_config(path)
    found = _manifests(path, config)
    _wiring(path, config, found)
    components, fresh = {}, []
    for role, (folder, _) in found.items():
        components[role], loaded = _cached(folder, threads)
        fresh += [components[role].ref] if loaded else []
    refs = {role: c.ref for role, c in components.items()}
    shared = sorted(set(refs.values()) - set(fresh))
    return Pipeline(
        components, config, {"pipeline": {"components": refs, "loaded": fresh, "shared": shared}}
    )


def open_pipeline(folder: str | Path, *, threads: int | None = None) -> Pipeline:
    """The pipeline of a published version folder (`export.open_runner` opens it so)."""
    config = read_export(folder)["pipeline"]["config"]  # export.json of kind "pipeline"
    return load_pipeline(Path(folder) / config, threads=threads)


def _ordered_json(obj: Any) -> str:
    """JSON in the order written: the order of the tasks is the order of their outputs."""
    return json.dumps(obj, indent=2) + "\n"


def write_config(
    path: str | Path, representations: str | Path, tasks: Mapping[str, tuple[str | Path, str]],
    *, components: str = "components",
) -> Path:  # fmt: skip
    """Write a pipeline config (JSON) from component folders (or name@version) and, for each
    task, (its component, the representation it is fed); returns its path."""
    config = {
        "components": components,
        "representations": Path(representations).name,
        "tasks": {t: {"component": Path(c).name, "input": r} for t, (c, r) in tasks.items()},
    }
    return atomic_write_text(path, _ordered_json(config))


def replace_component(
    config_path: str | Path, task: str, component: str | Path, *, to: str | Path | None = None
) -> Path:
    """The config with `task` fed by another component (its folder or name@version), written
    atomically in place or to `to` (beside it: the components folder is relative); returns
    the path written. Publishing it makes the swap."""
    path = Path(config_path)
    config = read_config(path)
    if task not in config["tasks"]:
        raise ServingError(
            f"Pipeline config {display_path(path)!r} has no task {task!r}; it has "
            f"{sorted(config['tasks'])}."
        )
    config["tasks"][task]["component"] = Path(component).name
    return atomic_write_text(path if to is None else to, _ordered_json(config))


def publish_pipeline(
    config_path: str | Path, base: str | Path, name: str, *, label: str | None = "champion",
    check: bool = True,
) -> str:  # fmt: skip
    """Write the config's pipeline as the next version of `<base>/<name>/` (TF Serving's
    layout: export.json of kind "pipeline", pipeline.json, copies of its components) and point
    `label` at it; returns the version. The same pipeline content reuses its version.
    `check=False` skips the wiring check (to see the service refuse what does not fit)."""
    path, folder = Path(config_path), Path(base) / name
    config = read_config(path)
    found = _manifests(path, config)
    blocks = _wiring(path, config, found, check=check)
    content = {"representations": config["representations"], "tasks": config["tasks"]}
    digest = hashlib.sha256(_ordered_json(content).encode()).hexdigest()
    published = FolderRepository(base).versions(name) if folder.is_dir() else []
    same = [v for v in published if read_export(folder / v).get("pipeline", {}).get("sha256")
            == digest]  # fmt: skip
    numbers = [int(p.name) for p in folder.glob("*") if p.name.isdigit()]
    version = same[0] if same else str(max(numbers, default=0) + 1)
    if not same:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{version}."))
        try:
            for component, _ in found.values():
                shutil.copytree(component, tmp / "components" / component.name, dirs_exist_ok=True)
            atomic_write_text(tmp / CONFIG, _ordered_json({"components": "components", **content}))
            refs = {role: f.name for role, (f, _) in found.items()}
            formats = {
                "pipeline": {"path": CONFIG, "sha256": sha256_file(tmp / CONFIG)},
                "components": {"path": "components", "sha256": folder_sha256(tmp / "components")},
            }
            about = {"config": CONFIG, "sha256": digest, "components": refs}
            export = {"format_version": 1, "kind": "pipeline", "model_name": name, **blocks}
            atomic_write_json(tmp / EXPORT_FILE, {**export, "pipeline": about, "formats": formats})
            os.replace(tmp, folder / version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if label is not None:
        atomic_write_json(
            folder / LABELS_FILE, {**FolderRepository(base).labels(name), label: version}
        )
    log.info("pipeline %s: version %s%s", name, version, f" is {label!r}" if label else "")
    return version
