"""The model registry on real MLflow: versions with lineage, aliases and refs, a comparison
table, promotion and rollback, verified copies (a changed cached artifact or export folder is
refused and no alias moves), and a registration killed with SIGKILL at a hook the test controls.

The module uses its own temporary SQLite store (fresh names, its own cache beside it); the
export folders are small but real: a Keras model saved as model.keras and as a SavedModel, and
an export.json with the hashes and lineage the contract describes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from workbench.config import load_keras, seed_everything
from workbench.deploy import registry
from workbench.deploy.export import folder_sha256
from workbench.errors import ParameterError, ServingError
from workbench.files import atomic_write_json, read_json, sha256_file
from workbench.tables import format_table
from workbench.tracking import URI_ENV

NAME = "digits"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A tracking store of this module's own (the cache lives beside it)."""
    folder = tmp_path_factory.mktemp("registry-store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(URI_ENV, f"sqlite:///{folder / 'mlflow.db'}")
        mp.delenv(registry.PAUSE_ENV, raising=False)
        yield folder


def _write_export(folder: Path, model, *, train_run: str, accuracy: float) -> Path:
    """An export folder as the contract lays it out (Keras and SavedModel; no ONNX here)."""
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    model.export(str(folder / "saved_model"), format="tf_saved_model", verbose=False)
    return _write_manifest(folder, train_run=train_run, accuracy=accuracy)


def _write_manifest(folder: Path, *, train_run: str, accuracy: float) -> Path:
    export = {
        "format_version": 1,
        "model_name": NAME,
        "input": {"kind": "image", "name": "images", "dtype": "float32", "shape": [-1, 8, 8, 1]},
        "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, 10]}],
        "class_names": [str(i) for i in range(10)],
        "task": "multiclass",
        "formats": {
            "keras": {"path": "model.keras", "sha256": sha256_file(folder / "model.keras")},
            "saved_model": {
                "path": "saved_model",
                "sha256": folder_sha256(folder / "saved_model"),
            },
            "onnx": {"error": "not exported in this test"},
        },
        "lineage": {
            "train_run": train_run,
            "mlflow_run_id": f"mlflow-{train_run}",
            "data_version": "v-digits-test",
            "data_sha256": "ab" * 32,
            "spec": "tiny-0123abcd",
            "metrics": {"test": {"accuracy": accuracy}, "validation": {"val_loss": 0.5}},
        },
    }
    atomic_write_json(folder / "export.json", export)
    return folder


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Three real export folders: two different models, and the second model's files under a
    third export.json (another training run's lineage: a distinct export)."""
    keras = load_keras()
    root = tmp_path_factory.mktemp("exports")
    folders = []
    for seed, run in ((0, "tiny-run-a"), (1, "tiny-run-b")):
        seed_everything(seed)
        model = keras.Sequential(
            [
                keras.Input((8, 8, 1), name="images"),
                keras.layers.Rescaling(1 / 16),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        folders.append(_write_export(root / run, model, train_run=run, accuracy=0.9 + seed / 20))
    third = root / "tiny-run-c"
    shutil.copytree(folders[1], third)
    folders.append(_write_manifest(third, train_run="tiny-run-c", accuracy=0.97))
    return folders


@pytest.fixture(scope="module")
def registered(store, exports):
    """Version 1 is the champion, version 2 the challenger."""
    first = registry.register(exports[0], alias="champion")
    second = registry.register(exports[1])
    return first, second


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_register_records_lineage_hashes_and_the_artifact_source(store, exports, registered):
    first, second = registered
    assert (first.version, first.aliases) == ("1", ("champion",))
    assert (second.version, second.aliases) == ("2", ("challenger",))
    export = read_json(exports[0] / "export.json")
    assert first.export == export
    lineage = export["lineage"]
    for key in ("train_run", "mlflow_run_id", "data_version", "data_sha256", "spec", "metrics"):
        assert first.lineage[key] == lineage[key]
    assert first.lineage["hashes"] == {
        "keras": export["formats"]["keras"]["sha256"],
        "saved_model": export["formats"]["saved_model"]["sha256"],
    }
    assert first.lineage["export_sha256"] == sha256_file(exports[0] / "export.json")
    # The served copy is the verified download in the cache beside the store, not the folder.
    assert first.path.parent.parent == store / "registry-cache"
    assert first.path != exports[0] and (first.path / "saved_model" / "saved_model.pb").is_file()
    assert sha256_file(first.path / "model.keras") == export["formats"]["keras"]["sha256"]
    # The model version points at the folder in MLflow's artifact store, with its tags.
    client = registry._client()
    mv = client.get_model_version(NAME, "1")
    assert mv.source.endswith("/artifacts/export") and "mlartifacts" in mv.source
    assert mv.tags["workbench.complete"] == "true"
    assert mv.tags["workbench.sha256.keras"] == export["formats"]["keras"]["sha256"]
    assert mv.tags["workbench.data_version"] == "v-digits-test"
    assert repr(first).startswith("RegisteredVersion(digits/1 [champion]: data v-digits-test")


def test_resolve_takes_every_ref_form_and_downloads_once(registered):
    assert registry.aliases(NAME) == {"challenger": "2", "champion": "1"}
    assert registry.resolve(NAME).version == "1"
    assert registry.resolve(f"{NAME}@champion").version == "1"
    assert registry.resolve(f"{NAME}@challenger").version == "2"
    again = registry.resolve(f"{NAME}/2")
    assert again.version == "2" and again.aliases == ("challenger",)
    inode = (again.path / "model.keras").stat().st_ino
    assert (registry.resolve(f" {NAME}/2 ").path / "model.keras").stat().st_ino == inode
    assert not list(again.path.parent.glob(".*partial*"))


def test_a_download_killed_long_ago_is_cleaned_up_and_one_in_progress_kept(registered):
    """A partial download folder older than STALE_PARTIAL_SECONDS was left by a killed process
    and goes when the version is next downloaded; a younger one may belong to a live download."""
    cached = registry.resolve(f"{NAME}/2").path
    shutil.rmtree(cached)  # the next resolve downloads it again
    stale = cached.parent / f".{cached.name}.partial-killed"
    young = cached.parent / f".{cached.name}.partial-running"
    for folder in (stale, young):
        folder.mkdir()
        (folder / "model.keras").write_bytes(b"half a file")
    old = time.time() - registry.STALE_PARTIAL_SECONDS - 60
    os.utime(stale, (old, old))
    assert registry.resolve(f"{NAME}/2").path == cached and cached.is_dir()
    assert not stale.exists() and young.is_dir()
    shutil.rmtree(young)


def test_registering_the_same_export_again_adds_no_version(exports, registered):
    same = registry.register(exports[0], alias=None)
    assert same.version == "1"
    assert [v.version for v in registry.list_versions(NAME)] == ["1", "2"]


def test_unknown_names_aliases_and_versions_say_what_exists(registered):
    with pytest.raises(ServingError, match=r"No registered model 'nosuch'.*\['digits'\]"):
        registry.resolve("nosuch")
    with pytest.raises(ServingError, match=r"no alias 'staging'.*challenger -> 2, champion -> 1"):
        registry.resolve(f"{NAME}@staging")
    with pytest.raises(ServingError, match=r"no version '99'; its versions are 1, 2"):
        registry.resolve(f"{NAME}/99")
    with pytest.raises(ServingError, match=r"not a valid reference; expected 'NAME'"):
        registry.resolve("digits/latest")
    with pytest.raises(ServingError, match=r"no version '99'"):
        registry.set_alias(NAME, "champion", 99)
    with pytest.raises(ParameterError, match=r"'alias': expected one of \['champion'"):
        registry.set_alias(NAME, "production", 1)
    with pytest.raises(ServingError, match="No registered model 'nosuch'"):
        registry.list_versions("nosuch")


def test_compare_lists_versions_with_lineage_metrics_and_short_hashes(exports, registered):
    rows = registry.compare(NAME)
    assert [(r["version"], r["aliases"], r["status"]) for r in rows] == [
        ("1", "champion", "complete"),
        ("2", "challenger", "complete"),
    ]
    keras_sha = read_json(exports[1] / "export.json")["formats"]["keras"]["sha256"]
    assert rows[1]["train run"] == "tiny-run-b" and rows[1]["data version"] == "v-digits-test"
    assert rows[1]["test.accuracy"] == 0.95 and rows[1]["validation.val_loss"] == 0.5
    assert rows[1]["formats"] == "keras, saved_model"
    assert rows[1]["sha256 keras"] == keras_sha[:12]
    header = format_table(rows).splitlines()[0].split()
    assert header[:4] == ["version", "aliases", "status", "created"]


def test_promote_then_rollback_returns_to_the_previous_champion(store, exports):
    name = "digits-promotion"  # a model of its own: the champion history starts empty
    registry.register(exports[0], name=name, alias="champion")
    registry.register(exports[1], name=name)
    promoted = registry.promote(name)
    assert (promoted.version, promoted.aliases) == ("2", ("champion",))
    assert registry.aliases(name) == {"champion": "2"}  # promotion clears the challenger
    with pytest.raises(ServingError, match=r"Cannot promote 'digits-promotion': it has no chal"):
        registry.promote(name)
    back = registry.rollback(name)
    assert (back.version, back.aliases) == ("1", ("champion",))
    assert registry.resolve(name).version == "1"
    with pytest.raises(ServingError, match=r"Cannot roll back 'digits-promotion': no earlier"):
        registry.rollback(name)
    registry.set_alias(name, "champion", 2)
    assert registry.rollback(name).version == "1"  # set_alias records history too


def test_a_changed_cached_artifact_is_refused_and_no_alias_moves(registered):
    challenger = registry.resolve(f"{NAME}@challenger")
    _flip_byte(challenger.path / "model.keras")
    refused = r"artifact hash of 'model.keras' in the cached copy is .* does not match what was"
    stays = r"the current champion stays \(version 1\)"
    with pytest.raises(ServingError, match=f"{refused}.*{stays}"):
        registry.resolve(f"{NAME}/2")
    with pytest.raises(ServingError, match=stays):
        registry.set_alias(NAME, "champion", "2")
    with pytest.raises(ServingError, match=refused):
        registry.verify(challenger)
    assert registry.aliases(NAME) == {"challenger": "2", "champion": "1"}
    # The champion's copy is refused the same way; the alias stays where it was.
    champion = registry.resolve(NAME)
    _flip_byte(next((champion.path / "saved_model" / "variables").glob("variables.data*")))
    with pytest.raises(ServingError, match=r"hash of 'saved_model' in the cached copy.*stays"):
        registry.resolve(NAME)
    assert registry.aliases(NAME)["champion"] == "1"
    # Deleting a bad copy fetches a fresh one from the artifact store.
    for bad in (challenger, champion):
        shutil.rmtree(bad.path)
    assert registry.resolve(f"{NAME}/2").path == challenger.path
    registry.verify(registry.resolve(NAME))
    # A changed file in the artifact store itself is refused on download: no copy appears.
    source = registry._client().get_model_version(NAME, "2").source
    stored = Path(urlparse(source).path) / "model.keras"
    _flip_byte(stored)
    shutil.rmtree(challenger.path)
    with pytest.raises(ServingError, match=r"in the artifact store's copy is .* does not match"):
        registry.resolve(f"{NAME}@challenger")
    assert not challenger.path.exists() and not list(challenger.path.parent.glob(".*partial*"))
    _flip_byte(stored)  # the same flip again restores the byte
    registry.verify(registry.resolve(f"{NAME}@challenger"))
    assert registry.aliases(NAME) == {"challenger": "2", "champion": "1"}


def test_a_changed_export_folder_is_refused_before_registering(tmp_path, exports, registered):
    tampered = shutil.copytree(exports[1], tmp_path / "tampered")
    _flip_byte(tampered / "model.keras")
    match = r"hash of 'model.keras' .* does not match what its export.json records.*refused"
    with pytest.raises(ServingError, match=match):
        registry.register(tampered)
    half = shutil.copytree(exports[1], tmp_path / "half")
    (half / "saved_model" / "fingerprint.pb").unlink()
    with pytest.raises(ServingError, match=r"hash of 'saved_model' .* does not match"):
        registry.register(half)
    (half / "export.json").unlink()
    with pytest.raises(ServingError, match="it has no export.json"):
        registry.register(half)
    assert [v.version for v in registry.list_versions(NAME)] == ["1", "2"]


def test_the_pause_hook_names_its_steps(monkeypatch, exports, store):
    monkeypatch.setenv(registry.PAUSE_ENV, "halfway")
    with pytest.raises(ParameterError, match=r"expected one of \['checked', 'uploaded'"):
        registry.register(exports[2])


def test_a_registration_killed_halfway_leaves_the_champion_serving(tmp_path, exports, registered):
    """SIGKILL right after the model version is created, before it is complete and before the
    alias moves (the hook makes register() wait there): the previous champion keeps serving."""
    sentinel = tmp_path / "paused.json"
    env = {
        **os.environ,
        registry.PAUSE_ENV: "version_created",
        registry.SENTINEL_ENV: str(sentinel),
    }
    code = "import sys; from workbench.deploy import registry; "
    code += "registry.register(sys.argv[1], alias='champion')"
    log = tmp_path / "register.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(exports[2])], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 120
        while not sentinel.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sentinel.exists(), f"register() never paused; its output:\n{log.read_text()}"
        assert json.loads(sentinel.read_text()) == {"step": "version_created", "pid": proc.pid}
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert registry.aliases(NAME) == {"challenger": "2", "champion": "1"}
    assert registry.resolve(NAME).version == "1"
    versions = registry.list_versions(NAME)
    assert [(v.version, v.complete) for v in versions] == [("1", True), ("2", True), ("3", False)]
    assert versions[2].lineage["train_run"] == "tiny-run-c" and versions[2].aliases == ()
    assert "INCOMPLETE" in repr(versions[2])
    assert registry.compare(NAME)[2]["status"] == "incomplete"
    with pytest.raises(ServingError, match=r"version 3 is incomplete.*not servable"):
        registry.resolve(f"{NAME}/3")
    with pytest.raises(ServingError, match="version 3 is incomplete"):
        registry.set_alias(NAME, "champion", 3)
    with pytest.raises(ServingError, match=r"its versions are 1, 2, 3 \(incomplete\)"):
        registry.resolve(f"{NAME}/4")
    # Registering the export again completes a new version; the broken one stays unservable.
    again = registry.register(exports[2], alias="champion")
    assert (again.version, again.aliases, again.complete) == ("4", ("champion",), True)
    assert registry.rollback(NAME).version == "1"
