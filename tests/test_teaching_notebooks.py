"""Every notebook carries the teaching layer, its stated numbers match what it computes, and
student copies (no solutions, no notes) still run."""

from __future__ import annotations

import nbformat
import pytest
from conftest import ROOT, outputs_text
from notebook_lint import check_notebook_teaching, compare_stated, stated_in_prose

from workbench.runner import execute, list_notebooks
from workbench.student import student_copy
from workbench.teaching import EXERCISE, INSTRUCTOR, SOLUTION, tags

NOTEBOOKS = list_notebooks(ROOT / "notebooks")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_objectives_map_stated_numbers_and_exercises(path):
    assert check_notebook_teaching(path) == []


@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_stated_numbers_match_the_executed_notebook(executed, name):
    nb = executed(name)
    assert stated_in_prose(nb), f"{name} states no numbers"
    assert compare_stated(nb) == []


@pytest.mark.parametrize("name", [p.stem for p in NOTEBOOKS])
def test_reference_solutions_pass_in_the_notebook(executed, name):
    text = outputs_text(executed(name))  # the session runs notebooks with solutions=True
    assert "Reference solution of exercise" in text
    assert "✗" not in text and "Your turn" not in text


def test_student_copy_has_no_solutions_and_runs(session_tmp):
    nb = student_copy(nbformat.read(ROOT / "notebooks" / "01_identify.ipynb", as_version=4))
    assert not any(tags(c) & {SOLUTION, INSTRUCTOR} for c in nb.cells)
    assert sum(EXERCISE in tags(c) for c in nb.cells) >= 2
    src = session_tmp / "student" / "01_identify.ipynb"
    src.parent.mkdir(parents=True)
    nbformat.write(nb, src)
    out = session_tmp / "student" / "executed.ipynb"
    params = {"run_dir": str(session_tmp / "student" / "run")}
    execute(src, out, parameters=params, progress=False)
    text = outputs_text(nbformat.read(out, as_version=4))
    assert text.count("Your turn") == 4 and "Reference solution" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copies_hold_no_solution_text(path):
    nb = student_copy(nbformat.read(path, as_version=4))
    sources = "\n".join(c.source for c in nb.cells)
    assert "<summary><b>Solution" not in sources and "instructor_note(" not in sources
    assert "Reference solution" not in outputs_text(nb)
