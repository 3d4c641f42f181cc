"""Experiment tracking with MLflow: every training run is recorded with its lineage.

A run holds the training config and the model spec (flattened params), per-epoch metrics, the
data version it learned from (id and content hash, as tags), the model (`model.keras`, and an
MLflow Keras model) and figures. By default the store is a local SQLite file,
`<repo>/runs/mlflow.db`, with artifacts in `<repo>/runs/mlartifacts`; `MLFLOW_TRACKING_URI`
points elsewhere (a team server, or a test's temporary database). Browse it with

    mlflow ui --backend-store-uri sqlite:///runs/mlflow.db --host 127.0.0.1 --port 5000

MLflow and Keras load only when a function needs them.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench import params as checks
from workbench.config import load_keras, repo_root
from workbench.files import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from workbench.data import DatasetVersion
    from workbench.identify import ProblemCard

EXPERIMENT = "workbench-train"  # one experiment per notebook stage
URI_ENV = "MLFLOW_TRACKING_URI"
MAX_PARAM = 500  # longer parameter values are cut (MLflow's limit is 6,000 characters)
SUMMARY_PARAMS = (  # what `run_summary` shows of a run's params: the model and how it trained
    "spec.name",
    "config.epochs",
    "config.batch_size",
    "config.learning_rate",
    "config.schedule",
    "config.augment",
    "config.seed",
)
SUMMARY_TAGS = ("data_source", "data_version", "data_content_sha256", "selected")  # lineage
SUMMARY_METRICS = ("selected_val_", "test_")  # prefixes: the selected weights' numbers


def tracking_uri() -> str:
    """`$MLFLOW_TRACKING_URI`, else the SQLite store `<repo>/runs/mlflow.db`."""
    return os.environ.get(URI_ENV) or f"sqlite:///{repo_root() / 'runs' / 'mlflow.db'}"


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Next to a SQLite store: `<db folder>/mlartifacts/<experiment>`; else the server's."""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    return (db.parent / "mlartifacts" / experiment).resolve().as_uri()


_CLIENTS: dict[str, Any] = {}  # tracking URI -> its client (one per store and process)


def mlflow_client():
    """A client of the tracking store (`MLFLOW_TRACKING_URI`, else runs/mlflow.db); it also
    sets MLflow's global URI, which `mlflow.keras.log_model` and `mlflow.start_run` use.

    One client per URI and process: making one costs ~50 ms (a registry step asks for it a
    dozen times). A SQLite store whose file was deleted gets a new client, which recreates it.
    """
    import mlflow

    uri = tracking_uri()
    db = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    if uri not in _CLIENTS or (db is not None and not db.is_file()):
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # no "creating tables" here
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        _CLIENTS[uri] = mlflow.MlflowClient(uri)
    mlflow.set_tracking_uri(uri)  # mlflow.keras.log_model uses the global URI
    return _CLIENTS[uri]


def experiment_id(client, experiment: str) -> str:
    """The id of the experiment called `experiment`, created (artifacts beside the store) if new."""
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = _artifact_location(tracking_uri(), experiment)
    return client.create_experiment(experiment, artifact_location=location)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts -> {"a.b.c": "value"} with values as (cut) strings, as MLflow params."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:MAX_PARAM]
    return out


def lineage_tags(version: DatasetVersion, card: ProblemCard, *, model_name: str) -> dict[str, str]:
    """Where a run came from: the data version (id, content hash, source) and the problem."""
    return {
        "data_version": version.id,
        "data_content_sha256": str(version.manifest.get("content_sha256", "")),
        "data_source": version.source,
        "task": card.task,
        "model_name": model_name,
    }


def pip_requirements() -> list[str]:
    """The model's runtime requirements, pinned from this environment (listed explicitly so
    MLflow starts no subprocess that imports TensorFlow to infer them)."""
    backend = load_keras().backend.backend()
    dists = {
        "tensorflow": ("tensorflow-cpu", "tensorflow"),
        "jax": ("jax",),
        "torch": ("torch",),
    }.get(backend, ())
    reqs = []
    for name in ("keras", "numpy", *dists):
        try:
            reqs.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
        if name in dists:
            break  # tensorflow-cpu found: no need for tensorflow as well
    return reqs


