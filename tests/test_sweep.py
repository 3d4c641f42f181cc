"""Parameter sweeps (`workbench batch`) on Dask: points in parallel, failures (a notebook's, a
worker's death) reported, an existing cluster, grids, values, the winner."""

from __future__ import annotations

import json
import os

import pytest
from conftest import write_notebook

from workbench import sweep, tables
from workbench.errors import WorkbenchError

KILLS_ITS_WORKER = 0.2  # the tiny notebook's point that brings down the Dask worker running it


def _tiny(folder):
    """A tiny notebook (no training: it writes a run's metrics) and an upstream run directory.

    learning_rate <= 0 fails in a cell; learning_rate == KILLS_ITS_WORKER SIGKILLs the kernel's
    parent process, which is the Dask worker running the point (papermill starts the kernel
    there), so that worker dies at a point the test chooses, every time."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = write_notebook(
        folder / "04_tiny.ipynb",
        'run_dir = "runs/latest"\nprofile = "smoke"\nseed = 0\nlearning_rate = 0.1',
        "import json, os, pathlib, signal\n"
        "if learning_rate <= 0:\n"
        "    raise ValueError(f'learning_rate must be positive, got {learning_rate}')\n"
        f"if learning_rate == {KILLS_ITS_WORKER}:\n"
        "    os.kill(os.getppid(), signal.SIGKILL)  # the Dask worker process\n"
        "    os.kill(os.getpid(), signal.SIGKILL)  # and this kernel, left without it\n"
        "d = pathlib.Path(run_dir, 'train', 'r1'); d.mkdir(parents=True)\n"
        "(d / 'metrics.json').write_text(json.dumps({'test': {'accuracy': 0.5}}))\n"
        "pathlib.Path(run_dir, 'index.json').write_text(json.dumps({'train': 'r1'}))\n"
        "threads = os.environ['TF_NUM_INTRAOP_THREADS']\n"
        "shared = pathlib.Path(run_dir, 'problem', 'card.json').read_text()",
    )
    upstream = folder / "up"
    (upstream / "problem").mkdir(parents=True)
    (upstream / "problem" / "card.json").write_text("{}")
    return nb, upstream


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """One sweep of the tiny notebook on the sweep's own local Dask cluster of 2 workers."""
    nb, upstream = _tiny(tmp_path_factory.mktemp("local"))
    return sweep.sweep(nb, {"learning_rate": [0.01, -1]}, run_dir=upstream, workers=2)


@pytest.fixture(scope="module")
def cluster():
    """An existing Dask cluster (2 single-threaded workers) for --scheduler and the variable;
    its scheduler re-runs a point whose worker died once (its own setting, not the sweep's)."""
    from distributed import LocalCluster

    quiet = {"dashboard": False, "dashboard_address": "127.0.0.1:0", "allowed_failures": 1}
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, scheduler_kwargs=quiet) as running:  # fmt: skip
        yield running


def _without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_sweep_reports_a_failing_point_and_completes_the_other(local_sweep):
    ok, bad = local_sweep.points
    assert ok.ok and ok.metrics == {"test": {"accuracy": 0.5}}
    assert (ok.run_dir / "problem").is_symlink()  # upstream shared, not copied
    assert not bad.ok and "ValueError: learning_rate must be positive, got -1" in bad.error
    assert "04_tiny.ipynb failed in cell In [3], line 3" in bad.error
    rows = local_sweep.table()
    assert rows[0]["status"] == "ok" and rows[0]["test_accuracy"] == 0.5
    assert rows[1]["status"] == "failed" and rows[1]["learning_rate"] == -1
    assert "learning_rate" in tables.format_table(rows)


def test_an_existing_cluster_gives_the_same_table(tmp_path, local_sweep, cluster, capsys,
                                                  monkeypatch):  # fmt: skip
    from workbench.cli import main

    address = cluster.scheduler_address
    nb, upstream = _tiny(tmp_path / "option")
    argv = ["batch", str(nb), "-p", "learning_rate", "0.01", "-1", "--run-dir", str(upstream)]
    assert main([*argv, "--scheduler", address]) == 1  # one point failed
    out, err = capsys.readouterr()
    assert f"2 point(s) on the Dask cluster at {address}" in out
    assert "FAILED point 1 {'learning_rate': -1}" in err
    (folder,) = (upstream / "sweeps").iterdir()
    rows = json.loads((folder / "results.json").read_text())["rows"]
    assert _without_seconds(rows) == _without_seconds(local_sweep.table())

    nb, upstream = _tiny(tmp_path / "variable")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    result = sweep.sweep(nb, {"learning_rate": [0.01, -1]}, run_dir=upstream)
    assert f"on the Dask cluster at {address}" in capsys.readouterr().out
    assert _without_seconds(result.table()) == _without_seconds(local_sweep.table())


def test_a_worker_killed_mid_point_fails_that_point_and_the_others_complete(tmp_path):
    nb, upstream = _tiny(tmp_path)
    grid = {"learning_rate": [0.01, KILLS_ITS_WORKER, 0.03]}
    result = sweep.sweep(nb, grid, run_dir=upstream, workers=2)
    assert [p.index for p in result.failures()] == [1]
    killed = result.points[1]
    assert killed.error.startswith("the worker running this point died (KilledWorker, last on")
    assert "it was not retried (allowed-failures 0" in killed.error
    assert f"The notebook as far as it ran is at {killed.output}" in killed.error
    assert killed.output.is_file()
    assert [r["status"] for r in result.table()] == ["ok", "failed", "ok"]
    assert all(p.metrics == {"test": {"accuracy": 0.5}} for p in result.points if p.ok)


