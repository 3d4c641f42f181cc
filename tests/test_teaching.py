"""Teaching conventions: objectives, map, stated numbers and exercises found in the .ipynb JSON."""

from __future__ import annotations

import sys
import types

import nbformat
import notebook_lint
import numpy as np
import pytest
from conftest import write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from workbench import teaching
from workbench.errors import ParameterError
from workbench.runner import execute
from workbench.teaching import STATED_MIMETYPE

OBJECTIVES = """\
# 01 · Identify the type of model

## Learning objectives

- derive the head (activation, loss) from the task type
- compute the baseline every model must beat
- tell multiclass from multilabel problems

**Prerequisites:** 00_overview; NumPy arrays.
**Time:** smoke profile about 10 s, full profile about 30 s; reading and exercises 30 min.
"""
PROSE = (
    'Always predicting the majority scores <span class="stated" data-name="baseline_accuracy" '
    'data-tol="0.005">0.101</span>; the training split holds '
    '<span class="stated" data-name="n_train">1,257</span> images.'
)


SOLUTION_MD = (
    "<details><summary><b>Solution 1.1</b> (open it after you have tried)</summary>\n\n"
    "sigmoid and binary cross-entropy.\n\n</details>"
)
SUMMARY = """## Summary

- The task type decides the head.
- The baseline is learned on the training split.
- Multilabel means independent sigmoids.

Next: [02_design](02_design.ipynb) — design the model.
"""


def code(source: str, *tags: str, stated: tuple[tuple[str, str], ...] = ()):
    """A code cell; `stated` gives the (name, text) outputs its `teaching.state` calls left."""
    cell = new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    cell.outputs = [
        new_output("display_data", data={STATED_MIMETYPE: {"name": name, "value": text}})
        for name, text in stated
    ]
    return cell


def md(source: str, *tags: str):
    return new_markdown_cell(source, metadata={"tags": list(tags)} if tags else {})


def good_cells() -> list:
    return [
        md(OBJECTIVES),
        code("run_dir = 'runs/latest'\nsolutions = False", "parameters"),
        code("from workbench.exercises import identify, run\nfrom workbench import teaching"),
        code("pipeline.where_am_i('identify', run_dir=run.dir)"),
        md(PROSE),
        code(
            "teaching.state('baseline_accuracy', b)\nteaching.state('n_train', n)",
            stated=(("baseline_accuracy", "0.103"), ("n_train", "1257")),
        ),
        code("answer = ...\nrun(identify.HEAD, answer, solutions=solutions)", "exercise"),
        md(SOLUTION_MD, "solution"),
        code("note = instructor_note(identify.NOTES, solutions=solutions)\nnote", "instructor"),
        code(
            "answer = ...\nobserved = identify.recount()\n"
            "run(identify.BASELINE, answer, observed=observed, solutions=solutions)",
            "exercise",
        ),
        code(
            "%matplotlib inline\nreference = identify.BASELINE.solution\nprint(reference)",
            "solution",
        ),
        md(SUMMARY),
    ]


def notebook(cells: list):
    return new_notebook(cells=cells)


def test_a_notebook_that_follows_the_conventions_has_no_problems():
    nb = notebook(good_cells())
    assert notebook_lint.check_notebook_teaching(nb, stage="identify") == []
    assert notebook_lint.compare_stated(nb) == []


def test_path_infers_the_stage_from_the_file_name(tmp_path):
    cells = good_cells()
    cells[3] = code("pipeline.where_am_i(current='design')")
    path = tmp_path / "01_identify.ipynb"
    nbformat.write(notebook(cells), path)
    assert notebook_lint.check_notebook_teaching(path) == [
        "cell 4: the pipeline map shows 'design'; expected 'identify'"
    ]


