"""Parameter sweeps (`workbench batch`): points in parallel, failures reported, grids, values."""

from __future__ import annotations

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
