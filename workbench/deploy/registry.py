"""The model registry: exported models as MLflow model versions with their lineage, the aliases
`champion` and `challenger`, and verified local copies to serve.

A version is an export folder (see `workbench.deploy.export`) logged to MLflow's artifact store
and registered as a model version of MLflow's model registry, so another machine that uses the
same tracking server can fetch it. Its tags (all prefixed `workbench.`) carry the lineage: the
training run and its MLflow run id, the data version and its content hash, the spec, the
metrics, each format's sha256, export.json's own sha256, and export.json itself.

Refs: "digits" (= "digits@champion"), "digits@challenger", "digits/3".

Registration steps, in this order (each name is also a test hook, below):

1. ``checked``: the export folder is hashed against its export.json; a changed (tampered or
   half-copied) export is refused before anything is written.
2. ``uploaded``: a registry run (experiment "workbench-registry") receives the folder as
   artifacts under ``export/`` and is ended.
3. ``version_created``: a model version points at those artifacts (``source``), with every
   lineage and hash tag written in the same database transaction, but no
   ``workbench.complete`` tag yet.
4. ``fetched``: the version is downloaded from the artifact store into the verified cache and
   re-hashed against its tags (the round trip a serving machine makes).
5. ``completed``: the tag ``workbench.complete=true`` marks the version servable.
6. The alias moves (for ``champion``, the old champion is first pushed on the model's
   ``workbench.champion_history`` tag, so `rollback` can return to it).

Why this is crash-safe: steps 1-5 only add things that nothing serves (a run's artifacts, a
version without the complete tag, a cache folder that appears by one rename once verified);
`resolve` and `set_alias` refuse incomplete versions and `list_versions` shows them as
incomplete. The alias is a single row in the registry's database and moves last, so a process
killed at any point (even ``kill -9``) leaves the previous champion serving, and no
half-registered version is ever champion or challenger.

Verified cache: `resolve` downloads a version once into ``registry-cache/<name>/<version>-<hash>``
beside a SQLite tracking store (``runs/registry-cache`` for the default store; a remote
tracking server gets ``<repo>/runs/registry-cache/<uri hash>``). It lives with the store
because version numbers are only unique within one store: a test session's temporary store
gets its own cache, and deleting the store's folder deletes both. Every `resolve` re-hashes
the copy against the registered hashes; a mismatch raises `ServingError` and moves no alias.

Test hook: with ``WORKBENCH_REGISTER_PAUSE_AT=<step>`` (one of `STEPS`) `register` writes the
file named by ``WORKBENCH_REGISTER_SENTINEL`` right after that step and sleeps, so a test can
kill the process at a point it controls.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import params as checks
from workbench import tracking
from workbench.config import display_path, repo_root
from workbench.errors import ParameterError, ServingError
from workbench.files import atomic_write_json, read_json, sha256_bytes, sha256_file

EXPERIMENT = "workbench-registry"  # the runs that hold registered export folders
ARTIFACT_PATH = "export"  # where a registry run keeps the export folder
ALIASES = ("champion", "challenger")
TAG = "workbench."
COMPLETE = f"{TAG}complete"
GATE_TAG = "qa."  # tags of the QA gate's decision on a version (workbench.deploy.qa.decide)
HISTORY = f"{TAG}champion_history"  # registered-model tag: earlier champions, oldest first
LINEAGE_KEYS = ("train_run", "mlflow_run_id", "data_source", "data_version", "data_sha256", "spec")
STEPS = ("checked", "uploaded", "version_created", "fetched", "completed")
PAUSE_ENV = "WORKBENCH_REGISTER_PAUSE_AT"
SENTINEL_ENV = "WORKBENCH_REGISTER_SENTINEL"
# A download folder older than this was left by a killed process (one in progress is younger).
STALE_PARTIAL_SECONDS = 3600
PAUSE_SECONDS = 600  # long enough for a test to kill the process; bounded if nobody does
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
REF_FORMS = "'NAME' (its champion), 'NAME@ALIAS' or 'NAME/VERSION', e.g. 'digits@challenger'"


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered version: `path` is a local folder laid out as the export folder (a
    verified copy once `resolve` returned it), `export` its export.json, `lineage` what the
    registry's tags say about it; `complete` is False for a registration that did not finish."""

    name: str
    version: str
    path: Path
    export: dict[str, Any]
    aliases: tuple[str, ...] = ()
    lineage: dict[str, Any] = field(default_factory=dict)
    complete: bool = True

    @property
    def ref(self) -> str:
        """The ref that names exactly this version, e.g. "digits/3"."""
        return f"{self.name}/{self.version}"

    def __repr__(self) -> str:
        alias = f" [{', '.join(self.aliases)}]" if self.aliases else ""
        state = "" if self.complete else " INCOMPLETE"
        formats = "+".join(self.lineage.get("hashes", {})) or "no formats"
        return (
            f"RegisteredVersion({self.ref}{alias}{state}: data {self.lineage.get('data_version')}, "
            f"train run {self.lineage.get('train_run')}, {formats}, at {display_path(self.path)})"
        )


