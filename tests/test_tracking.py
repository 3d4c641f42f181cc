"""MLflow tracking: a training run is recorded with params, per-epoch metrics, lineage and model.

The whole test session shares one temporary tracking database (MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from workbench import tables, tracking
from workbench.data import prepare
from workbench.design import preset
from workbench.errors import ParameterError
from workbench.identify import identify
from workbench.train import TrainConfig, train

# Keras 3.15 + TF 2.21 turn variables into NumPy arrays the NumPy 1 way (not our code).


@pytest.fixture(scope="session")
def tracking_db():
    """One temporary SQLite store for the session, unless the environment names one."""
    if os.environ.get(tracking.URI_ENV):
        yield tracking.tracking_uri()
        return
    folder = Path(tempfile.mkdtemp(prefix="workbench-mlflow-"))
    os.environ[tracking.URI_ENV] = f"sqlite:///{folder / 'mlflow.db'}"
    yield tracking.tracking_uri()
    del os.environ[tracking.URI_ENV]


@pytest.fixture(scope="module")
def tracked(tracking_db, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tracking")
    version = prepare("sklearn:wine", run_dir=run_dir)
    card = identify(
        version.split("train")[1],
        modality="tabular",
        task="multiclass",
        input_shape=version.transform.output_shape,
        class_names=version.class_names,
        dataset=version.source,
    )
    config = TrainConfig(epochs=3)
    result = train(preset("tabular", card), version, config, card=card, run_dir=run_dir, verbose=0)
    return result, version


def test_default_store_is_under_the_repository(monkeypatch):
    monkeypatch.delenv(tracking.URI_ENV, raising=False)
    uri = tracking.tracking_uri()
    assert uri.startswith("sqlite:///") and uri.endswith("runs/mlflow.db")
    assert tracking._artifact_location(uri, "x").endswith("runs/mlartifacts/x")
    monkeypatch.setenv(tracking.URI_ENV, "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"


def test_run_holds_params_metrics_lineage_and_model(tracked, tracking_db):
    import mlflow

    result, version = tracked
    assert tracking.tracking_uri() == tracking_db
    client = mlflow.MlflowClient(tracking_db)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == result.run_id
    p = run.data.params
    assert p["config.epochs"] == "3" and p["config.schedule"] == "constant"
    assert p["spec.name"] == "tabular" and p["spec.stem.kind"] == "dense"
    tags = run.data.tags
    assert tags["data_version"] == version.id
    assert tags["data_content_sha256"] == version.manifest["content_sha256"]
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [0, 1, 2]  # one point per epoch
    assert run.data.metrics["test_accuracy"] == pytest.approx(result.test["accuracy"])
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.keras", "metrics.json", "history.json", "spec.json"} <= files
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert any(m.source_run_id == run.info.run_id for m in logged)


def test_list_runs_figures_and_comparison(tracked):
    result, _ = tracked
    rows = tracking.list_runs()
    row = next(r for r in rows if r["mlflow_run_id"] == result.mlflow_run_id)
    assert row["name"] == result.run_id and row["status"] == "FINISHED"
    assert row["config.epochs"] == "3" and "test_accuracy" in row
    assert row["selected"] == result.selected and result.selected.startswith("best epoch")
    chosen = result.metrics["validation"]["val_accuracy"]
    assert row["selected_val_accuracy"] == pytest.approx(chosen)  # compare runs by these
    fig = Figure()
    fig.add_subplot().set_title("a figure")
    tracking.log_figures(result.mlflow_run_id, {"learning_curves": fig})
    import mlflow

    client = mlflow.MlflowClient(tracking.tracking_uri())
    names = {a.path for a in client.list_artifacts(result.mlflow_run_id, "figures")}
    assert names == {"figures/learning_curves.png"}
    from workbench.plots.train import compare_runs

    assert isinstance(compare_runs(rows), Figure)
    assert tracking.list_runs("no-such-experiment") == []


def test_run_summary_shows_params_lineage_and_selected_metrics(tracked):
    result, version = tracked
    rows = tracking.run_summary(result.mlflow_run_id)
    assert set(rows[0]) == {"recorded as", "name", "value"}
    found = {(r["recorded as"], r["name"]): r["value"] for r in rows}
    assert found[("param", "spec.name")] == "tabular"
    assert found[("param", "config.epochs")] == "3"
    assert found[("param", "config.learning_rate")] == "0.002"
    assert found[("tag", "data_version")] == version.id
    assert found[("tag", "data_content_sha256")] == version.manifest["content_sha256"]
    assert found[("tag", "selected")] == result.selected
    chosen = result.metrics["validation"]["val_accuracy"]
    assert found[("metric", "selected_val_accuracy")] == round(chosen, 4)
    assert found[("metric", "test_accuracy")] == round(result.test["accuracy"], 4)
    metrics = [r["name"] for r in rows if r["recorded as"] == "metric"]
    assert metrics == ["selected_val_accuracy", "selected_val_loss", "test_accuracy", "test_loss"]
    # nothing machine-specific or random: no MLflow run id, no time, no path
    text = tables.format_table(rows)
    assert result.mlflow_run_id not in text and "seconds" not in text and "/" not in text
    with pytest.raises(ParameterError, match="Parameter 'mlflow_run_id'"):
        tracking.run_summary("")


def test_flatten_and_requirements():
    flat = tracking.flatten({"config": {"epochs": 3, "cw": None}, "spec": {"stem": {"f": [8]}}})
    assert flat == {"config.epochs": "3", "config.cw": "None", "spec.stem.f": "[8]"}
    reqs = tracking.pip_requirements()
    assert reqs[0].startswith("keras==") and any(r.startswith("numpy==") for r in reqs)
