"""The headless runner behind `make run`: run directories, runs/latest, failures, kernels."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from workbench import batch
from workbench.batch import NotebookFailure


def _notebook(path: Path, *cells: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)
    return path


def test_sequence_runs_in_order_and_stops_at_the_failing_cell(tmp_path):
    ok = _notebook(
        tmp_path / "00_ok.ipynb",
        'run_dir = "runs/latest"\nprofile = "smoke"\nseed = 0',
        "import pathlib; pathlib.Path(run_dir, 'marker').write_text(profile)",
    )
    bad = _notebook(tmp_path / "01_bad.ipynb", "run_dir = None", "x = 1", "1 / 0")
    runs = tmp_path / "runs"
    (runs / "latest").mkdir(parents=True)  # a folder of the user's own: kept, not lost
    (runs / "latest" / "mine.txt").write_text("keep me")
    with pytest.raises(NotebookFailure) as e:
        batch.run_sequence(profile="full", runs=runs, notebooks=[ok, bad], progress=False)
    assert "01_bad.ipynb failed in cell In [4], line 1: 1 / 0\nZeroDivisionError" in str(e.value)
    latest = runs / "latest"
    assert latest.is_symlink()
    run_dir = latest.resolve()
    assert (run_dir / "marker").read_text() == "full"
    assert (run_dir / "notebooks" / "00_ok.ipynb").is_file()
    assert (run_dir / "notebooks" / "01_bad.ipynb").is_file()  # kept, with the traceback
    kept = [p for p in runs.iterdir() if p.name.startswith("manual-")]
    assert len(kept) == 1 and (kept[0] / "mine.txt").read_text() == "keep me"


def test_environment_kernel_comes_first(monkeypatch):
    import sys

    monkeypatch.setenv("JUPYTER_PATH", "/elsewhere")
    batch.use_environment_kernel()
    first = os.environ["JUPYTER_PATH"].split(os.pathsep)[0]
    assert first == str(Path(sys.prefix) / "share" / "jupyter")


def test_list_notebooks_is_numbered_and_ordered(tmp_path):
    for name in ("02_b.ipynb", "00_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in batch.list_notebooks(tmp_path)] == [
        "00_a.ipynb",
        "02_b.ipynb",
        "10_c.ipynb",
    ]


def test_sweep_reports_a_failing_point_and_completes_the_other(tmp_path):
    nb = _notebook(
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
    result = batch.sweep(nb, {"learning_rate": [0.01, -1]}, run_dir=upstream, workers=2)
    ok, bad = result.points
    assert ok.ok and ok.metrics == {"test": {"accuracy": 0.5}}
    assert (ok.run_dir / "problem").is_symlink()  # upstream shared, not copied
    assert not bad.ok and "ValueError: learning_rate must be positive, got -1" in bad.error
    assert "04_tiny.ipynb failed in cell In [3], line 3" in bad.error
    rows = result.table()
    assert rows[0]["status"] == "ok" and rows[0]["test_accuracy"] == 0.5
    assert rows[1]["status"] == "failed" and rows[1]["learning_rate"] == -1
    assert "learning_rate" in batch.format_table(rows)


def test_grid_and_values():
    assert batch.grid_points({"a": [1, 2], "b": ["x"]}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert [batch.parse_value(v) for v in ("0.01", "16", "True", "adam")] == [
        0.01,
        16,
        True,
        "adam",
    ]
    with pytest.raises(batch.WorkbenchError, match="at least one value per parameter"):
        batch.grid_points({"a": []})


def _widget_notebook(path: Path, box: str, label: str) -> Path:
    """A stored notebook whose cell shows a VBox holding a Label, with the given model ids."""
    nb = new_notebook(cells=[new_code_cell("view", id="view")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "display_data", data={batch.WIDGET_VIEW: {"model_id": box, "version_major": 2}}
        )
    ]
    nb.cells[0].metadata["papermill"] = {"duration": 1.5}
    nb.metadata["widgets"] = {
        batch.WIDGET_STATE: {
            "state": {
                box: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{label}"]}},
                label: {"model_name": "LabelModel", "state": {"value": "hi"}},
            },
            "version_major": 2,
        }
    }
    nbformat.write(nb, path)
    return path


def test_stored_outputs_do_not_change_with_random_widget_ids(tmp_path):
    first = batch._without_volatile(_widget_notebook(tmp_path / "a.ipynb", "a" * 32, "b" * 32))
    again = batch._without_volatile(_widget_notebook(tmp_path / "b.ipynb", "c" * 32, "d" * 32))
    assert first == again
    assert "a" * 32 not in first and "papermill" not in first
    stored = nbformat.reads(first, as_version=4)
    state = stored.metadata["widgets"][batch.WIDGET_STATE]["state"]
    box = stored.cells[0].outputs[0]["data"][batch.WIDGET_VIEW]["model_id"]
    assert state[box]["state"]["children"] == [f"IPY_MODEL_{1 + int(box, 16):032x}"]