# ---- registration -----------------------------------------------------------------------


def register(
    export_dir: str | Path, *, name: str | None = None, alias: str | None = "challenger"
) -> RegisteredVersion:
    """Register the export folder `export_dir` as a new version of `name` (default: its
    export.json's `model_name`) and point `alias` at it ("challenger", "champion", or None).

    The steps and why they are crash-safe are in the module docstring. An export that is
    already a complete version of `name` (same export.json hash) is not added twice: that
    version is returned (and the alias moved to it).
    """
    folder = checks.check_path("export_dir", export_dir)
    if alias is not None:
        checks.check_choice("alias", alias, ALIASES)
    pause = _pause_step()
    export, export_sha = _read_export(folder)
    name = _check_name(export.get("model_name") if name is None else name, "name")
    hashes = _check_export(folder, export)
    _pause(pause, "checked")

    client = _client()
    _ensure_model(client, name)
    same = [v for v in _versions(client, name) if _is_copy_of(v, export_sha)]
    if same:
        version = str(same[0].version)
        _verified_copy(client, name, version, same[0].tags)
        if alias is not None:
            _move_alias(client, name, alias, version)
        return _resolve_version(client, name, version)
    lineage = export.get("lineage") or {}
    tags = {f"{TAG}{k}": str(lineage.get(k) or "") for k in LINEAGE_KEYS}
    tags |= {f"{TAG}metrics": json.dumps(lineage.get("metrics") or {}, sort_keys=True)}
    tags |= {f"{TAG}sha256.{fmt}": sha for fmt, sha in hashes.items()}
    tags |= {
        f"{TAG}formats": ",".join(hashes),
        f"{TAG}export_sha256": export_sha,
        f"{TAG}export_json": json.dumps(export, sort_keys=True, separators=(",", ":")),
        f"{TAG}format_version": str(export.get("format_version")),
    }

    run_tags = {k: v for k, v in tags.items() if k != f"{TAG}export_json"}
    run = tracking.start_tracking(
        f"{name}-{export_sha[:12]}", experiment=EXPERIMENT, tags={**run_tags, f"{TAG}model": name}
    )
    run.client.log_artifacts(run.run_id, str(folder), ARTIFACT_PATH)
    run.end()
    _pause(pause, "uploaded")

    source = f"{client.get_run(run.run_id).info.artifact_uri}/{ARTIFACT_PATH}"
    tags[f"{TAG}registry_run"] = run.run_id
    mv = client.create_model_version(
        name, source, run_id=run.run_id, tags=tags, description=_description(export)
    )
    version = str(mv.version)
    _pause(pause, "version_created")

    _verified_copy(client, name, version, tags)
    _pause(pause, "fetched")

    client.set_model_version_tag(name, version, COMPLETE, "true")
    _pause(pause, "completed")

    if alias is not None:
        _move_alias(client, name, alias, version)
    return _resolve_version(client, name, version)