class Tracker:
    """One MLflow run, written through an explicit client (no global active-run state)."""

    def __init__(self, client, run_id: str, experiment: str, name: str) -> None:
        self.client, self.run_id, self.experiment, self.name = client, run_id, experiment, name

    def __repr__(self) -> str:
        return f"Tracker(run {self.run_id!r} {self.name!r} in {self.experiment!r})"

    def log_params(self, params: dict[str, Any]) -> None:
        """Log nested params flattened to "section.field" names."""
        from mlflow.entities import Param

        flat = [Param(k, v) for k, v in flatten(params).items()]
        for i in range(0, len(flat), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=flat[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], *, step: int = 0) -> None:
        """Log numeric metrics at `step` (an epoch for learning curves)."""
        from mlflow.entities import Metric

        ms = int(time.time() * 1000)
        rows = [Metric(k, float(v), ms, step) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=rows)

    def epoch_callback(self):
        """A Keras callback that logs every epoch's logs (loss, metrics, val_*) at step=epoch."""
        keras = load_keras()
        tracker = self

        class MlflowEpochLogger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                tracker.log_metrics(dict(logs or {}), step=epoch)

        return MlflowEpochLogger()

    def log_figure(self, fig: Figure, name: str) -> None:
        """Keep a matplotlib figure as `figures/<name>.png` in the run."""
        self.client.log_figure(self.run_id, fig, f"figures/{name}.png")

    def log_result(
        self, metrics: dict[str, Any], folder: Path, *, model=None, example=None
    ) -> None:
        """Final metrics (test_*, best_*, and selected_val_*: the validation numbers of the
        weights that were tested, which choose between runs), which weights those are (tag
        "selected"), the run folder's files, and the model as an MLflow Keras model (explicit
        pip requirements, so no inference subprocess; the signature from a few `example`
        inputs)."""
        final = {f"test_{k}": v for k, v in metrics["test"].items()}
        final |= {f"best_{k}": v for k, v in metrics["best"].items()}
        final |= {f"selected_{k}": v for k, v in metrics["validation"].items()}
        self.log_metrics({**final, "seconds": metrics["seconds"]}, step=metrics["epochs_run"])
        self.client.set_tag(self.run_id, "selected", metrics["selected"])
        if metrics.get("spec"):
            self.client.log_dict(self.run_id, metrics["spec"], "spec.json")
        for name in ("model.keras", "metrics.json", "history.json"):
            if (folder / name).is_file():
                self.client.log_artifact(self.run_id, str(folder / name))
        if model is not None:
            import mlflow
            from mlflow.models import infer_signature

            signature = None
            if example is not None:
                signature = infer_signature(example, np.asarray(model.predict_on_batch(example)))
            with mlflow.start_run(run_id=self.run_id):
                mlflow.keras.log_model(
                    model, name="model", signature=signature, pip_requirements=pip_requirements()
                )

    def end(self, status: str = "FINISHED") -> None:
        """Close the run ("FINISHED", or "KILLED" when interrupted: a resume reopens it)."""
        self.client.set_terminated(self.run_id, status=status)


def start_tracking(
    name: str,
    *,
    experiment: str = EXPERIMENT,
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    resume: str | Path | None = None,
) -> Tracker:
    """Open an MLflow run called `name` in `experiment`, with params and tags.

    `resume` is a file keeping the MLflow run id: an unfinished run named there is reopened
    (a resumed training continues the same run's curves); otherwise a new run is recorded there.
    """
    client = mlflow_client()
    exp_id = experiment_id(client, experiment)
    resume = Path(resume) if resume else None
    if resume and resume.is_file():
        old = client.get_run(resume.read_text().strip())
        if old.info.status != "FINISHED" and old.info.lifecycle_stage == "active":
            client.update_run(old.info.run_id, status="RUNNING")
            return Tracker(client, old.info.run_id, experiment, name)
    run = client.create_run(exp_id, run_name=name, tags={"workbench_run_id": name, **(tags or {})})
    tracker = Tracker(client, run.info.run_id, experiment, name)
    if params:
        tracker.log_params(params)
    if resume:
        atomic_write_text(resume, run.info.run_id)
    return tracker


def log_figures(run_id: str, figures: dict[str, Figure]) -> None:
    """Add figures (name -> Figure) to a finished run, e.g. `TrainResult.mlflow_run_id`."""
    client = mlflow_client()
    for name, fig in figures.items():
        client.log_figure(run_id, fig, f"figures/{name}.png")


def list_runs(experiment: str = EXPERIMENT, *, max_results: int = 100) -> list[dict[str, Any]]:
    """The experiment's runs, newest first, as flat rows (a table): name, status, start,
    lineage tags, which weights were selected, latest metrics and params. Metrics include
    `selected_val_*` (validation numbers of the selected weights: compare runs by these) and
    `test_*` (the final estimate, not for choosing)."""
    client = mlflow_client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs(
        [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=max_results
    )
    rows = []
    for r in runs:
        tags = r.data.tags
        rows.append(
            {
                "mlflow_run_id": r.info.run_id,
                "name": r.info.run_name,
                "status": r.info.status,
                "start": time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.localtime(r.info.start_time / 1e3)
                ),
                "data_version": tags.get("data_version", ""),
                "selected": tags.get("selected", ""),
                **dict(r.data.metrics),
                **dict(r.data.params),
            }
        )
    return rows


def run_summary(mlflow_run_id: str) -> list[dict[str, Any]]:
    """What the store holds for one run, as table rows {"recorded as", "name", "value"}: the
    main params (spec and training config), the lineage tags (data version, content hash) and
    which weights were selected, then those weights' validation metrics and the test metrics
    (rounded to 4 decimals). No MLflow ids, times or paths: a committed notebook may print it."""
    checks.check_str("mlflow_run_id", mlflow_run_id)
    data = mlflow_client().get_run(mlflow_run_id).data
    rows = [("param", k, data.params[k]) for k in SUMMARY_PARAMS if k in data.params]
    rows += [("tag", k, data.tags[k]) for k in SUMMARY_TAGS if k in data.tags]
    rows += [
        ("metric", k, round(v, 4))
        for prefix in SUMMARY_METRICS
        for k, v in sorted(data.metrics.items())
        if k.startswith(prefix)
    ]
    return [{"recorded as": kind, "name": name, "value": value} for kind, name, value in rows]
