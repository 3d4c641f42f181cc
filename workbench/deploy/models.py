"""The model store behind the service: which versions exist, what each label serves, and the
loaded versions (warmed before they serve, a bounded number kept, least recently used out).

    store = ModelStore(FolderRepository("/models"), models=["digits@champion"])
    await store.start()                          # loads and warms the default versions
    loaded = await store.served("digits", label="champion")
    outputs = await loaded.batcher.infer(arrays, timeout=1.0)
    await store.refresh()                        # the alias check: hot swap where a label moved

The versions come from a repository (`workbench.deploy.repositories`: TF Serving's folder
layout or MLflow's model registry); what each takes and gives is its `Signature`.

A label (or "latest", when a model has no champion) is a binding: it serves one loaded version.
When the repository moves it, the new version is checked (same signature as the old), loaded
and warmed beside the old one, then the binding switches on the event loop (atomic for
requests: a look-up and its queueing happen with no await between them) and the old version
drains its queue and is unloaded. A version that fails any step is refused, the old one keeps
serving, and the reason goes to the log and to the status endpoint. Readiness never drops.

A version whose signature declares functions with inputs of their own (a pipeline's pair task)
gets one batcher per function: rows of one call can only be batched with rows of the same call.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.deploy.batching import Batcher, ServiceError
from workbench.deploy.repositories import EXPORT_FILE, ModelRepository, parse_ref
from workbench.deploy.signatures import MAIN, Signature
from workbench.errors import ServingError

log = logging.getLogger("workbench.serve")

# One intra-op thread: a small model's call is shorter than waking a pool, and a second
# onnxruntime thread spun at 58-79 % of a core under load on 2 cores (the HTTP work needs it).
ONNX_THREADS = 1
DEFAULT_LABEL = "champion"  # a bare model name serves this label (else the latest version)
FORMAT_VERSION = 1


@dataclass
class LoadedVersion:
    """A loaded, warmed version with its batcher (the main call's), one batcher per further
    function its signature declares, and what its runner says about itself (`about`: a
    pipeline's components, shown by the status endpoint)."""

    name: str
    version: str
    export: dict[str, Any]
    signature: Signature
    backend: str
    batcher: Batcher
    functions: dict[str, Batcher] = field(default_factory=dict)
    about: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.version

    @property
    def batchers(self) -> list[Batcher]:
        return [self.batcher, *self.functions.values()]

    def batcher_for(self, function: str) -> Batcher:
        """The batcher of `function` (MAIN: the main call)."""
        return self.batcher if function == MAIN else self.functions[function]


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
        batchers = [b for item in loaded for b in item.batchers]
        for batcher in batchers:
            batcher.close()
        await asyncio.to_thread(lambda: [b.close(wait=True) for b in batchers])

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
        for batcher in loaded.batchers:
            batcher.start()
        self._exports.setdefault(key, loaded.export)
        self._loaded[key] = loaded
        self._states[key] = VersionState("AVAILABLE")
        log.info("%s/%s: loaded and warmed (%s backend)", name, version, loaded.backend)
        self._evict(keep=key)
        return loaded

    def backend_for(self, export: dict[str, Any]) -> str:
        """The backend a version runs on: --backend, or for "auto" the faster one that passed
        the export check (onnxruntime where the ONNX export passed, else Keras); a pipeline
        runs each component in its own format ("pipeline")."""
        from workbench.deploy.export import fastest_backend

        if export.get("kind") == "pipeline":
            return "pipeline"
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
            runner = open_runner(folder, backend, threads=ONNX_THREADS)
            calls = {}
            for function in (MAIN, *signature.functions):
                called = signature.function(function)
                calls[function] = _model_call(_function(runner, function), called)
                _warm_up(calls[function], called)
            # Loading leaves ~300k long-lived objects (Keras, MLflow, SQLAlchemy) that every
            # full collection walks: 150-250 ms pauses every few seconds under load, the
            # service's p99. Freezing them moves them out of the collector's sight (garbage
            # made by the load stays until exit; loads are rare). Measured: 32-client p99
            # 257 -> 50 ms.
            gc.freeze()
        title = f"model {name!r} version {version}"
        batchers = {
            f: Batcher(run, name=f"{title} {f}" if f else title, **self.batching)
            for f, run in calls.items()
        }
        main = batchers.pop(MAIN)
        about = dict(getattr(runner, "about", {}))
        return LoadedVersion(name, version, export, signature, backend, main, batchers, about)

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
        for batcher in loaded.batchers:
            batcher.close()
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
                "loaded": {v.version: _loaded_status(v) for v in self.loaded() if v.name == name},
                "failed": {v: why for (n, v), why in self._failed.items() if n == name},
            }
        return {"models": models}


def _loaded_status(v: LoadedVersion) -> dict[str, Any]:
    """A loaded version's backend and queues (summed over its functions' batchers), and what
    its runner says about itself (a pipeline: its components, which it loaded, which it shared)."""
    batchers = v.batchers
    status: dict[str, Any] = {
        "backend": v.backend,
        "queued": sum(b.queued for b in batchers),
        "running": sum(b.running for b in batchers),
        "batches": sum(b.stats.batches for b in batchers),
        "requests": sum(b.stats.requests for b in batchers),
        "largest_batch": max(b.stats.largest for b in batchers),
    }
    return {**status, **v.about}


def _read_export(folder: Path) -> dict[str, Any]:
    from workbench.deploy.export import read_export

    export = read_export(folder)
    if export.get("format_version") != FORMAT_VERSION:
        raise ServingError(
            f"{Path(folder) / EXPORT_FILE} has format_version {export.get('format_version')!r}; "
            f"this service reads {FORMAT_VERSION}. Export the model again with this workbench."
        )
    return export


def _function(runner: Any, function: str) -> Any:
    """The runner of one function: the runner itself for MAIN, else `runner.functions[name]`."""
    if function == MAIN:
        return runner
    found = getattr(runner, "functions", {})
    if function not in found:
        raise ServingError(
            f"export.json declares the signature {function!r} with inputs of its own, but the "
            f"model has no such function (it has {sorted(found)})."
        )
    return found[function]


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