def _read_export(folder: Path) -> tuple[dict[str, Any], str]:
    """export.json of `folder` and its sha256; a folder without one is not an export."""
    manifest = folder / "export.json"
    if not manifest.is_file():
        raise ServingError(
            f"Cannot register {display_path(folder)!r}: it has no export.json, so it is not a "
            "complete export folder (export.json is written last). Export the model with "
            "workbench.deploy.export.export_model(...) and register the folder it wrote."
        )
    data = manifest.read_bytes()
    try:
        export = json.loads(data)
    except ValueError as e:
        raise ServingError(
            f"Cannot register {display_path(folder)!r}: its export.json is not valid JSON ({e})."
            " Export the model again."
        ) from None
    if not isinstance(export, dict) or export.get("format_version") != 1:
        got = export.get("format_version") if isinstance(export, dict) else type(export).__name__
        raise ServingError(
            f"Cannot register {display_path(folder)!r}: expected an export.json with "
            f"format_version 1, got {got!r}. Export the model with this workbench version."
        )
    return export, sha256_bytes(data)


def _check_export(folder: Path, export: dict[str, Any]) -> dict[str, str]:
    """Each exported format's sha256, checked against what export.json records (formats that
    could not be exported carry an `error` instead and are skipped)."""
    formats = export.get("formats")
    hashes: dict[str, str] = {}
    for fmt, entry in formats.items() if isinstance(formats, dict) else ():
        if not isinstance(entry, dict) or "sha256" not in entry:
            continue
        rel = _relative(entry.get("path"), fmt, folder)
        got = _hash(folder / rel)
        if got != entry["sha256"]:
            raise ServingError(
                f"Cannot register {display_path(folder)!r}: the hash of {rel!r} ({_short(got)}) "
                f"does not match what its export.json records ({_short(entry['sha256'])}): the "
                "folder changed after it was exported (tampered with or half-copied), so the "
                "export is refused. Export the model again and register the new folder."
            )
        hashes[fmt] = got
    if not hashes:
        raise ServingError(
            f"Cannot register {display_path(folder)!r}: its export.json lists no exported format "
            f"with a sha256 (formats: {formats!r}); expected at least 'keras'. Export again."
        )
    return hashes


def _relative(path: Any, fmt: str, folder: Path) -> str:
    """A format's path inside the export folder (never absolute, never outside it)."""
    if (
        not isinstance(path, str)
        or not path
        or Path(path).is_absolute()
        or ".." in Path(path).parts
    ):
        raise ServingError(
            f"Cannot use {display_path(folder)!r}: export.json gives format {fmt!r} the path "
            f"{path!r}; expected a relative path inside the export folder, e.g. 'model.keras'."
        )
    if not (folder / path).exists():
        raise ServingError(
            f"Cannot use {display_path(folder)!r}: format {fmt!r} should be at {path!r}, which "
            "is missing. Export the model again."
        )
    return path


def _hash(path: Path) -> str:
    """A file's or folder's sha256, computed the way export.json records it."""
    from workbench.deploy.export import artifact_sha256

    return artifact_sha256(path)


def _description(export: dict[str, Any]) -> str:
    lineage = export.get("lineage") or {}
    return (
        f"{export.get('task', '')} model from training run {lineage.get('train_run')} on data "
        f"version {lineage.get('data_version')}; registered by workbench.deploy.registry."
    )


def _ensure_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description="Registered by workbench.deploy.")
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _pause_step() -> str | None:
    """The step named by the test hook's environment variable (checked before any work)."""
    step = os.environ.get(PAUSE_ENV)
    if not step:
        return None
    checks.check_choice(PAUSE_ENV, step, STEPS)
    if not os.environ.get(SENTINEL_ENV):
        raise ParameterError(
            f"{PAUSE_ENV}={step!r} needs {SENTINEL_ENV} set to the file to write when the pause "
            "starts; set both or neither."
        )
    return step


