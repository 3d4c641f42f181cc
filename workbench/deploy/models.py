"""The model store behind the service: which versions exist, what each label serves, and the
loaded versions (warmed before they serve, a bounded number kept, least recently used out).

    store = ModelStore(FolderRepository("/models"), models=["digits@champion"])
    await store.start()                          # loads and warms the default versions
    loaded = await store.served("digits", label="champion")
    outputs = await loaded.batcher.infer(arrays, timeout=1.0)
    await store.refresh()                        # the alias check: hot swap where a label moved

Two repositories hold versions: `FolderRepository(base)` reads TF Serving's layout
(`<base>/<name>/<version>/export.json` with the artifacts beside it, labels in
`<base>/<name>/labels.json` as {"champion": "3"}; the folder a container mounts), and
`RegistryRepository(names)` reads MLflow's model registry through `workbench.deploy.registry`.

A label (or "latest", when a model has no champion) is a binding: it serves one loaded version.
When the repository moves it, the new version is checked (same signature as the old), loaded
and warmed beside the old one, then the binding switches on the event loop (atomic for
requests: a look-up and its queueing happen with no await between them) and the old version
drains its queue and is unloaded. A version that fails any step is refused, the old one keeps
serving, and the reason goes to the log and to the status endpoint. Readiness never drops.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from workbench.deploy.batching import Batcher, ServiceError
from workbench.errors import ServingError
from workbench.files import read_json

log = logging.getLogger("workbench.serve")

EXPORT_FILE = "export.json"
LABELS_FILE = "labels.json"
DEFAULT_LABEL = "champion"  # a bare model name serves this label (else the latest version)
FORMAT_VERSION = 1
EXAMPLE_LABELS = '{"champion": "3"}'
_REF = re.compile(r"^(?P<name>[^@/:\s]+)(?:@(?P<label>[^@/:\s]+)|/(?P<version>[^@/:\s]+))?$")

TF_DTYPES = {
    "float32": "DT_FLOAT",
    "float64": "DT_DOUBLE",
    "float16": "DT_HALF",
    "int8": "DT_INT8",
    "int16": "DT_INT16",
    "int32": "DT_INT32",
    "int64": "DT_INT64",
    "uint8": "DT_UINT8",
    "bool": "DT_BOOL",
    "string": "DT_STRING",
}
V2_DTYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "float16": "FP16",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "bool": "BOOL",
    "string": "BYTES",
}


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """ "digits" -> ("digits", None, None); "digits@champion" -> (name, "champion", None);
    "digits/3" -> (name, None, "3")."""
    match = _REF.match(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise ServingError(
            f"Model reference {ref!r} is not NAME, NAME@LABEL or NAME/VERSION; e.g. "
            "'digits', 'digits@champion' or 'digits/3'."
        )
    return match["name"], match["label"], match["version"]


def short_repr(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (a message must not echo a whole body)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as a client sees it: name, dtype, shape (-1: any size; rows first),
    and for inputs what the model can take: `nonfinite` "reject" (images), "nan" (NaN marks
    a missing table value) or "allow"; `range` of raw values, with its description."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nonfinite: str = "allow"
    range: tuple[float, float] | None = None
    description: str = ""

    def key(self) -> tuple[str, str, tuple[int, ...]]:
        return self.name, self.dtype, self.shape

    def convert(self, value: Any, *, what: str) -> np.ndarray:
        """`value` (nested lists from JSON, rows first) as this input's array, or a 400 that
        says what was expected."""
        arr = _strings(value, what) if self.dtype == "string" else _numbers(value, self, what)
        if arr.ndim != len(self.shape) or any(
            want not in (-1, got) for want, got in zip(self.shape, arr.shape, strict=False)
        ):
            raise _bad(
                f"{what} has shape {list(arr.shape)}; the model takes {list(self.shape)} "
                f"(-1: any size), i.e. rows of shape {list(self.shape[1:])}."
            )
        if arr.shape[0] == 0:
            raise _bad(f"{what} has no rows; send at least one.")
        if arr.dtype.kind == "f":
            self._check_values(arr, what)
        return arr

    def _check_values(self, arr: np.ndarray, what: str) -> None:
        finite = np.isfinite(arr)
        if self.nonfinite != "allow" and not finite.all():
            nan = np.isnan(arr)
            bad = ~finite if self.nonfinite == "reject" else ~finite & ~nan
            if bad.any():
                kind = "NaN or infinite" if self.nonfinite == "reject" else "infinite"
                first = [int(i) for i in np.argwhere(bad)[0]]
                note = "; NaN marks a missing value" if self.nonfinite == "nan" else ""
                raise _bad(
                    f"{what} holds {int(bad.sum())} {kind} value(s) (first at index {first}); "
                    f"the model takes {self.description or 'finite numbers'}{note}."
                )
        if self.range is not None and finite.any():
            lo, hi = float(arr[finite].min()), float(arr[finite].max())
            if lo < self.range[0] or hi > self.range[1]:
                raise _bad(
                    f"{what} holds values outside [{self.range[0]:g}, {self.range[1]:g}] (min "
                    f"{lo:g}, max {hi:g}); the model takes {self.description or 'that range'}."
                )


def _bad(message: str) -> ServiceError:
    return ServiceError(400, message)


def _numbers(value: Any, spec: TensorSpec, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise _bad(
            f"{what} is a ragged nested list (rows of different lengths); every row must have "
            f"shape {list(spec.shape[1:])}."
        ) from None
    integer = np.dtype(spec.dtype).kind in "iu"
    if arr.dtype.kind not in ("iu" if integer else "fiu"):
        found = {
            "b": "booleans",
            "U": "strings",
            "f": "non-integer numbers",
        }.get(arr.dtype.kind, "nulls, objects or numbers out of range")
        raise _bad(
            f"{what} must hold {'integers' if integer else 'numbers'} ({spec.dtype}); it holds "
            f"{found}, e.g. {short_repr(_example(arr, _is_integer if integer else _is_number))}."
        )
    with np.errstate(over="ignore"):
        return arr.astype(spec.dtype, copy=False)


def _example(arr: np.ndarray, fits) -> Any:
    """The first element of `arr` that `fits` refuses, as the client sent it."""
    for v in arr.ravel()[:10_000]:
        v = v.item() if isinstance(v, np.generic) else v
        if not fits(v):
            return v
    return None


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _strings(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=object)
    if not all(isinstance(v, str) for v in arr.ravel()):
        example = _example(arr, lambda v: isinstance(v, str))
        raise _bad(f"{what} must hold strings ('' where missing); it holds {short_repr(example)}.")
    return arr


@dataclass(frozen=True)
class Signature:
    """A version's inputs and outputs, as export.json describes them."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_export(cls, export: dict[str, Any]) -> Signature:
        block = export["input"]
        if block.get("kind") == "tabular":
            inputs = tuple(
                TensorSpec(
                    c["name"],
                    c["dtype"],
                    tuple(c.get("shape", [-1])),
                    nonfinite="nan",
                    description=f"column {c.get('column', c['name'])!r} as the table holds it",
                )
                for c in block["columns"]
            )
        else:
            image = block.get("kind") == "image"
            inputs = (
                TensorSpec(
                    block["name"],
                    block["dtype"],
                    tuple(block["shape"]),
                    nonfinite="reject" if image else "allow",
                    range=tuple(block["range"]) if block.get("range") else None,
                    description=block.get("description", ""),
                ),
            )
        outputs = tuple(
            TensorSpec(o["name"], o["dtype"], tuple(o["shape"])) for o in export["outputs"]
        )
        return cls(inputs, outputs)

    def difference(self, other: Signature) -> str:
        """What differs from `other` ("" when clients see the same inputs and outputs)."""
        parts = []
        for what, mine, theirs in (
            ("inputs", self.inputs, other.inputs),
            ("outputs", self.outputs, other.outputs),
        ):
            a, b = [t.key() for t in mine], [t.key() for t in theirs]
            if a != b:
                parts.append(f"{what} {_keys(b)} instead of {_keys(a)}")
        return "; ".join(parts)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def _keys(keys: list[tuple[str, str, tuple[int, ...]]]) -> str:
    return ", ".join(f"{n} {d} {list(s)}" for n, d, s in keys)


