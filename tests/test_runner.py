"""The headless runner behind `make run`: run directories, runs/latest, failures, kernels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_notebook

from workbench import runner
from workbench.runner import NotebookFailure


def test_sequence_runs_in_order_and_stops_at_the_failing_cell(tmp_path):
    ok = write_notebook(
        tmp_path / "00_ok.ipynb",
        'run_dir = "runs/latest"\nprofile = "smoke"\nseed = 0',
        "import pathlib; pathlib.Path(run_dir, 'marker').write_text(profile)",
    )
    bad = write_notebook(tmp_path / "01_bad.ipynb", "run_dir = None", "x = 1", "1 / 0")
    runs = tmp_path / "runs"
    (runs / "latest").mkdir(parents=True)  # a folder of the user's own: kept, not lost
    (runs / "latest" / "mine.txt").write_text("keep me")
    with pytest.raises(NotebookFailure) as e:
        runner.run_sequence(profile="full", runs=runs, notebooks=[ok, bad], progress=False)
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
    runner.use_environment_kernel()
    first = os.environ["JUPYTER_PATH"].split(os.pathsep)[0]
    assert first == str(Path(sys.prefix) / "share" / "jupyter")


def test_list_notebooks_is_numbered_and_ordered(tmp_path):
    for name in ("02_b.ipynb", "00_a.ipynb", "notes.ipynb", "10_c.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runner.list_notebooks(tmp_path)] == [
        "00_a.ipynb",
        "02_b.ipynb",
        "10_c.ipynb",
    ]