def _problems(change) -> list[str]:
    cells = good_cells()
    change(cells)
    return notebook_lint.check_notebook_teaching(notebook(cells))


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c.pop(0), "no learning objectives: add a markdown cell with"),
        (lambda c: c.insert(0, c.pop(1)), "the learning objectives (cell 2) come after"),
        (
            lambda c: c.__setitem__(0, md(OBJECTIVES.replace("- compute the baseline", "x"))),
            "cell 1: 2 learning objective(s); expected 3-5 bullets",
        ),
        (
            lambda c: c.__setitem__(0, md(OBJECTIVES.replace("**Prerequisites:**", "Needs:"))),
            "cell 1: no '**Prerequisites:**' line under the objectives",
        ),
        (
            lambda c: c.__setitem__(0, md(OBJECTIVES.replace("full profile", "big"))),
            "cell 1: no '**Time:**' line naming both the smoke and the full profile",
        ),
        (lambda c: c.pop(3), "no pipeline map: add a code cell calling pipeline.where_am_i"),
        (lambda c: c.insert(11, c.pop(3)), "the pipeline map (cell 12) comes after the first"),
        (
            lambda c: c.__setitem__(1, code("run_dir = 'x'", "parameters")),
            "the parameters cell does not set `solutions = False`",
        ),
        (lambda c: c.pop(1), "no cell tagged 'parameters'"),
        (lambda c: c.pop(4), "no stated numbers: write results in prose as <span class="),
        (
            lambda c: [c.pop(9), c.pop(9)],
            "1 exercise cell(s); expected at least 2 code cells tagged 'exercise'",
        ),
        (lambda c: c.pop(7), "exercise cell 7 has no solution cell (tagged 'solution')"),
        (
            lambda c: c.__setitem__(
                6, code("answer = ...\nrun(identify.HEAD, answer)", "exercise")
            ),
            "exercise cell 7 does not call exercises.run(..., solutions=solutions)",
        ),
        (
            lambda c: c.__setitem__(7, md("**Solution.** sigmoid.", "solution")),
            "cell 8: the solution shows when the notebook is opened; wrap it in <details>",
        ),
        (
            lambda c: c.__setitem__(
                9,
                code(
                    "answer = ...\nrun(identify.BASELINE, answer, solutions=solutions)", "exercise"
                ),
            ),
            "no experiment exercise: one exercise cell must call exercises.run(..., observed=",
        ),
        (lambda c: c.pop(11), "the last markdown cell is not a '## Summary'"),
        (
            lambda c: c.__setitem__(
                11, md(SUMMARY.replace("- The task type decides the head.\n", ""))
            ),
            "the summary has 2 bullet(s); expected 3-5",
        ),
        (
            lambda c: c.__setitem__(11, md(SUMMARY.split("Next:")[0])),
            "the summary has no 'Next:' line",
        ),
        (lambda c: c.append(code("print(answer)")), "cell 13 uses ['answer'], defined only in"),
        (
            lambda c: c.append(code("x = reference", "exercise")),
            "exercise cell 13 uses ['reference'], defined only in solution or instructor cells",
        ),
        (
            lambda c: c.__setitem__(4, md('<span class="stated">0.1</span>')),
            "cell 5: a stated number needs data-name=\"<name>\", got ''",
        ),
        (
            lambda c: c.__setitem__(4, md('<span class="stated" data-name="acc">97 %</span>')),
            "cell 5: stated number 'acc' must be a plain decimal like 0.101 or 1,797, got '97 %'",
        ),
    ],
)
def test_missing_pieces_are_named(change, expected):
    problems = _problems(change)
    assert any(p.startswith(expected) for p in problems), problems


def test_stated_in_prose_and_outputs():
    nb = notebook(good_cells())
    assert notebook_lint.stated_in_prose(nb) == {
        "baseline_accuracy": (0.101, 0.005),
        "n_train": (1257, 0),
    }
    assert notebook_lint.stated_in_outputs(nb) == {"baseline_accuracy": 0.103, "n_train": 1257}