def _pause(pause: str | None, step: str) -> None:
    """Test hook: after `step`, write the sentinel file and sleep (the test kills us here)."""
    if pause == step:
        atomic_write_json(os.environ[SENTINEL_ENV], {"step": step, "pid": os.getpid()})
        time.sleep(PAUSE_SECONDS)


# ---- aliases, promotion and rollback ---------------------------------------------------


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point `alias` ("champion" or "challenger") at `version`, which must exist, be complete
    and pass verification (its artifacts are fetched and hashed first: a bad copy moves no
    alias). Making a version champion records the previous one for `rollback` and clears
    `challenger` if it pointed at the same version."""
    checks.check_choice("alias", alias, ALIASES)
    client = _client()
    mv = _complete_version(client, name, _version_str(version))
    _verified_copy(client, name, str(mv.version), mv.tags)
    _move_alias(client, name, alias, str(mv.version))


def promote(name: str, version: str | int | None = None) -> RegisteredVersion:
    """Make `version` (default: the current challenger) the champion; returns it."""
    client = _client()
    if version is None:
        version = _alias_version(client, name, "challenger", what="promote")
    set_alias(name, "champion", version)
    return _resolve_version(client, name, _version_str(version))


def rollback(name: str) -> RegisteredVersion:
    """Point `champion` back at the previous champion (the latest entry of the champion
    history that is complete and differs from the current champion); returns it."""
    client = _client()
    current = _alias_version(client, name, "champion", what="roll back")
    history = _history(client, name)
    while history:
        candidate = history.pop()
        if candidate == current:
            continue  # pushed by a promotion that was killed before its alias moved
        mv = _existing(client, name, candidate)
        if mv is None or mv.tags.get(COMPLETE) != "true":
            continue
        _verified_copy(client, name, candidate, mv.tags)
        client.set_registered_model_alias(name, "champion", candidate)
        client.set_registered_model_tag(name, HISTORY, json.dumps(history))  # after the move
        return _resolve_version(client, name, candidate)
    raise ServingError(
        f"Cannot roll back {name!r}: no earlier champion is recorded (champion is version "
        f"{current}; history {_history(client, name)}). Choose a version explicitly with "
        f"set_alias({name!r}, 'champion', VERSION); versions: {_version_list(client, name)}."
    )


def aliases(name: str) -> dict[str, str]:
    """The model's aliases, e.g. {"champion": "3", "challenger": "4"}."""
    return _aliases(_client(), name)


def _move_alias(client, name: str, alias: str, version: str) -> None:
    """The last step of every change: move one alias (a single registry write)."""
    current = _aliases(client, name)
    if alias == "champion" and current.get("champion") not in (None, version):
        history = _history(client, name) + [current["champion"]]
        client.set_registered_model_tag(name, HISTORY, json.dumps(history[-100:]))
    client.set_registered_model_alias(name, alias, version)
    if alias == "champion" and current.get("challenger") == version:
        client.delete_registered_model_alias(name, "challenger")


def _history(client, name: str) -> list[str]:
    raw = client.get_registered_model(name).tags.get(HISTORY)
    return [str(v) for v in json.loads(raw)] if raw else []


def _aliases(client, name: str) -> dict[str, str]:
    model = _model(client, name)
    return {alias: str(v) for alias, v in sorted(model.aliases.items())}


def _alias_version(client, name: str, alias: str, *, what: str) -> str:
    version = _aliases(client, name).get(alias)
    if version is None:
        raise ServingError(
            f"Cannot {what} {name!r}: it has no {alias}; its aliases are "
            f"{_alias_text(client, name)}. Set one with set_alias({name!r}, {alias!r}, VERSION)."
        )
    return version


# ---- lookup and verified copies ----------------------------------------------------------


