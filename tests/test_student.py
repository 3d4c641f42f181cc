"""Student copies: no solutions, no instructor notes, no answers in outputs, and they still run."""

from __future__ import annotations

import nbformat
import notebook_lint
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from workbench import student, teaching
from workbench.errors import ParameterError

METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
}


def cell(kind: str, source: str, *tags: str):
    new = new_code_cell if kind == "code" else new_markdown_cell
    return new(source, metadata={"tags": list(tags)} if tags else {})


def instructor_notebook():
    """A tiny teaching notebook as committed: solutions, notes and an answered exercise output."""
    exercise = cell("code", "answer = 0.55\nrun(identify.BASELINE, answer, solutions=solutions)")
    exercise.metadata["tags"] = ["exercise"]
    exercise.outputs = [new_output("stream", name="stdout", text="✓ 0.55: ...\n")]
    exercise.execution_count = 4
    cells = [
        cell("markdown", "## Learning objectives\n\n- one\n- two\n- three"),
        cell("code", "solutions = False", "parameters"),
        cell(
            "code", "from workbench import teaching\nfrom workbench.exercises import identify, run"
        ),
        cell(
            "markdown",
            'Baseline: <span class="stated" data-name="baseline_accuracy">0.55</span>.',
        ),
        cell("code", "teaching.state('baseline_accuracy', identify.BASELINE.solution)"),
        cell("code", "answer = ...\nrun(identify.HEAD, answer, solutions=solutions)", "exercise"),
        cell("markdown", "**Solution 1.1.** sigmoid + binary cross-entropy.", "solution"),
        cell("code", "reference = identify.HEAD.solution\nprint(reference)", "solution"),
        cell("code", "from workbench.exercises import instructor_note", "instructor"),
        exercise,
        cell("markdown", "**Solution 1.2.** 11 of 20 labels are class 1.", "solution"),
        cell("code", "print('next stage')"),
    ]
    return new_notebook(cells=cells, metadata=METADATA)


def test_student_copy_drops_solutions_and_notes_and_clears_exercise_outputs():
    nb = instructor_notebook()
    copy = student.student_copy(nb)
    assert [sorted(teaching.tags(c)) for c in copy.cells] == [
        [],
        ["parameters"],
        [],
        [],
        [],
        ["exercise"],
        ["exercise"],
        [],
    ]
    exercises = [c for c in copy.cells if "exercise" in teaching.tags(c)]
    assert all(c.outputs == [] and c.execution_count is None for c in exercises)
    assert len(nb.cells) == 12 and nb.cells[9].outputs  # the original is untouched
    assert "solutions = False" in copy.cells[1].source


def test_write_student_notebooks(tmp_path):
    src, out = tmp_path / "notebooks", tmp_path / "student"
    src.mkdir()
    nbformat.write(instructor_notebook(), src / "01_identify.ipynb")
    (src / "scratch.ipynb").write_text("not a numbered notebook")
    written = student.write_student_notebooks(src, out)
    assert written == [out / "01_identify.ipynb"]
    copy = nbformat.read(written[0], as_version=4)
    assert not any(teaching.tags(c) & {"solution", "instructor"} for c in copy.cells)
    assert list(out.iterdir()) == written  # no temporary files left behind


def test_write_student_notebooks_needs_an_existing_folder(tmp_path):
    with pytest.raises(ParameterError, match="Parameter 'src_dir': expected an existing path"):
        student.write_student_notebooks(tmp_path / "missing", tmp_path / "out")


def test_main_student_writes_copies_of_the_repository_notebooks(tmp_path, capsys):
    assert student.main_student(tmp_path) == 0
    assert f"student notebook(s) to {tmp_path}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.glob("*.ipynb"))


@pytest.mark.notebook
def test_student_copy_runs_with_papermill(tmp_path):
    from workbench.runner import execute

    path = tmp_path / "01_identify.ipynb"
    nbformat.write(student.student_copy(instructor_notebook()), path)
    out = execute(path, tmp_path / "executed.ipynb", progress=False)
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert text.count("✎ Your turn") == 1 and "✓ 0.55: always predicting" in text
    assert "Reference solution" not in text and "next stage" in text
    assert notebook_lint.compare_stated(executed) == []
