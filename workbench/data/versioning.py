"""Management: every prepared data set is an immutable, content-hashed version.

A version lives in `<run_dir>/data/<version_id>/` as `arrays.npz` (the raw, reshaped splits)
and `manifest.json` (where it came from, how it was split and transformed, and two hashes:
one over the arrays' contents, one over the file to detect corruption). The id is derived
from the source, the parameters and the content, so preparing the same data twice reuses
the version and any change makes a new one. The run directory's index names the current one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from workbench import config
from workbench.data.analysis import DataReport, analyze, count_targets
from workbench.data.transform import Transform
from workbench.errors import DataError
from workbench.files import atomic_write_json, read_json, sha256_file, to_json

DATA_DIR = "data"  # versions live in <run_dir>/data/
STAGE = "data"  # key of this stage in the run directory's index
SPLITS = ("train", "val", "test")
ARRAY_NAMES = tuple(f"{xy}_{s}" for s in SPLITS for xy in ("x", "y"))


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over each array's name, dtype, shape and bytes (not the npz file's bytes,
    which change with zip timestamps)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def version_id(
    source: str, parameters: dict[str, Any], content: str, transform: dict[str, Any]
) -> str:
    """Deterministic id: the same source, parameters, content and fitted transform give the
    same id (a workbench that fits the transform differently makes a new version)."""
    key = to_json(
        {
            "source": source,
            "parameters": parameters,
            "content_sha256": content,
            "transform": transform,
        }
    )
    return "v-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def stack_splits(
    arrays: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """All samples (x, y) in split order, and each split's index range into them."""
    sizes = [len(arrays[f"y_{s}"]) for s in SPLITS]
    bounds = np.cumsum([0, *sizes])
    splits = {s: np.arange(bounds[i], bounds[i + 1]) for i, s in enumerate(SPLITS)}
    x = np.concatenate([arrays[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([arrays[f"y_{s}"] for s in SPLITS])
    return x, y, splits


class DatasetVersion:
    """One stored data set: its id, folder, manifest, arrays and fitted transform."""

    def __init__(self, path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]):
        self.path = path
        self.manifest = manifest
        self.arrays = arrays

    @property
    def id(self) -> str:
        return self.manifest["id"]

    @property
    def source(self) -> str:
        return self.manifest["source"]

    @property
    def task(self) -> str:
        return self.manifest["task"]

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def transform(self) -> Transform:
        """The transform fitted on this version's training split."""
        return Transform.from_dict(self.manifest["transform"])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Raw (x, y) of split `name` ("train", "val" or "test")."""
        if name not in SPLITS:
            raise DataError(f"Unknown split {name!r}; expected one of {list(SPLITS)}.")
        return self.arrays[f"x_{name}"], self.arrays[f"y_{name}"]

    def report(self) -> DataReport:
        """`analyze` over all splits: counts per split, statistics, duplicates and leakage."""
        x, y, splits = stack_splits(self.arrays)
        notes = self.manifest.get("notes", {})
        return analyze(
            x,
            y,
            splits,
            self.class_names,
            feature_names=notes.get("feature_names") or None,
            notes=notes.get("source"),
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self.arrays[f'y_{s}'])}" for s in SPLITS)
        x = self.arrays["x_train"]
        return (
            f"DatasetVersion({self.id!r}, source={self.source!r}, task={self.task!r}, {sizes}, "
            f"sample={tuple(x.shape[1:])} {x.dtype}, classes={len(self.class_names)})"
        )


def save_version(
    run_dir: str | Path,
    arrays: dict[str, np.ndarray],
    *,
    source: str,
    parameters: dict[str, Any],
    task: str,
    class_names: list[str],
    transform: Transform,
    notes: dict[str, Any] | None = None,
) -> DatasetVersion:
    """Store `arrays` (the six ARRAY_NAMES) as a version, or reuse an identical one; make it
    the run directory's current data version."""
    missing = sorted(set(ARRAY_NAMES) - set(arrays))
    if missing:
        raise DataError(f"save_version: arrays {missing} are missing; expected {ARRAY_NAMES}.")
    run_dir = Path(run_dir)
    digest = content_hash(arrays)
    vid = version_id(source, parameters, digest, transform.to_dict())
    final = run_dir / DATA_DIR / vid
    if not (final / "manifest.json").is_file():
        _, y_all, splits = stack_splits(arrays)
        _, _, class_counts = count_targets(y_all, splits, class_names)
        manifest = {
            "id": vid,
            "source": source,
            "parameters": parameters,
            "task": task,
            "class_names": list(class_names),
            "shapes": {k: list(arrays[k].shape) for k in ARRAY_NAMES},
            "dtypes": {k: arrays[k].dtype.str for k in ARRAY_NAMES},
            "sizes": {s: len(arrays[f"y_{s}"]) for s in SPLITS},
            "class_counts": class_counts,
            "transform": transform.to_dict(),
            "content_sha256": digest,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "notes": notes or {},
        }
        _write_atomically(final, arrays, manifest)
    version = load_version(run_dir, vid)
    config.set_current(run_dir, STAGE, vid)
    return version


def _write_atomically(final: Path, arrays: dict[str, np.ndarray], manifest: dict) -> None:
    """Build the version in a hidden temporary folder next to it, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        np.savez(tmp / "arrays.npz", **{k: arrays[k] for k in ARRAY_NAMES})
        manifest = {**manifest, "file_sha256": sha256_file(tmp / "arrays.npz")}
        atomic_write_json(tmp / "manifest.json", manifest)
        try:
            os.rename(tmp, final)
        except OSError:  # written meanwhile by another process: keep theirs
            if not (final / "manifest.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def list_versions(run_dir: str | Path) -> list[str]:
    """Ids of the data versions stored in `run_dir`, oldest first."""
    root = config.resolve_run_dir(run_dir) / DATA_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if not p.name.startswith(".")]
    found = [p for p in found if (p / "manifest.json").is_file()]
    return [
        p.name
        for p in sorted(found, key=lambda p: (read_json(p / "manifest.json")["created"], p.name))
    ]


def load_version(run_dir: str | Path, version: str | None = None) -> DatasetVersion:
    """Load `version` (default: the run directory's current one), checking the file hash."""
    run_dir = config.resolve_run_dir(run_dir)
    if version is None:
        version = config.current(run_dir, STAGE)
        if version is None:
            raise DataError(
                f"No current data version in {str(run_dir)!r}; versions there: "
                f"{list_versions(run_dir)}. Run workbench.data.prepare(...) first."
            )
    path = run_dir / DATA_DIR / version
    if not (path / "manifest.json").is_file():
        raise DataError(
            f"Data version {version!r} not found in {str(run_dir / DATA_DIR)!r}; expected one "
            f"of {list_versions(run_dir)}."
        )
    manifest = read_json(path / "manifest.json")
    npz = path / "arrays.npz"
    actual = sha256_file(npz) if npz.is_file() else "missing"
    if actual != manifest.get("file_sha256"):
        raise DataError(
            f"Data version {version!r} is corrupted: arrays.npz has sha256 {actual[:16]}..., "
            f"its manifest expects {str(manifest.get('file_sha256'))[:16]}.... Delete "
            f"{str(path)!r} and prepare the data again."
        )
    with np.load(npz, allow_pickle=False) as f:
        arrays = {k: f[k] for k in ARRAY_NAMES}
    return DatasetVersion(path, manifest, arrays)