def resolve(ref: str) -> RegisteredVersion:
    """The version `ref` names ("digits" = its champion, "digits@challenger", "digits/3"), as
    a local, verified copy: downloaded once into the cache, re-hashed on every call."""
    name, alias, version = _parse_ref(ref)
    client = _client()
    if version is None:
        version = _aliases(client, name).get(alias)
        if version is None:
            hint = (
                f"promote a version with set_alias({name!r}, 'champion', VERSION)"
                if alias == "champion"
                else f"use one of those, or a version number such as '{name}/1'"
            )
            raise ServingError(
                f"Model {name!r} has no alias {alias!r}; its aliases are "
                f"{_alias_text(client, name)} and its versions {_version_list(client, name)}; "
                f"{hint}."
            )
    mv = _complete_version(client, name, version)
    _verified_copy(client, name, version, mv.tags)
    return _resolve_version(client, name, version)


def verify(version: RegisteredVersion) -> None:
    """Re-hash `version.path` against the hashes the registry holds for that version."""
    client = _client()
    mv = _complete_version(client, version.name, version.version)
    _check_copy(client, version.path, version.name, version.version, mv.tags)


def list_versions(name: str) -> list[RegisteredVersion]:
    """Every version of `name`, oldest first, with aliases, lineage and `complete` (False for a
    registration that did not finish: not servable). Nothing is downloaded: `path` is where
    `resolve` keeps the verified copy and `export` the export.json the registry recorded."""
    client = _client()
    found = _aliases(client, name)
    return [_record(mv, found, None) for mv in _versions(client, name)]


def compare(name: str) -> list[dict[str, Any]]:
    """The versions of `name` as table rows (`workbench.tables.format_table`): aliases, status,
    when registered, data version, training run, metrics, formats and short export hashes."""
    rows = []
    for v in list_versions(name):
        row: dict[str, Any] = {
            "version": v.version,
            "aliases": ", ".join(v.aliases) or "-",
            "status": "complete" if v.complete else "incomplete",
            "created": v.lineage["registered"],
            "data version": v.lineage["data_version"],
            "train run": v.lineage["train_run"],
        }
        row["gate"] = v.lineage["gate"].get("decision", "-")
        row |= {k: round(m, 4) for k, m in _numbers(v.lineage["metrics"]).items()}
        row["formats"] = ", ".join(v.lineage["hashes"])
        row |= {f"sha256 {fmt}": sha[:12] for fmt, sha in v.lineage["hashes"].items()}
        rows.append(row)
    return rows


def mlflow_model(version: RegisteredVersion) -> str:
    """Log `version`'s inference model (model.keras) as an MLflow Keras model, in a run of the
    experiment "workbench-mlflow-models", and return its model URI, so MLflow's own server
    serves the same model: `mlflow models serve -m URI --env-manager local` (POST
    /invocations with {"inputs": [...]}; one `model.predict` per request, no batching)."""
    import mlflow

    from workbench.config import load_keras

    experiment = tracking.experiment_id(_client(), "workbench-mlflow-models")
    model = load_keras().saving.load_model(version.path / "model.keras", safe_mode=True)
    # (no mlflow.set_experiment: MLflow's global experiment would outlive this call)
    with mlflow.start_run(experiment_id=experiment, run_name=version.ref.replace("/", "-")):
        mlflow.set_tags({f"{TAG}registered": version.ref})
        info = mlflow.keras.log_model(
            model, name="model", pip_requirements=tracking.pip_requirements()
        )
    return info.model_uri


def cache_root() -> Path:
    """Where verified copies live: beside a SQLite tracking store, else under the repo's
    runs folder keyed by the tracking URI (see the module docstring for why)."""
    uri = tracking.tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent / "registry-cache"
    return repo_root() / "runs" / "registry-cache" / sha256_bytes(uri.encode())[:12]


def _parse_ref(ref: Any) -> tuple[str, str, str | None]:
    """(name, alias, version) of a ref; a bare name means its champion."""
    checks.check_str("ref", ref, error=ServingError)
    match = re.fullmatch(rf"({NAME.pattern})(?:@([A-Za-z0-9_-]+)|/([0-9]+))?", ref.strip())
    if match is None:
        raise ServingError(f"Model ref {ref!r} is not a valid reference; expected {REF_FORMS}.")
    name, alias, version = match.groups()
    return name, alias or "champion", version


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        raise ServingError(
            f"Registered model {what} {name!r} is not usable; expected letters, digits, '_', '.' "
            "or '-' (starting with a letter or digit, at most 100 characters), e.g. 'digits'."
        )
    return name