def test_default_tolerance_is_one_unit_of_the_last_decimal():
    nb = notebook([md('<span class="stated" data-name="acc">0.25</span>')])
    assert notebook_lint.stated_in_prose(nb) == {"acc": (0.25, 0.01)}
    nb.cells.append(code("", stated=(("acc", "0.260"),)))
    assert notebook_lint.compare_stated(nb) == []
    nb.cells[1] = code("", stated=(("acc", "0.261"),))
    assert notebook_lint.compare_stated(nb) == [
        "stated number 'acc': the prose says 0.25 ±0.01 (cell 1) but the notebook computed 0.261 "
        "(cell 2); update the prose or find what changed in the code"
    ]


def test_compare_stated_names_every_drift():
    cells = good_cells()
    cells[5] = code("", stated=(("baseline_accuracy", "0.2"), ("extra", "3"), ("extra", "4")))
    assert notebook_lint.compare_stated(notebook(cells)) == [
        "'extra' is recorded twice with different values: 3 (cell 6) and 4 (cell 6)",
        "stated number 'baseline_accuracy': the prose says 0.101 ±0.005 (cell 5) but the notebook "
        "computed 0.2 (cell 6); update the prose or find what changed in the code",
        "stated number 'n_train' (prose: 1257, cell 5) is recorded by no cell; add "
        "teaching.state('n_train', value) where it is computed",
        "'extra' = 3 is recorded by cell 6 but stated in no prose; add "
        '<span class="stated" data-name="extra">3</span> or drop the state() call',
    ]


def test_integers_compare_exactly():
    nb = notebook(
        [md('<span class="stated" data-name="n">1 797</span>'), code("", stated=(("n", "1798"),))]
    )
    assert notebook_lint.compare_stated(nb)[0].startswith(
        "stated number 'n': the prose says 1797 ±0"
    )


def test_state_outside_a_kernel_prints_a_plain_line(capsys):
    teaching.state("acc", np.float32(0.10149))
    teaching.state("n_train", np.int64(1257))
    teaching.state("loss", 1.23456, digits=2)
    assert capsys.readouterr().out == (
        "[stated] acc = 0.101\n[stated] n_train = 1257\n[stated] loss = 1.23\n"
    )


def test_state_in_a_kernel_leaves_an_output_only_tests_read(monkeypatch, capsys):
    published = []
    shell = types.SimpleNamespace(
        kernel=object(),
        display_pub=types.SimpleNamespace(publish=lambda **kw: published.append(kw)),
    )
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    teaching.state("acc", np.float32(0.10149))
    teaching.state("loss", float("nan"), digits=2)
    assert capsys.readouterr().out == ""  # nothing the reader sees
    assert published == [
        {"data": {STATED_MIMETYPE: {"name": "acc", "value": "0.101"}}},
        {"data": {STATED_MIMETYPE: {"name": "loss", "value": "nan"}}},  # text: valid JSON
    ]


@pytest.mark.notebook
def test_stated_numbers_survive_papermill_and_nbformat(tmp_path):
    path = write_notebook(
        tmp_path / "stated.ipynb",
        "x = 1",
        "from workbench import teaching\nprint('shown')\nteaching.state('acc', 0.10149)",
    )
    nb = nbformat.read(execute(path, tmp_path / "out.ipynb", progress=False), as_version=4)
    nbformat.validate(nb)
    outputs = nb.cells[-1].outputs
    assert [o.output_type for o in outputs] == ["stream", "display_data"]
    assert outputs[0].text == "shown\n"  # no [stated] line among what the reader sees
    assert dict(outputs[1].data) == {STATED_MIMETYPE: {"name": "acc", "value": "0.101"}}
    assert notebook_lint.stated_in_outputs(nb) == {"acc": 0.101}


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("baseline accuracy", 0.1, "expected a name like 'baseline_accuracy'"),
        ("acc", "0.1", "'acc' must be an int or a float, got '0.1' (str)"),
        ("acc", True, "'acc' must be an int or a float, got True (bool)"),
    ],
)
def test_state_rejects_bad_input(name, value, message):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        teaching.state(name, value)