class ModelRepository(Protocol):
    """Where model versions live. Versions are complete export folders; labels name versions."""

    def names(self) -> list[str]:
        """The models it holds."""

    def versions(self, name: str) -> list[str]:
        """The model's complete versions, oldest first."""

    def labels(self, name: str) -> dict[str, str]:
        """{label: version}, e.g. {"champion": "3", "challenger": "4"}."""

    def folder(self, name: str, version: str) -> Path:
        """A local export folder of that version (export.json and its artifacts)."""


class FolderRepository:
    """TF Serving's model base path: `<base>/<name>/<version>/` (a number) holding an export
    folder, and `<base>/<name>/labels.json` ({"champion": "3"}). A version counts once its
    export.json exists (the exporter writes it last)."""

    def __init__(self, base: str | Path) -> None:
        self.base = Path(base)
        if not self.base.is_dir():
            raise ServingError(
                f"Model folder {str(self.base)!r} does not exist; expected TF Serving's layout "
                "<folder>/<name>/<version>/export.json (mount or create it first)."
            )

    def __repr__(self) -> str:
        return f"FolderRepository({str(self.base)!r})"

    def names(self) -> list[str]:
        return sorted(p.name for p in self.base.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        folder = self.base / name
        if not folder.is_dir():
            return []
        found = [
            p.name for p in folder.iterdir() if p.name.isdigit() and (p / EXPORT_FILE).is_file()
        ]
        return sorted(found, key=int)

    def labels(self, name: str) -> dict[str, str]:
        path = self.base / name / LABELS_FILE
        if not path.is_file():
            return {}
        try:
            labels = read_json(path)
        except ValueError as e:
            raise ServingError(
                f'{path} is not valid JSON ({e}); expected {{"champion": "3"}}.'
            ) from None
        if not isinstance(labels, dict) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in labels.values()
        ):
            raise ServingError(f'{path} holds {labels!r}; expected {{"champion": "3"}}.')
        return {str(k): str(v) for k, v in labels.items()}

    def folder(self, name: str, version: str) -> Path:
        return self.base / name / version