def _version_str(version: Any) -> str:
    if checks.is_integer(version) or (isinstance(version, str) and version.isdigit()):
        return str(int(version))
    raise ServingError(
        f"Model version {version!r} is not a version number; expected e.g. 3 or '3'."
    )


def _model(client, name: str):
    from mlflow.exceptions import MlflowException

    _check_name(name, "name")
    try:
        return client.get_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    known = sorted(m.name for m in client.search_registered_models(max_results=1000))
    raise ServingError(
        f"No registered model {name!r}; the registry ({tracking.tracking_uri()}) holds "
        f"{known or 'no models yet'}. Check the spelling, or register an export with "
        "workbench.deploy.registry.register(folder)."
    )


def _versions(client, name: str) -> list:
    """The model's versions, oldest first (an unknown name is a clear error)."""
    _model(client, name)
    found = client.search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda mv: int(mv.version))


def _existing(client, name: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, version)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    return None


def _complete_version(client, name: str, version: str):
    """The model version, which must exist and have finished registering."""
    _model(client, name)
    mv = _existing(client, name, version)
    if mv is None:
        raise ServingError(
            f"Model {name!r} has no version {version!r}; its versions are "
            f"{_version_list(client, name)} (aliases {_alias_text(client, name)}). Use one of "
            f"those, e.g. '{name}/1', or '{name}' for the champion."
        )
    if mv.tags.get(COMPLETE) != "true":
        raise ServingError(
            f"Model {name!r} version {version} is incomplete: its registration stopped before it "
            "finished (no 'workbench.complete' tag), so it is not servable and no alias may "
            f"point at it. Register the export again; complete versions: "
            f"{_version_list(client, name, complete_only=True)}."
        )
    return mv


def _version_list(client, name: str, *, complete_only: bool = False) -> str:
    parts = [
        str(mv.version) + ("" if mv.tags.get(COMPLETE) == "true" else " (incomplete)")
        for mv in _versions(client, name)
        if not complete_only or mv.tags.get(COMPLETE) == "true"
    ]
    return ", ".join(parts) or "none yet"


def _alias_text(client, name: str) -> str:
    found = _aliases(client, name)
    return ", ".join(f"{a} -> {v}" for a, v in found.items()) or "none yet"


def _is_copy_of(mv, export_sha: str) -> bool:
    return mv.tags.get(COMPLETE) == "true" and mv.tags.get(f"{TAG}export_sha256") == export_sha


def _cache_folder(name: str, version: str, tags: dict[str, str]) -> Path:
    """Keyed by name, version and export hash (a recreated store never reuses a stale copy)."""
    return cache_root() / name / f"{version}-{tags.get(f'{TAG}export_sha256', '')[:12]}"


def _verified_copy(client, name: str, version: str, tags: dict[str, str]) -> Path:
    """The cached copy of a version, downloaded first if missing, re-hashed every time."""
    folder = _cache_folder(name, version, tags)
    if not folder.is_dir():
        import mlflow

        folder.parent.mkdir(parents=True, exist_ok=True)
        prefix = f".{folder.name}.partial-"
        for stale in folder.parent.glob(f"{prefix}*"):  # left by a killed download
            if time.time() - stale.stat().st_mtime > STALE_PARTIAL_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
        partial = Path(tempfile.mkdtemp(dir=folder.parent, prefix=prefix))
        try:
            uri = tracking.tracking_uri()
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}",
                dst_path=str(partial),
                tracking_uri=uri,
                registry_uri=uri,
            )
            _check_copy(client, partial, name, version, tags, fresh=True)
            try:
                partial.rename(folder)  # appears complete, or not at all
            except OSError:
                if not folder.is_dir():
                    raise
                shutil.rmtree(partial)  # another process got there first
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    _check_copy(client, folder, name, version, tags)
    return folder


