"""Parameter sweeps (`workbench batch`): points in parallel, failures reported, grids, values."""

from __future__ import annotations

import json

import pytest
from conftest import write_notebook

from workbench import sweep, tables
from workbench.errors import WorkbenchError


def test_sweep_reports_a_failing_point_and_completes_the_other(tmp_path):
    nb = write_notebook(
        tmp_path / "04_tiny.ipynb",
        'run_dir = "runs/latest"\nprofile = "smoke"\nseed = 0\nlearning_rate = 0.1',
        "import json, os, pathlib\n"
        "if learning_rate <= 0:\n"
        "    raise ValueError(f'learning_rate must be positive, got {learning_rate}')\n"
        "d = pathlib.Path(run_dir, 'train', 'r1'); d.mkdir(parents=True)\n"
        "(d / 'metrics.json').write_text(json.dumps({'test': {'accuracy': 0.5}}))\n"
        "pathlib.Path(run_dir, 'index.json').write_text(json.dumps({'train': 'r1'}))\n"
        "threads = os.environ['TF_NUM_INTRAOP_THREADS']\n"
        "shared = pathlib.Path(run_dir, 'problem', 'card.json').read_text()",
    )
    upstream = tmp_path / "up"
    (upstream / "problem").mkdir(parents=True)
    (upstream / "problem" / "card.json").write_text("{}")
    result = sweep.sweep(nb, {"learning_rate": [0.01, -1]}, run_dir=upstream, workers=2)
    ok, bad = result.points
    assert ok.ok and ok.metrics == {"test": {"accuracy": 0.5}}
    assert (ok.run_dir / "problem").is_symlink()  # upstream shared, not copied
    assert not bad.ok and "ValueError: learning_rate must be positive, got -1" in bad.error
    assert "04_tiny.ipynb failed in cell In [3], line 3" in bad.error
    rows = result.table()
    assert rows[0]["status"] == "ok" and rows[0]["test_accuracy"] == 0.5
    assert rows[1]["status"] == "failed" and rows[1]["learning_rate"] == -1
    assert "learning_rate" in tables.format_table(rows)


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