def test_an_existing_cluster_keeps_its_own_allowed_failures(tmp_path, cluster):
    nb, upstream = _tiny(tmp_path)
    grid = {"learning_rate": [0.01, KILLS_ITS_WORKER]}
    result = sweep.sweep(nb, grid, run_dir=upstream, scheduler=cluster.scheduler_address)
    assert [p.index for p in result.failures()] == [1]
    killed = result.points[1]
    retried = "it ran on 2 workers, all of which died (the scheduler's distributed.scheduler"
    assert f"{retried}.allowed-failures is 1)" in killed.error
    assert f"The notebook as far as it ran is at {killed.output}" in killed.error


def test_a_worker_that_does_not_see_the_run_directory_says_so(tmp_path):
    nb, _ = _tiny(tmp_path)
    missing = tmp_path / "elsewhere" / "00-point"  # as on a worker without the shared disk
    before = dict(os.environ)
    error, _ = sweep._run_point(nb, missing / "notebooks" / nb.name, {"run_dir": str(missing)})
    assert dict(os.environ) == before  # the point's one TensorFlow thread is its kernel's only
    assert f"does not see {missing}: every worker needs the sweep's run directory" in error
    assert not missing.exists()  # nothing written where no one would read it


def test_an_unreachable_scheduler_is_named_at_once(tmp_path, capsys, monkeypatch):
    import socket
    import time

    from workbench.cli import main

    with socket.socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(sweep, "CONNECT_TIMEOUT", 2)
    nb, upstream = _tiny(tmp_path)
    start = time.perf_counter()
    assert main(["batch", str(nb), "-p", "learning_rate", "0.01", "--run-dir", str(upstream),
                 "--scheduler", address]) == 1  # fmt: skip
    assert time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert f"error: Cannot reach the Dask scheduler at {address!r}" in err
    assert "DASK_SCHEDULER_ADDRESS" in err
    assert not (upstream / "sweeps").exists()  # nothing made before the cluster answered


def test_grid_and_values():
    assert sweep.grid_points({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert [sweep.parse_value(v) for v in ("0.01", "16", "True", "adam")] == [
        0.01,
        16,
        True,
        "adam",
    ]
    with pytest.raises(WorkbenchError, match="at least one value per parameter"):
        sweep.grid_points({"a": []})


def _points(tmp_path, validation_and_test):
    """Completed points with hand-made metrics (no training), plus one failed point."""
    points = []
    for i, (lr, val, test) in enumerate(validation_and_test):
        metrics = {"validation": val, "test": test}
        points.append(
            sweep.SweepPoint(i, {"learning_rate": lr}, tmp_path, tmp_path, metrics=metrics)
        )
    failed = sweep.SweepPoint(len(points), {"learning_rate": -1}, tmp_path, tmp_path, "boom")
    return sweep.SweepResult("04_train.ipynb", tmp_path, [*points, failed])


def test_the_winner_is_chosen_by_validation_not_by_test(tmp_path):
    result = _points(tmp_path, [
        (0.01, {"val_accuracy": 0.90, "val_loss": 0.3}, {"accuracy": 0.97}),  # best on test
        (0.003, {"val_accuracy": 0.95, "val_loss": 0.2}, {"accuracy": 0.93}),  # best on val
        (0.001, {"val_accuracy": 0.80, "val_loss": 0.5}, {"accuracy": 0.85}),
    ])  # fmt: skip
    metric, ranked = result.ranking()
    assert metric == "val_accuracy" and [p.index for p in ranked] == [1, 0, 2]
    assert result.winner().index == 1
    assert result.summary() == (
        "winner: point 1 (learning_rate=0.003), chosen by val_accuracy 0.9500 on the validation "
        "split (higher is better); test_* is the final, once-only estimate and chose nothing"
    )
    rows = result.table()
    assert [r["rank"] for r in rows] == [2, 1, 3, None]
    assert rows[0]["val_accuracy"] == 0.90 and rows[0]["test_accuracy"] == 0.97

    sweep.report_sweep(result, track=False)
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["chosen_by"] == "val_accuracy" and report["higher_is_better"] is True
    assert report["winner"] == {"point": 1, "learning_rate": 0.003}
    assert report["summary"] == result.summary() and report["rows"] == rows
    assert (tmp_path / "comparison.png").is_file()


def test_an_error_metric_chooses_the_lowest_and_no_validation_means_no_winner(tmp_path):
    result = _points(tmp_path, [
        (0.01, {"val_mae": 40.0}, {"mae": 30.0}),
        (0.003, {"val_mae": 35.0}, {"mae": 45.0}),
    ])  # fmt: skip
    assert result.ranking()[0] == "val_mae" and result.winner().index == 1
    assert "(lower is better)" in result.summary()
    bare = _points(tmp_path, [(0.01, {}, {"accuracy": 0.99})])
    assert bare.ranking() == (None, []) and bare.winner() is None
    assert bare.summary().startswith("no winner: no completed point measured a validation metric")


def test_the_sweep_figure_names_the_metric_and_the_winner():
    from workbench.plots.sweep import plot_sweep

    rows = [
        {"lr": 0.1, "status": "ok", "val_loss": 0.4},
        {"lr": 0.2, "status": "ok", "val_loss": 0.3},
    ]
    fig = plot_sweep(rows, ["lr"], metric="val_loss", higher_is_better=False, winner=1,
                     title="Sweep of 04_train.ipynb")  # fmt: skip
    ax = fig.axes[0]
    assert ax.get_title() == "Sweep of 04_train.ipynb\nwinner: point 1, chosen by val_loss"
    assert ax.get_ylabel() == "val_loss (validation, lower is better)"