def _check_copy(
    client, folder: Path, name: str, version: str, tags: dict[str, str], *, fresh: bool = False
) -> None:
    """Compare a copy's export.json and every format with the registered hashes."""
    export_json = folder / "export.json"
    expected = [("export.json", tags.get(f"{TAG}export_sha256", ""))]
    if export_json.is_file() and sha256_file(export_json) == expected[0][1]:
        formats = read_json(export_json).get("formats", {})
        for fmt in tags.get(f"{TAG}formats", "").split(","):
            expected.append((formats.get(fmt, {}).get("path", fmt), tags.get(f"{TAG}sha256.{fmt}")))
    for rel, want in expected:
        path = folder / rel
        got = _hash(path) if path.exists() else None
        if got == want:
            continue
        found = f"is {_short(got)}" if got else "cannot be computed: the file is missing"
        where = "the artifact store's copy" if fresh else "the cached copy"
        fix = (
            "Register the export again."
            if fresh
            else f"Delete {folder} to fetch a fresh copy from the artifact store."
        )
        champion = _aliases(client, name).get("champion")
        raise ServingError(
            f"Model {name!r} version {version}: the artifact hash of {rel!r} in {where} "
            f"{found}, which does not match what was registered ({_short(want)}); the version "
            f"is refused and the current champion stays "
            f"({'version ' + champion if champion else 'none is set'}). {fix}"
        )


def _resolve_version(client, name: str, version: str) -> RegisteredVersion:
    """A complete version with its verified copy (already fetched by the caller)."""
    mv = client.get_model_version(name, version)
    folder = _cache_folder(name, version, mv.tags)
    return _record(mv, _aliases(client, name), folder)


def _record(mv, alias_map: dict[str, str], folder: Path | None) -> RegisteredVersion:
    tags, version = mv.tags, str(mv.version)
    export = (
        read_json(folder / "export.json")
        if folder
        else json.loads(tags.get(f"{TAG}export_json", "{}"))
    )
    formats = [f for f in tags.get(f"{TAG}formats", "").split(",") if f]
    lineage: dict[str, Any] = {k: tags.get(f"{TAG}{k}", "") for k in LINEAGE_KEYS}
    lineage |= {
        "metrics": json.loads(tags.get(f"{TAG}metrics", "{}")),
        "hashes": {f: tags.get(f"{TAG}sha256.{f}", "") for f in formats},
        "export_sha256": tags.get(f"{TAG}export_sha256", ""),
        "registry_run": tags.get(f"{TAG}registry_run", mv.run_id or ""),
        # the QA gate's decision on this version (workbench.deploy.qa.decide), if it was gated
        "gate": {k.removeprefix(GATE_TAG): v for k, v in tags.items() if k.startswith(GATE_TAG)},
        "registered": time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(mv.creation_timestamp / 1e3)
        ),
    }
    order = [a for a in ALIASES if alias_map.get(a) == version]
    order += sorted(a for a, v in alias_map.items() if v == version and a not in ALIASES)
    return RegisteredVersion(
        name=mv.name,
        version=version,
        path=folder or _cache_folder(mv.name, version, tags),
        export=export,
        aliases=tuple(order),
        lineage=lineage,
        complete=tags.get(COMPLETE) == "true",
    )


def _numbers(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of nested metrics, as {"test.accuracy": 0.97}."""
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _numbers(value, f"{prefix}{key}.")
        elif checks.is_number(value):
            out[f"{prefix}{key}"] = float(value)
    return out


def _short(sha: str | None) -> str:
    return f"{sha[:12]}…" if sha else "none"


def _client():
    """The tracking store's client (`MLFLOW_TRACKING_URI`, else runs/mlflow.db); downloads
    draw no progress bars in notebooks unless the environment asks for them."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return tracking.mlflow_client()