class RegistryRepository:
    """MLflow's model registry (`workbench.deploy.registry`): the versions of the named models,
    their aliases as labels, and a verified local copy of each version's export folder."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = list(names)

    def __repr__(self) -> str:
        return f"RegistryRepository({self._names!r})"

    @staticmethod
    def _registry():
        from workbench.deploy import registry

        return registry

    def names(self) -> list[str]:
        return list(self._names)

    def versions(self, name: str) -> list[str]:
        """Complete versions only: a registration that did not finish is never served."""
        return [v.version for v in self._registry().list_versions(name) if v.complete]

    def labels(self, name: str) -> dict[str, str]:
        return dict(self._registry().aliases(name))

    def folder(self, name: str, version: str) -> Path:
        return Path(self._registry().resolve(f"{name}/{version}").path)


@dataclass
class LoadedVersion:
    """A loaded, warmed version with its batcher."""

    name: str
    version: str
    export: dict[str, Any]
    signature: Signature
    backend: str
    batcher: Batcher

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.version


@dataclass
class Binding:
    """A label (None: the latest version) and the version it serves."""

    name: str
    label: str | None
    wanted: str | None = None  # the version the repository names now
    version: str | None = None  # the version it serves (None until one is loaded)
    refused: dict[str, str] = field(default_factory=dict)  # version -> why

    @property
    def title(self) -> str:
        return f"{self.name}@{self.label}" if self.label else f"{self.name} (latest)"


@dataclass
class VersionState:
    """TF Serving's ModelVersionStatus: state and status of one version."""

    state: str = "START"  # START (known, not loaded), LOADING, AVAILABLE, END
    error_code: str = "OK"
    error_message: str = ""


