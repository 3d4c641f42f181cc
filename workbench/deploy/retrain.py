"""Continuous learning, the model side: retrain the champion on the accumulated data.

    result = retrain(champion_run_folder, new_version, config, card=card, run_dir=run.dir)
    scratch = retrain(champion_run_folder, new_version, config, card=card, run_dir=run.dir,
                      warm_start=False)

Warm start continues from the champion's weights (a fresh optimizer, the config's learning-rate
schedule); from scratch trains a freshly initialised model of the same design: the champion's
spec (from its run's metrics.json, or `spec=`), else a re-initialised clone of its architecture.
Both go through `workbench.train.train`, so a retrained run is saved, tracked, selected on
validation and exportable exactly like stage 4's.

Run ids: `train.make_run_id` hashes the architecture, the data version and the config, not the
weights, so a warm and a scratch run (or warm runs from two champions) on the same data would
share a folder. `retrain` names its runs `<model>-warm-<hash>` and `<model>-scratch-<hash>`,
the warm hash including the champion's weights: the same call still gets the same id (and
resumes after an interruption), different starting points never collide. Each run folder also
gets `retrain.json`: how it started and from which champion.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params
from workbench.config import load_keras, seed_everything
from workbench.data.versioning import DatasetVersion
from workbench.design import ModelSpec
from workbench.errors import ParameterError
from workbench.files import atomic_write_json, read_json, sha256_bytes, to_json
from workbench.train import TrainConfig, TrainResult, make_run_id, train

if TYPE_CHECKING:
    from workbench.identify import ProblemCard

RETRAIN_FILE = "retrain.json"  # in the run folder: warm or scratch, and from which champion


def weights_sha256(model: Any) -> str:
    """Hex sha256 of a model's weights (shapes, dtypes and values, in layer order)."""
    h = hashlib.sha256()
    for w in model.get_weights():
        a = np.ascontiguousarray(w)
        h.update(f"{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_champion(model_path_or_model: Any) -> tuple[Any, Path | None]:
    """(a copy of the champion keras.Model, its training run folder or None).

    Takes a training run folder (`<run_dir>/train/<run_id>`), its `model.keras` file, or a
    keras.Model, which is copied (clone and weights) so that retraining leaves it unchanged.
    """
    import workbench.schedules  # noqa: F401 - registers the classes model.keras refers to

    keras = load_keras()
    if isinstance(model_path_or_model, keras.Model):
        copy = keras.models.clone_model(model_path_or_model)
        copy.set_weights(model_path_or_model.get_weights())
        return copy, None
    if not isinstance(model_path_or_model, str | Path):
        raise ParameterError(
            f"Parameter 'model_path_or_model': expected a training run folder, a model.keras "
            f"path or a keras.Model, got {type(model_path_or_model).__name__}."
        )
    path = Path(model_path_or_model)
    path = path / "model.keras" if path.is_dir() else path
    if not path.is_file():
        raise ParameterError(
            f"Parameter 'model_path_or_model': expected a training run folder or a model.keras "
            f"file, got {str(model_path_or_model)!r}, which has no model.keras."
        )
    return keras.saving.load_model(path, safe_mode=True), path.parent


def _scratch_model(champion: Any, folder: Path | None, spec: ModelSpec | None) -> Any:
    """What from-scratch training starts from: `spec`, the champion run's recorded spec, or a
    re-initialised clone of the champion's architecture (seeded by the caller)."""
    if spec is not None:
        return spec
    recorded = folder / "metrics.json" if folder is not None else None
    if recorded is not None and recorded.is_file() and read_json(recorded).get("spec"):
        return ModelSpec.from_dict(read_json(recorded)["spec"])
    return load_keras().models.clone_model(champion)  # new layers, freshly initialised


def retrain_run_id(
    model_or_spec: Any, version: DatasetVersion, config: TrainConfig, start: dict[str, Any]
) -> str:
    """`<model>-warm-<12 hex>` or `<model>-scratch-<12 hex>`: `make_run_id`'s key plus where
    the weights start (`start`: the champion's weights hash for a warm start)."""
    key = {"run": make_run_id(model_or_spec, version, config), "start": start}
    return f"{model_or_spec.name}-{start['kind']}-{sha256_bytes(to_json(key).encode())[:12]}"


def retrain(
    model_path_or_model: Any,
    version: DatasetVersion,
    config: TrainConfig,
    *,
    card: ProblemCard,
    run_dir: str | Path,
    warm_start: bool = True,
    seed: int | None = None,
    spec: ModelSpec | None = None,
    track: bool = True,
    verbose: int = 2,
    test: bool = True,
) -> TrainResult:
    """Train on `version` starting from the champion's weights (`warm_start`) or from scratch,
    through `workbench.train.train`; `seed` (default: the config's) seeds the new run. `spec`
    (from scratch only) overrides the champion's recorded spec; `track`, `verbose` and `test`
    go to `train` (`test=False`: a candidate that a gate may reject leaves the test split
    unscored)."""
    params.check_bool("warm_start", warm_start)
    if not isinstance(config, TrainConfig):
        raise ParameterError(f"Parameter 'config': expected a TrainConfig, got {config!r}.")
    config = config if seed is None else config.replace(seed=seed)
    champion, folder = load_champion(model_path_or_model)
    start: dict[str, Any] = {"kind": "warm" if warm_start else "scratch"}
    if folder is not None:
        start["champion_run"] = folder.name
    start["champion_weights_sha256"] = weights_sha256(champion)
    if warm_start:
        model_or_spec = champion
    else:
        seed_everything(config.seed)  # a re-initialised clone draws its weights here
        model_or_spec = _scratch_model(champion, folder, spec)
    # The hash of a scratch run leaves the champion's weights out: they do not affect it.
    key = start if warm_start else {"kind": "scratch"}
    run_id = retrain_run_id(model_or_spec, version, config, key)
    result = train(model_or_spec, version, config, card=card, run_dir=run_dir, track=track,
                   run_id=run_id, verbose=verbose, test=test)  # fmt: skip
    atomic_write_json(result.path / RETRAIN_FILE, {**start, "data_version": version.id})
    if result.mlflow_run_id:
        from workbench.tracking import mlflow_client

        client = mlflow_client()
        for name, value in start.items():
            client.set_tag(result.mlflow_run_id, f"retrain_{name}", str(value))
    return result