class ModelStore:
    """Versions of the served models: bindings, loading, the LRU of loaded versions, hot swap.

    All state changes happen on the event loop; loading and warm-up run in worker threads.
    `models` are references ("digits", "digits@champion", "digits/3"); None serves every
    model of the repository with its default (the champion label, else the latest version).
    """

    def __init__(
        self,
        repository: ModelRepository,
        *,
        models: Sequence[str] | None = None,
        backend: str = "auto",
        max_batch: int = 256,
        max_wait_ms: float = 0.0,
        queue_size: int = 64,
        max_loaded: int = 4,
    ) -> None:
        self.repository = repository
        self.backend = backend
        self.batching = {
            "max_batch": max_batch,
            "max_wait_ms": max_wait_ms,
            "queue_size": queue_size,
        }
        self.max_loaded = max_loaded
        self._bindings: dict[tuple[str, str | None], Binding] = {}
        self._defaults: dict[str, Binding | str] = {}  # name -> its binding or pinned version
        self._loaded: OrderedDict[tuple[str, str], LoadedVersion] = OrderedDict()
        self._loading: dict[tuple[str, str], asyncio.Task] = {}
        self._failed: dict[tuple[str, str], str] = {}
        self._states: dict[tuple[str, str], VersionState] = {}
        self._exports: dict[tuple[str, str], dict[str, Any]] = {}
        self._refresh_lock: asyncio.Lock | None = None
        # One load at a time: two threads importing Keras at once break its first import,
        # and on a few cores parallel loads only slow the requests being served.
        self._open_lock = threading.Lock()
        self._resolve_defaults(models)

    def _resolve_defaults(self, models: Sequence[str] | None) -> None:
        """What each served model's plain route serves; unknown names and labels fail here."""
        available = self.repository.names()
        refs = [parse_ref(m) for m in models] if models else [(n, None, None) for n in available]
        if not refs:
            raise ServingError(f"{self.repository!r} holds no model with a complete version.")
        for name, label, version in refs:
            versions = self.repository.versions(name)
            if not versions:
                raise ServingError(
                    f"Model {name!r} not found in {self.repository!r}; it holds {available}."
                )
            labels = self.repository.labels(name)
            if version is not None:
                _known(name, version, versions)
                self._defaults[name] = version
                continue
            if label is None and DEFAULT_LABEL in labels:
                label = DEFAULT_LABEL
            if label is not None and label not in labels:
                raise _no_label(name, label, labels)
            wanted = labels[label] if label else versions[-1]
            binding = Binding(name, label, wanted=wanted)
            self._bindings[(name, label)] = binding
            self._defaults[name] = binding

    @property
    def names(self) -> list[str]:
        return list(self._defaults)

    async def start(self) -> None:
        """Start loading every default version (readiness turns true as they finish)."""
        self._refresh_lock = asyncio.Lock()
        for name, target in self._defaults.items():
            if isinstance(target, Binding):
                coro = self._bound(target)
            else:
                coro = self._load(name, target)
            asyncio.ensure_future(coro).add_done_callback(_quiet)

    async def close(self) -> None:
        """Unload everything: queued requests still run, then the worker threads end."""
        loaded = list(self._loaded.values())
        self._loaded.clear()
        for item in loaded:
            item.batcher.close()
        await asyncio.to_thread(lambda: [item.batcher.close(wait=True) for item in loaded])

    # -- what a route means -------------------------------------------------------------
    def check_name(self, name: str) -> None:
        if name not in self._defaults:
            raise ServiceError(404, f"Model {name!r} not found; this service serves {self.names}.")

    async def served(
        self, name: str, *, version: str | None = None, label: str | None = None
    ) -> LoadedVersion:
        """The loaded version a route names (loading it on first use); 404 when unknown."""
        self.check_name(name)
        if version is not None:
            key = (name, version)
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            _known(name, version, await asyncio.to_thread(self.repository.versions, name))
            return await self._load(name, version)
        if label is not None:
            return await self._bound(await self._binding(name, label))
        target = self._defaults[name]
        if isinstance(target, Binding):
            return await self._bound(target)
        return await self._load(name, target)

    async def _binding(self, name: str, label: str) -> Binding:
        binding = self._bindings.get((name, label))
        if binding is None:
            labels = await asyncio.to_thread(self.repository.labels, name)
            if label not in labels:
                raise _no_label(name, label, labels)
            binding = self._bindings.setdefault(
                (name, label), Binding(name, label, wanted=labels[label])
            )
        return binding

    async def version_of(
        self, name: str, *, version: str | None = None, label: str | None = None
    ) -> str:
        """The version a route names now, without loading it (status and metadata)."""
        self.check_name(name)
        if version is not None:
            if (name, version) not in self._loaded:
                _known(name, version, await asyncio.to_thread(self.repository.versions, name))
            return version
        target = await self._binding(name, label) if label else self._defaults[name]
        if isinstance(target, Binding):
            return target.version or target.wanted or ""
        return target

    async def versions(self, name: str) -> list[str]:
        self.check_name(name)
        return await asyncio.to_thread(self.repository.versions, name)

    async def export(self, name: str, version: str) -> dict[str, Any]:
        """A version's export.json (read once: versions never change)."""
        key = (name, version)
        if key not in self._exports:
            folder = await asyncio.to_thread(self.repository.folder, name, version)
            self._exports[key] = await asyncio.to_thread(_read_export, folder)
        return self._exports[key]

    def loaded(self) -> list[LoadedVersion]:
        """The loaded versions, least recently used first."""
        return list(self._loaded.values())

    def state(self, name: str, version: str) -> VersionState:
        return self._states.get((name, version), VersionState())

    def ready(self, name: str | None = None, version: str | None = None) -> tuple[bool, str]:
        """(ready, why not): the service (every default), a model's default, or a version."""
        if name is not None and version is not None:
            if (name, version) in self._loaded:
                return True, ""
            return False, _not_ready(name, version, self.state(name, version))
        for model in [name] if name else self.names:
            target = self._defaults[model]
            served = target.version if isinstance(target, Binding) else target
            wanted = target.wanted if isinstance(target, Binding) else target
            if served is None or (model, served) not in self._loaded:
                return False, _not_ready(model, wanted or "", self.state(model, wanted or ""))
        return True, ""

    # -- loading --------------------------------------------------------------------------
    async def _bound(self, binding: Binding) -> LoadedVersion:
        if binding.version is not None and (binding.name, binding.version) in self._loaded:
            key = (binding.name, binding.version)
            self._loaded.move_to_end(key)
            return self._loaded[key]
        if binding.wanted is None:
            raise ServiceError(503, f"{binding.title} names no version.")
        loaded = await self._load(binding.name, binding.wanted)
        if binding.version is None:
            binding.version = loaded.version
        return self._loaded.get((binding.name, binding.version), loaded)

    async def _load(self, name: str, version: str) -> LoadedVersion:
        key = (name, version)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        if key in self._failed:
            raise ServiceError(503, self._failed[key])
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load_now(name, version))
            task.add_done_callback(_quiet)
            self._loading[key] = task
        return await asyncio.shield(task)

    async def _load_now(self, name: str, version: str) -> LoadedVersion:
        key = (name, version)
        self._states[key] = VersionState("LOADING")
        try:
            loaded = await asyncio.to_thread(self._open, name, version)
        except Exception as e:
            reason = f"Version {version} of {name!r} could not be loaded: {e}"
            self._failed[key] = reason
            self._states[key] = VersionState("END", "UNAVAILABLE", reason)
            log.warning("%s", reason)
            raise ServiceError(503, reason) from None
        finally:
            self._loading.pop(key, None)
        loaded.batcher.start()
        self._exports.setdefault(key, loaded.export)
        self._loaded[key] = loaded
        self._states[key] = VersionState("AVAILABLE")
        log.info("%s/%s: loaded and warmed (%s backend)", name, version, loaded.backend)
        self._evict(keep=key)
        return loaded

    def backend_for(self, export: dict[str, Any]) -> str:
        """The backend a version runs on: --backend, or for "auto" the faster one that passed
        the export check (onnxruntime where the ONNX export passed, else Keras)."""
        from workbench.deploy.export import fastest_backend

        return fastest_backend(export) if self.backend == "auto" else self.backend

    def _open(self, name: str, version: str) -> LoadedVersion:
        """Verify, load and warm one version (in a worker thread; touches no shared state)."""
        from workbench.deploy.export import open_runner, verify_export

        with self._open_lock:
            folder = self.repository.folder(name, version)
            export = _read_export(folder)
            verify_export(folder, export)  # every artifact has the hash export.json records
            signature = Signature.from_export(export)
            backend = self.backend_for(export)
            run = _model_call(open_runner(folder, backend), signature)
            _warm_up(run, signature)
        batcher = Batcher(run, name=f"model {name!r} version {version}", **self.batching)
        return LoadedVersion(name, version, export, signature, backend, batcher)

    def _kept(self) -> set[tuple[str, str]]:
        """Versions that bindings or pinned defaults serve: never evicted."""
        kept = {(b.name, b.version) for b in self._bindings.values() if b.version}
        kept |= {(n, t) for n, t in self._defaults.items() if isinstance(t, str)}
        return kept

    def _evict(self, *, keep: tuple[str, str]) -> None:
        kept = self._kept() | {keep}
        for key in [k for k in self._loaded if k not in kept]:
            if len(self._loaded) <= self.max_loaded:
                break
            self._unload(self._loaded[key], "least recently used; loads again on its next use")

    def _unload(self, loaded: LoadedVersion, why: str) -> None:
        self._loaded.pop(loaded.key, None)
        loaded.batcher.close()
        self._states[loaded.key] = VersionState("END", "OK", f"unloaded: {why}")
        log.info("%s/%s: unloaded (%s)", loaded.name, loaded.version, why)

    # -- hot swap -------------------------------------------------------------------------
    async def refresh(self, *, retry: bool = False) -> list[dict[str, Any]]:
        """The alias check: for every binding whose label moved (or, for "latest", a newer
        version appeared), swap to the new version or refuse it. Returns what happened.

        A refused version is not tried again by later checks (versions never change, so a
        poll would only repeat the refusal), except with `retry` (POST /admin/reload): a
        load can also fail for a passing reason, such as a registry download."""
        assert self._refresh_lock is not None, "start() first"
        async with self._refresh_lock:
            if retry:
                self._failed.clear()
                for binding in self._bindings.values():
                    binding.refused.clear()
            report: list[dict[str, Any]] = []
            for name in self.names:
                bindings = [b for b in self._bindings.values() if b.name == name]
                try:
                    labels = await asyncio.to_thread(self.repository.labels, name)
                    versions = await asyncio.to_thread(self.repository.versions, name)
                except Exception as e:
                    log.warning("%s: the alias check failed: %s", name, e)
                    report.append({"model": name, "result": "error", "reason": str(e)})
                    continue
                latest = versions[-1] if versions else None
                for binding in bindings:
                    wanted = labels.get(binding.label) if binding.label else latest
                    if wanted is None:
                        continue  # the label was removed: keep serving what it named
                    binding.wanted = wanted
                    if wanted == binding.version:
                        continue
                    if wanted in binding.refused or (name, wanted) in self._failed:
                        continue  # refused before: versions never change
                    report.append(await self._swap(binding, wanted))
            return report

    async def _swap(self, binding: Binding, new: str) -> dict[str, Any]:
        name, old_version = binding.name, binding.version
        entry = {"model": name, "label": binding.label or "latest", "from": old_version, "to": new}
        old = self._loaded.get((name, old_version)) if old_version else None
        try:
            if old is not None:
                theirs = Signature.from_export(await self.export(name, new))
                diff = old.signature.difference(theirs)
                if diff:
                    raise ServingError(f"it does not fit version {old.version}'s signature: {diff}")
            await self._load(name, new)
        except Exception as e:
            keeps = f"version {old_version} keeps serving" if old_version else "nothing serves it"
            reason = f"{binding.title} -> version {new} refused: {_plain(e)}; {keeps}."
            binding.refused[new] = reason
            if (name, new) not in self._failed:  # (a failed load recorded its own reason)
                state = "AVAILABLE" if (name, new) in self._loaded else "END"  # by number
                self._states[(name, new)] = VersionState(state, "FAILED_PRECONDITION", reason)
            log.warning("%s", reason)
            return {**entry, "result": "refused", "reason": reason}
        binding.version = new  # the switch: one assignment on the event loop
        log.info("%s: now serves version %s (was %s)", binding.title, new, old_version)
        if old is not None and old.key not in self._kept():
            self._unload(old, f"{binding.title} moved to version {new}")
        return {**entry, "result": "swapped"}

    def status(self) -> dict[str, Any]:
        """What the admin status endpoint shows: bindings, loaded versions and their queues."""
        models: dict[str, Any] = {}
        for name in self.names:
            target = self._defaults[name]
            models[name] = {
                "default": (target.label or "latest") if isinstance(target, Binding) else target,
                "labels": {
                    b.label or "latest": {
                        "serves": b.version,
                        "wanted": b.wanted,
                        "refused": dict(b.refused),
                    }
                    for b in self._bindings.values()
                    if b.name == name
                },
                "loaded": {
                    v.version: {
                        "backend": v.backend,
                        "queued": v.batcher.queued,
                        "running": v.batcher.running,
                        "batches": v.batcher.stats.batches,
                        "requests": v.batcher.stats.requests,
                        "largest_batch": v.batcher.stats.largest,
                    }
                    for v in self.loaded()
                    if v.name == name
                },
                "failed": {v: why for (n, v), why in self._failed.items() if n == name},
            }
        return {"models": models}


def _read_export(folder: Path) -> dict[str, Any]:
    from workbench.deploy.export import read_export

    export = read_export(folder)
    if export.get("format_version") != FORMAT_VERSION:
        raise ServingError(
            f"{Path(folder) / EXPORT_FILE} has format_version {export.get('format_version')!r}; "
            f"this service reads {FORMAT_VERSION}. Export the model again with this workbench."
        )
    return export


def _model_call(runner: Any, signature: Signature) -> Any:
    """The runner (`runner({name: array}) -> {name: array}`, from `workbench.deploy.export`) as
    a batcher's call on lists in export.json's order."""
    inputs, outputs = signature.input_names, signature.output_names
    if sorted(runner.input_names) != sorted(inputs):
        raise ServingError(
            f"the model takes inputs {runner.input_names}; export.json lists {inputs}."
        )
    keys = outputs if sorted(runner.output_names) == sorted(outputs) else runner.output_names
    if len(keys) != len(outputs):
        raise ServingError(
            f"the model gives outputs {runner.output_names}; export.json lists {outputs}."
        )

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        answer = runner(dict(zip(inputs, arrays, strict=True)))
        return [answer[k] for k in keys]

    return run


def _warm_up(run: Any, signature: Signature) -> None:
    """Run batches of 1 and 2 rows (Keras traces its call for both, then any batch size runs
    without tracing) and check the outputs have the promised shapes."""
    for rows in (1, 2):
        inputs = [
            np.full((rows, *t.shape[1:]), "", object)
            if t.dtype == "string"
            else np.zeros((rows, *t.shape[1:]), t.dtype)
            for t in signature.inputs
        ]
        outputs = [np.asarray(y) for y in run(inputs)]
        got = [list(y.shape) for y in outputs]
        want = [[rows, *t.shape[1:]] for t in signature.outputs]
        if len(got) != len(want) or any(
            len(g) != len(w) or any(b not in (-1, a) for a, b in zip(g, w, strict=True))
            for g, w in zip(got, want, strict=False)
        ):
            raise ServingError(
                f"the warm-up batch of {rows} gave outputs of shapes {got}; export.json "
                f"promises {want} (-1: any size)."
            )


def _known(name: str, version: str, versions: list[str]) -> None:
    if version not in versions:
        raise ServiceError(
            404, f"Model {name!r} has no version {version!r}; its versions are {versions}."
        )


def _no_label(name: str, label: str, labels: dict[str, str]) -> ServiceError:
    return ServiceError(
        404,
        f"Model {name!r} has no label {label!r}; its labels are {labels or 'none'}. Set one "
        "with workbench.deploy.registry.set_alias (or labels.json in a model folder).",
    )


def _not_ready(name: str, version: str, state: VersionState) -> str:
    if state.state == "END" and state.error_message:
        return state.error_message
    doing = {"LOADING": "is loading and warming up"}.get(state.state, "is not loaded yet")
    return f"Model {name!r} version {version} {doing}; retry in a moment."


def _plain(error: Exception) -> str:
    return str(error).rstrip(".") if str(error) else type(error).__name__


def _quiet(task: asyncio.Future) -> None:
    """Retrieve a background task's exception (it was logged and recorded already)."""
    if not task.cancelled():
        task.exception()
